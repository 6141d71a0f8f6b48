//! Splits the control connection's byte stream into bounded lines.
//!
//! Framing is kept apart from parsing: the framer knows nothing of commands. It
//! - ends a line at LF, dropping a CR before it (interop quirk: a bare LF is accepted as CRLF),
//! - strips Telnet sequences (RFC 854: `IAC IP`, `IAC DM`, option negotiation) and turns
//!   `IAC IAC` into one 0xFF byte,
//! - drops NUL bytes (RFC 854's `CR NUL` stands for a bare CR),
//! - bounds every line: a line longer than the limit is consumed up to its end and reported as
//!   [`Frame::Overlong`], so the next line's boundary is kept and memory never grows past the limit.

const IAC: u8 = 255;
/// First Telnet command byte (SE); bytes 240..=255 after IAC are commands.
const TELNET_COMMAND_MIN: u8 = 240;
/// WILL, WONT, DO, DONT take one option byte.
const TELNET_OPTION_MIN: u8 = 251;

/// One unit read from the control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its line ending.
    Line(Vec<u8>),
    /// A line that exceeded the limit; its bytes were discarded.
    Overlong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    Data,
    /// Just read IAC.
    Command,
    /// Read IAC WILL/WONT/DO/DONT: the next byte is the option.
    Option,
}

/// A line framer with a hard size limit.
#[derive(Debug)]
pub struct LineFramer {
    line: Vec<u8>,
    max_line: usize,
    discarding: bool,
    telnet: Telnet,
}

impl LineFramer {
    /// A framer whose lines (without CRLF) may be at most `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        LineFramer {
            line: Vec::new(),
            max_line,
            discarding: false,
            telnet: Telnet::Data,
        }
    }

    /// Feeds bytes read from the connection; complete frames are appended to `frames`.
    pub fn push(&mut self, bytes: &[u8], frames: &mut Vec<Frame>) {
        // Room for the line at once, not doubling from 8 bytes: a command line then costs one
        // allocation. Bounded by the limit (plus the CR slack) whatever `bytes` holds.
        if !self.discarding {
            let room = bytes.len().min(self.max_line + 2);
            self.line.reserve(room.saturating_sub(self.line.len()));
        }
        for &byte in bytes {
            if let Some(data) = self.telnet_filter(byte) {
                self.push_data(data, frames);
            }
        }
    }

    /// Whether a partial line is buffered (bytes received after the last line end).
    pub fn has_partial_line(&self) -> bool {
        !self.line.is_empty() || self.discarding
    }

    /// Runs the Telnet state machine; returns the data byte, if any, that `byte` yields.
    fn telnet_filter(&mut self, byte: u8) -> Option<u8> {
        match self.telnet {
            Telnet::Data if byte == IAC => {
                self.telnet = Telnet::Command;
                None
            }
            Telnet::Data => Some(byte),
            Telnet::Command => {
                self.telnet = Telnet::Data;
                match byte {
                    IAC => Some(IAC),
                    TELNET_OPTION_MIN.. => {
                        self.telnet = Telnet::Option;
                        None
                    }
                    TELNET_COMMAND_MIN.. => None,
                    // Not a Telnet command: the urgent DM byte was taken out of band, so the
                    // IAC stands alone. Keep the byte, it belongs to the next command.
                    _ => Some(byte),
                }
            }
            Telnet::Option => {
                self.telnet = Telnet::Data;
                None
            }
        }
    }

    fn push_data(&mut self, byte: u8, frames: &mut Vec<Frame>) {
        match byte {
            b'\n' => frames.push(self.end_line()),
            0 => {}
            _ if self.discarding => {}
            _ if self.line.len() > self.max_line => {
                // One byte of slack is kept for the CR of a CRLF ending.
                self.line = Vec::new();
                self.discarding = true;
            }
            _ => self.line.push(byte),
        }
    }

    fn end_line(&mut self) -> Frame {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.discarding) || line.len() > self.max_line {
            Frame::Overlong
        } else {
            Frame::Line(line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, input: &[u8]) -> Vec<Frame> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        framer.push(input, &mut out);
        out
    }

    fn line(text: &str) -> Frame {
        Frame::Line(text.as_bytes().to_vec())
    }

    #[test]
    fn splits_crlf_and_bare_lf() {
        assert_eq!(
            frames(100, b"USER ftp\r\nPASS x\nNOOP"),
            vec![line("USER ftp"), line("PASS x")]
        );
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut framer = LineFramer::new(100);
        let mut out = Vec::new();
        for chunk in [&b"RE"[..], b"TR read", b"me.txt\r", b"\n"] {
            framer.push(chunk, &mut out);
        }
        assert_eq!(out, vec![line("RETR readme.txt")]);
        assert!(!framer.has_partial_line());
    }

    #[test]
    fn overlong_line_is_dropped_and_next_line_kept() {
        let mut input = vec![b'A'; 10_000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(frames(4096, &input), vec![Frame::Overlong, line("NOOP")]);
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let text = "X".repeat(16);
        assert_eq!(
            frames(16, format!("{text}\r\n").as_bytes()),
            vec![line(&text)]
        );
        assert_eq!(
            frames(16, format!("{text}Y\r\n").as_bytes()),
            vec![Frame::Overlong]
        );
    }

    #[test]
    fn memory_stays_bounded_without_line_end() {
        let mut framer = LineFramer::new(64);
        let mut out = Vec::new();
        for _ in 0..1000 {
            framer.push(&[b'z'; 1000], &mut out);
        }
        assert!(framer.line.capacity() <= 1024);
        assert!(out.is_empty());
    }

    #[test]
    fn telnet_sequences_are_stripped() {
        // IAC IP IAC DM ABOR, as RFC 959 §4.1.3 asks clients to send it.
        assert_eq!(frames(100, b"\xff\xf4\xff\xf2ABOR\r\n"), vec![line("ABOR")]);
        // DM taken out of band: IAC followed directly by the command.
        assert_eq!(frames(100, b"\xff\xf4\xffABOR\r\n"), vec![line("ABOR")]);
        // Option negotiation and an escaped 0xFF.
        assert_eq!(
            frames(100, b"\xff\xfd\x01NO\xff\xffOP\r\n"),
            vec![Frame::Line(b"NO\xffOP".to_vec())]
        );
    }

    #[test]
    fn nul_bytes_are_dropped() {
        assert_eq!(frames(100, b"NO\0OP\r\0\n"), vec![line("NOOP")]);
    }
}
