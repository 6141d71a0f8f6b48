//! FTP replies: formatting for the server, parsing for the client.
//!
//! RFC 959 §4.2: a reply is `code SP text CRLF`, or, over several lines, `code-text CRLF`, any
//! lines, and `code SP text CRLF` with the same code. A middle line that could be mistaken for the
//! last (it starts with the code and a space) is indented by one space when formatted.

use std::fmt;

/// One complete reply: a three-digit code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A reply over several lines (at least one).
    pub fn multi(code: u16, lines: Vec<String>) -> Self {
        let lines = if lines.is_empty() {
            vec![String::new()]
        } else {
            lines
        };
        Reply { code, lines }
    }

    /// The first digit: 1 preliminary, 2 completion, 3 intermediate, 4 transient, 5 permanent.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// Whether the code says the command succeeded (1yz, 2yz or 3yz).
    pub fn is_positive(&self) -> bool {
        (1..=3).contains(&self.class())
    }

    /// The text of all lines joined by newlines.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The reply as it goes on the wire, CRLF line ends included.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.lines.iter().map(|l| l.len() + 8).sum());
        self.write_wire(&mut out);
        out
    }

    /// Appends the wire form to `out`. Written byte by byte rather than through `format!`:
    /// a server sends a reply for every command, and each `format!` is an allocation.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        let code = three_digits(self.code);
        let last = self.lines.len() - 1;
        for (index, line) in self.lines.iter().enumerate() {
            if index == last {
                out.extend_from_slice(&code);
                out.push(b' ');
            } else if index == 0 {
                out.extend_from_slice(&code);
                out.push(b'-');
            } else if line.starts_with(|c: char| c.is_ascii_digit()) {
                out.push(b' ');
            }
            push_sanitized(out, line);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Appends a single-line reply's wire form to `out`: what `Reply::new(code, text).write_wire`
/// writes, without making the `Reply` (a server sends one for nearly every command).
pub fn write_line(out: &mut Vec<u8>, code: u16, text: &str) {
    out.reserve(text.len() + 6);
    out.extend_from_slice(&three_digits(code));
    out.push(b' ');
    push_sanitized(out, text);
    out.extend_from_slice(b"\r\n");
}

/// A reply code as three ASCII digits (codes are 100..=599; others are written modulo 1000,
/// zero-padded, never longer).
fn three_digits(code: u16) -> [u8; 3] {
    let code = code % 1000;
    [
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]
}

/// Appends a reply line kept on one line: CR and LF in a text (a file name, say) become spaces.
fn push_sanitized(out: &mut Vec<u8>, line: &str) {
    let start = out.len();
    out.extend_from_slice(line.as_bytes());
    for byte in &mut out[start..] {
        if matches!(*byte, b'\r' | b'\n') {
            *byte = b' ';
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_wire()))
    }
}

/// Why reply lines could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    #[error("multi-line reply has more than {0} lines")]
    TooLong(usize),
}

/// Assembles complete replies from the lines a server sends (client side).
#[derive(Debug, Default)]
pub struct ReplyParser {
    pending: Option<Reply>,
    max_lines: usize,
}

impl ReplyParser {
    /// A parser that refuses multi-line replies longer than `max_lines` lines.
    pub fn new(max_lines: usize) -> Self {
        ReplyParser {
            pending: None,
            max_lines,
        }
    }

    /// Feeds one line (without CRLF). Returns the reply when this line completes one.
    pub fn push_line(&mut self, line: &str) -> Result<Option<Reply>, ReplyError> {
        if let Some(pending) = &mut self.pending {
            // Checked before the last line too: a reply of max_lines + 1 lines is refused.
            if pending.lines.len() >= self.max_lines {
                self.pending = None;
                return Err(ReplyError::TooLong(self.max_lines));
            }
            let code = pending.code.to_string();
            // `ddd text` ends the reply, and so does a bare `ddd` (as on a first line).
            if line == code {
                pending.lines.push(String::new());
                return Ok(self.pending.take());
            }
            if line.len() >= 4 && line.starts_with(&code) && line.as_bytes()[3] == b' ' {
                pending.lines.push(line[4..].to_string());
                return Ok(self.pending.take());
            }
            pending
                .lines
                .push(line.strip_prefix(' ').unwrap_or(line).to_string());
            return Ok(None);
        }
        let (code, separator, text) = split_first_line(line)?;
        let reply = Reply::new(code, text);
        if separator == b'-' {
            self.pending = Some(reply);
            Ok(None)
        } else {
            Ok(Some(reply))
        }
    }
}

