//! The `session` target's reading of a control connection: every line must be part of a
//! well-formed reply, and the replies must make sense for the session.

use std::net::{IpAddr, Ipv4Addr};

use ferry_proto::hostport::{parse_epsv_reply, parse_pasv_reply};
use ferry_proto::reply::{Reply, ReplyParser};

/// A reply line longer than this is a runaway.
const MAX_REPLY_LINE: usize = 64 * 1024;
/// Replies that only a logged-in command gives: never seen when no login can succeed.
const LOGGED_IN_ONLY: [u16; 11] = [125, 150, 212, 213, 226, 227, 229, 230, 250, 257, 350];

/// The control connection as read: every line must be part of a well-formed reply.
pub struct Transcript {
    /// No login can succeed on this server.
    no_login: bool,
    /// The verb of the harness's idle probe, echoed in its 500 reply.
    probe: &'static str,
    parser: ReplyParser,
    /// Bytes of a line whose LF has not come yet.
    partial: Vec<u8>,
    replies: usize,
    /// A multi-line reply has begun and not ended.
    open: bool,
    /// 221 or 421 was sent: the session is over.
    pub ended: bool,
    /// 234 was sent: the rest is the TLS handshake, not replies.
    pub tls: bool,
    /// The reply to the probe came: the server has answered everything before it.
    pub idle: bool,
    /// A 503 came (perhaps refusing the probe, queued behind a transfer with the queue full).
    pub refused: bool,
    verbose: bool,
}

impl Transcript {
    pub fn new(no_login: bool, probe: &'static str) -> Self {
        Transcript {
            no_login,
            probe,
            parser: ReplyParser::new(100_000),
            partial: Vec::new(),
            replies: 0,
            open: false,
            ended: false,
            tls: false,
            idle: false,
            refused: false,
            verbose: std::env::var_os("FERRY_FUZZ_VERBOSE").is_some(),
        }
    }

    /// Checks the bytes read; returns the passive ports announced (227, 229).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<u16> {
        let mut ports = Vec::new();
        while !self.tls && !bytes.is_empty() {
            let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                self.partial.extend_from_slice(bytes);
                break;
            };
            self.partial.extend_from_slice(&bytes[..=end]);
            bytes = &bytes[end + 1..];
            let line = std::mem::take(&mut self.partial);
            ports.extend(self.line(&line));
        }
        if self.partial.len() > MAX_REPLY_LINE {
            fail("a reply line longer than 64 KiB", &self.partial);
        }
        ports
    }

    fn line(&mut self, raw: &[u8]) -> Option<u16> {
        if self.verbose {
            eprintln!("S: {}", raw.escape_ascii());
        }
        let Some(text) = raw.strip_suffix(b"\r\n") else {
            fail("a reply line that does not end in CRLF", raw)
        };
        if text.contains(&b'\r') {
            fail("a CR inside a reply line", raw);
        }
        let Ok(text) = std::str::from_utf8(text) else {
            fail("a reply line that is not UTF-8", raw)
        };
        if self.ended {
            fail("a reply line after 221/421", raw);
        }
        match self.parser.push_line(text) {
            Err(error) => fail(&format!("a malformed reply ({error})"), raw),
            Ok(None) => {
                self.open = true;
                None
            }
            Ok(Some(reply)) => {
                self.open = false;
                self.reply(&reply)
            }
        }
    }

    /// Checks a complete reply; returns the port of a 227 or 229.
    fn reply(&mut self, reply: &Reply) -> Option<u16> {
        self.replies += 1;
        let code = reply.code;
        let wire = reply.to_wire();
        if !(100..=599).contains(&code) {
            fail("a reply code outside 100..=599", &wire);
        }
        if self.replies == 1 && code != 220 {
            fail("a first reply that is not the 220 greeting", &wire);
        }
        if self.no_login && LOGGED_IN_ONLY.contains(&code) {
            fail(
                "a logged-in command's reply where no login can succeed",
                &wire,
            );
        }
        let text = reply.lines.last().map_or("", String::as_str);
        match code {
            221 | 421 => self.ended = true,
            500 if text.contains(self.probe) => self.idle = true,
            234 => self.tls = true,
            503 => self.refused = true,
            227 => match parse_pasv_reply(text) {
                Ok(addr) if addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) => {
                    return Some(addr.port())
                }
                _ => fail("a 227 that does not name 127.0.0.1 and a port", &wire),
            },
            229 => match parse_epsv_reply(text) {
                Ok(port) => return Some(port),
                Err(_) => fail("a 229 without a port", &wire),
            },
            _ => {}
        }
        None
    }

    /// At the end of the connection: a greeting came, and (unless the connection was reset or
    /// turned to TLS) it did not stop inside a line or a multi-line reply.
    pub fn finish(&self, clean: bool) {
        if self.replies == 0 {
            fail("the connection ended without a greeting", &self.partial);
        }
        if clean && !self.tls && !self.partial.is_empty() {
            fail("the connection ended inside a reply line", &self.partial);
        }
        if clean && !self.tls && self.open {
            fail("the connection ended inside a multi-line reply", b"");
        }
    }
}

/// Stops the run: libFuzzer keeps the input.
fn fail(what: &str, bytes: &[u8]) -> ! {
    panic!("invariant failed: {what}: \"{}\"", bytes.escape_ascii());
}
