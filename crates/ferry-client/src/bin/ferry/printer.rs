//! What the user sees of the control connection: replies when verbose, `---> CMD` when
//! debugging, error replies always (unless silenced for a background command).
//!
//! Everything the server says reaches the terminal through [`printable`] (or
//! [`PrintableWriter`] for listings): a hostile server must not be able to send terminal escape
//! sequences (a new window title, a cleared screen, an OSC 52 clipboard write).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use ferry_client::{Reply, Transcript};

/// The session's output switches, shared with the library through [`Transcript`].
#[derive(Debug, Default)]
pub struct Printer {
    verbose: AtomicBool,
    debug: AtomicBool,
    /// Set while a command runs that the user did not type (completion listings, SIZE for
    /// the progress bar): nothing is shown.
    quiet: AtomicBool,
    /// Set while connecting: the greeting is shown after "Connected to host.".
    mute_replies: AtomicBool,
    /// Whether error replies are shown even when not verbose (interactive sessions do).
    show_errors: AtomicBool,
}

impl Printer {
    pub fn new(verbose: bool, debug: bool, show_errors: bool) -> Self {
        let printer = Printer::default();
        printer.set_verbose(verbose);
        printer.set_debug(debug);
        printer.show_errors.store(show_errors, Ordering::Relaxed);
        printer
    }

    pub fn verbose(&self) -> bool {
        self.verbose.load(Ordering::Relaxed)
    }

    pub fn set_verbose(&self, on: bool) {
        self.verbose.store(on, Ordering::Relaxed);
    }

    pub fn debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    pub fn set_debug(&self, on: bool) {
        self.debug.store(on, Ordering::Relaxed);
    }

    /// Silences everything until [`Printer::set_quiet`] with `false`.
    pub fn set_quiet(&self, on: bool) {
        self.quiet.store(on, Ordering::Relaxed);
    }

    /// Holds back replies (only) until called again with `false`.
    pub fn set_mute_replies(&self, on: bool) {
        self.mute_replies.store(on, Ordering::Relaxed);
    }

    fn quiet(&self) -> bool {
        self.quiet.load(Ordering::Relaxed)
    }

    /// Shows a reply, the way it arrived (RFC 959 multi-line form), line by line.
    pub fn show_reply(&self, reply: &Reply) {
        let mut stdout = std::io::stdout().lock();
        for line in reply_lines(reply) {
            let _ = writeln!(stdout, "{}", printable(&line));
        }
        let _ = stdout.flush();
    }
}

/// The lines a reply is shown as: its RFC 959 wire form ([`Reply::to_wire`]), except for a
/// middle line that starts with the reply's own code and a hyphen (`220-You are user number 1
/// of 50 allowed.`, as Pure-FTPd sends every line of a multi-line reply; RFC 959 §4.2 allows
/// it): the wire form indents such a line by a space, as a server must before a line starting
/// with a digit, but it arrived unindented and is shown so.
fn reply_lines(reply: &Reply) -> Vec<String> {
    let wire = reply.to_wire();
    let prefix = format!("{:03}-", reply.code % 1000);
    let last = reply.lines.len().saturating_sub(1);
    String::from_utf8_lossy(&wire)
        .lines()
        .enumerate()
        .map(|(index, line)| {
            let middle = index > 0 && index < last;
            let coded = reply
                .lines
                .get(index)
                .is_some_and(|l| l.starts_with(&prefix));
            match line.strip_prefix(' ') {
                Some(unindented) if middle && coded => unindented.to_string(),
                _ => line.to_string(),
            }
        })
        .collect()
}

impl Transcript for Printer {
    fn trying(&self, addr: SocketAddr) {
        if self.verbose() && !self.quiet() {
            println!("Trying {addr} ...");
        }
    }

    fn sent(&self, line: &str) {
        if self.debug() && !self.quiet() {
            println!("---> {}", printable(line));
        }
    }

    fn reply(&self, reply: &Reply) {
        let wanted =
            self.verbose() || (reply.class() >= 4 && self.show_errors.load(Ordering::Relaxed));
        if wanted && !self.quiet() && !self.mute_replies.load(Ordering::Relaxed) {
            self.show_reply(reply);
        }
    }

    fn note(&self, text: &str) {
        if self.verbose() && !self.quiet() {
            println!("{}", printable(text));
        }
    }

    fn warning(&self, text: &str) {
        eprintln!("ferry: warning: {}", printable(text));
    }
}