/// Splits `ddd<SP|->text`; a bare `ddd` is accepted as `ddd ` with empty text.
fn split_first_line(line: &str) -> Result<(u16, u8, &str), ReplyError> {
    let bytes = line.as_bytes();
    let malformed = || ReplyError::Malformed(line.chars().take(80).collect());
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) || bytes[0] == b'0' {
        return Err(malformed());
    }
    let code: u16 = line[..3].parse().map_err(|_| malformed())?;
    match bytes.get(3) {
        None => Ok((code, b' ', "")),
        Some(&separator @ (b' ' | b'-')) => Ok((code, separator, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_line_is_written_as_a_reply_would_be() {
        for (code, text) in [
            (200, "Switching to Binary mode."),
            (550, "bad\r\nname"),
            (221, ""),
        ] {
            let mut out = b"held\r\n".to_vec();
            write_line(&mut out, code, text);
            let mut expected = b"held\r\n".to_vec();
            Reply::new(code, text).write_wire(&mut expected);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn single_line_wire_form() {
        let reply = Reply::new(220, "ANY-DOMAIN.COM FTP Service");
        assert_eq!(reply.to_wire(), b"220 ANY-DOMAIN.COM FTP Service\r\n");
    }

    #[test]
    fn multi_line_wire_form_of_the_seed_login() {
        let reply = Reply::multi(
            230,
            vec![
                "Welcome to ftp.any-domain.com".into(),
                "Anonymous user logged in.".into(),
            ],
        );
        assert_eq!(
            reply.to_wire(),
            b"230-Welcome to ftp.any-domain.com\r\n230 Anonymous user logged in.\r\n"
        );
    }

    #[test]
    fn middle_lines_starting_with_digits_are_indented() {
        let reply = Reply::multi(211, vec!["Features:".into(), "230 x".into(), "End".into()]);
        assert_eq!(reply.to_wire(), b"211-Features:\r\n 230 x\r\n211 End\r\n");
    }

    #[test]
    fn newlines_in_text_cannot_forge_replies() {
        let reply = Reply::new(550, "bad\r\n230 Logged in");
        assert_eq!(reply.to_wire(), b"550 bad  230 Logged in\r\n");
    }

    #[test]
    fn parses_rfc_959_multi_line_example() {
        // RFC 959 §4.2's example.
        let mut parser = ReplyParser::new(100);
        assert_eq!(parser.push_line("123-First line"), Ok(None));
        assert_eq!(parser.push_line("Second line"), Ok(None));
        assert_eq!(
            parser.push_line("  234 A line beginning with numbers"),
            Ok(None)
        );
        let reply = parser.push_line("123 The last line").unwrap().unwrap();
        assert_eq!(reply.code, 123);
        assert_eq!(reply.lines.len(), 4);
        assert_eq!(reply.lines[3], "The last line");
    }

    #[test]
    fn round_trips_through_the_parser() {
        let reply = Reply::multi(211, vec!["Features:".into(), " UTF8".into(), "End".into()]);
        let mut parser = ReplyParser::new(100);
        let wire = String::from_utf8(reply.to_wire()).unwrap();
        let mut parsed = None;
        for line in wire.split("\r\n").filter(|l| !l.is_empty()) {
            parsed = parser.push_line(line).unwrap();
        }
        let parsed = parsed.unwrap();
        assert_eq!(parsed.code, 211);
        assert_eq!(parsed.lines, vec!["Features:", "UTF8", "End"]);
    }

    #[test]
    fn rejects_garbage_and_bounds_length() {
        let mut parser = ReplyParser::new(3);
        assert!(parser.push_line("hello").is_err());
        assert!(parser.push_line("99").is_err());
        assert!(parser.push_line("2200 x").is_err());
        assert!(parser.push_line("ü20 x").is_err());
        assert_eq!(parser.push_line("200").unwrap().unwrap().code, 200);
        parser.push_line("211-a").unwrap();
        parser.push_line("b").unwrap();
        parser.push_line("c").unwrap();
        assert_eq!(parser.push_line("d"), Err(ReplyError::TooLong(3)));
    }

    /// A multi-line reply may end with its code alone, as a single-line reply may be.
    #[test]
    fn a_bare_code_ends_a_multi_line_reply() {
        let mut parser = ReplyParser::new(10);
        assert_eq!(parser.push_line("226-Transfer complete."), Ok(None));
        assert_eq!(parser.push_line("2260 bytes"), Ok(None));
        let reply = parser.push_line("226").unwrap().unwrap();
        assert_eq!(reply.lines, ["Transfer complete.", "2260 bytes", ""]);
    }

    #[test]
    fn line_limit_counts_the_last_line() {
        // Found by the `reply` fuzz target: the limit was checked only before middle lines, so a
        // reply one line over it was accepted when its extra line was the last.
        let mut parser = ReplyParser::new(2);
        assert_eq!(parser.push_line("211-a"), Ok(None));
        assert_eq!(parser.push_line("b"), Ok(None));
        assert_eq!(parser.push_line("211 c"), Err(ReplyError::TooLong(2)));
        // The parser starts afresh after refusing a reply; a reply of exactly the limit passes.
        assert_eq!(parser.push_line("211-a"), Ok(None));
        let reply = parser.push_line("211 b").unwrap().unwrap();
        assert_eq!(reply.lines, ["a", "b"]);
    }
}