/// Whether `text` holds a control character: C0 (U+0000 to U+001F), DEL (U+007F) or C1
/// (U+0080 to U+009F), the characters a terminal may take as the start of a command.
pub fn has_control(text: &str) -> bool {
    text.contains(char::is_control)
}

/// `text` safe to show on a terminal: each control character (see [`has_control`]) becomes
/// `\xNN`, its code in two lower-case hex digits (ESC is `\x1b`, CSI `\x9b`), as Python's
/// `repr` writes them. Everything else, other UTF-8 included, stays as it is, borrowed.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !has_control(text) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(shown, "\\x{:02x}", u32::from(c));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// The longest line a listing holds back waiting for its end; longer ones are shown in parts.
const MAX_PENDING_LINE: usize = 64 * 1024;

/// Standard output for listings: each line goes through [`printable`] (bytes that are not UTF-8
/// become U+FFFD), so only the listing's own line ends reach the terminal. Written synchronously,
/// like [`crate::progress::StdoutWriter`]; the last line without a line end is shown on flush
/// (the library flushes when the data connection ends) or when the writer is dropped.
#[derive(Debug, Default)]
pub struct PrintableWriter {
    pending: Vec<u8>,
}

impl PrintableWriter {
    /// Shows every complete line held, and a held part longer than [`MAX_PENDING_LINE`].
    fn show_lines(&mut self) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            show_line(&mut stdout, &self.pending[start..start + end])?;
            start += end + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_PENDING_LINE {
            show_line(&mut stdout, &self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Shows what is held as a last line.
    fn show_rest(&mut self) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        if !self.pending.is_empty() {
            show_line(&mut stdout, &self.pending)?;
            self.pending.clear();
        }
        stdout.flush()
    }
}

/// One listing line (a CR before its LF is part of the line end).
fn show_line(out: &mut impl Write, line: &[u8]) -> std::io::Result<()> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    writeln!(out, "{}", printable(&String::from_utf8_lossy(line)))
}

impl tokio::io::AsyncWrite for PrintableWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        Poll::Ready(self.show_lines().map(|()| buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.show_rest())
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.show_rest())
    }
}

impl Drop for PrintableWriter {
    /// A listing broken off shows the line it was in the middle of.
    fn drop(&mut self) {
        let _ = self.show_rest();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(
            printable("a\u{9b}2Jb\u{7f}\u{0}\t"),
            "a\\x9b2Jb\\x7f\\x00\\x09"
        );
        assert_eq!(printable("line\r\nnext"), "line\\x0d\\x0anext");
        assert_eq!(printable("\u{80}\u{9f}\u{a0}"), "\\x80\\x9f\u{a0}");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in ["readme.txt", "Grüße, 日本語 \\x1b", "", "C:\\dir"] {
            assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
        }
        assert!(!has_control("ü€"));
        assert!(has_control("\u{85}"));
    }

    #[test]
    fn middle_lines_with_the_replys_code_are_shown_as_they_came() {
        let reply = Reply::multi(
            220,
            vec![
                "--------- Welcome to Pure-FTPd [privsep] [TLS] ----------".into(),
                "220-You are user number 1 of 50 allowed.".into(),
                "221-another code keeps its indent".into(),
                "2 digits first, indented".into(),
                "plain text".into(),
                "You will be disconnected after 2 minutes of inactivity.".into(),
            ],
        );
        assert_eq!(
            reply_lines(&reply),
            [
                "220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------",
                "220-You are user number 1 of 50 allowed.",
                " 221-another code keeps its indent",
                " 2 digits first, indented",
                "plain text",
                "220 You will be disconnected after 2 minutes of inactivity.",
            ]
        );
        // The first and last lines are never changed, whatever they hold.
        let reply = Reply::multi(226, vec!["226-x".into(), "226-y".into()]);
        assert_eq!(reply_lines(&reply), ["226-226-x", "226 226-y"]);
        assert_eq!(reply_lines(&Reply::new(200, "220-ok")), ["200 220-ok"]);
    }

    #[test]
    fn listing_lines_keep_their_ends_only() {
        let mut out = Vec::new();
        show_line(&mut out, b"evil\x1b[2J\r").unwrap();
        show_line(&mut out, b"cr\rin the middle, \xff bad byte").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "evil\\x1b[2J\ncr\\x0din the middle, \u{fffd} bad byte\n"
        );
    }
}
