//! Recording a session as a sequence of timed events, to draw it as a sequence diagram
//! (`ferry --trace FILE.svg`), in the manner of the seed's `ftp-session-sequence.txt`.
//!
//! The library reports what happens through [`crate::Transcript`]; a [`Recorder`] is one such
//! observer and keeps each fact as an [`Event`] with the time since the session began. The
//! renderers ([`text`] and [`svg`]) are pure functions of the recorded events: they do no IO
//! and read no clock, so they are tested with made-up events.
//!
//! - [`diagram`]: events laid out as lifelines and arrows, shared by both renderers.
//! - [`text`]: the diagram as plain text with ASCII lifelines.
//! - [`svg`]: the diagram as an SVG document.

pub mod diagram;
pub mod svg;
pub mod text;

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_proto::reply::Reply;

use crate::tls::TlsInfo;
use crate::transcript::Transcript;

/// Where the addresses of a name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// The system resolver (getaddrinfo: DNS, or a file such as /etc/hosts).
    Resolver,
    /// A `--resolve` pin: nothing was asked.
    Pinned,
    /// The name was an address already.
    Literal,
}

/// Which side opened a data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// Passive mode: the client connected to the server.
    Client,
    /// Active mode: the server connected to the client, which accepted.
    Server,
}

/// The two ends of a data connection, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLink {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub opener: Opener,
}

/// How a data connection's transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferEnd {
    /// Bytes moved (after TYPE A line-end conversion), when the transfer completed.
    pub bytes: Option<u64>,
    /// From the first byte waited for to the connection's end.
    pub elapsed: Duration,
    /// The client sent (STOR, APPE) rather than received.
    pub upload: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// One fact about the session. Text in it is as received; renderers escape it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Something the user asked for (a shell command line, the one-shot command).
    User { text: String },
    /// The client asks for the addresses of `host`.
    DnsQuery { host: String },
    /// The addresses found for `host`.
    DnsAnswer {
        host: String,
        addrs: Vec<IpAddr>,
        source: AnswerSource,
    },
    /// No address for `host`.
    DnsFailed { host: String, error: String },
    /// The control connection is up.
    ControlConnected {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// A control connection attempt failed.
    ConnectFailed { remote: SocketAddr, error: String },
    /// A command line was sent (passwords already masked).
    Command { line: String },
    /// A complete reply was received.
    Reply { code: u16, lines: Vec<String> },
    /// Data connection number `id` (from 1) is up.
    DataConnected { id: u32, link: DataLink },
    /// Data connection `id` carried its bytes and was closed.
    DataFinished {
        id: u32,
        link: DataLink,
        end: TransferEnd,
    },
    /// A TLS handshake completed on the control connection (`data` is `None`) or on data
    /// connection `data`.
    Tls {
        data: Option<u32>,
        version: String,
        cipher_suite: String,
        resumed: bool,
    },
    /// The control connection was closed by the client.
    ControlClosed {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// A remark of the library (a fallback to active mode, a warning).
    Note { text: String },
}

/// An event and when it happened, counted from the start of the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: Duration,
    pub event: Event,
}

/// Keeps the events of a session. It is a [`Transcript`], so it can be given to
/// [`crate::ClientConfig::transcript`] (with [`crate::transcript::Both`] to keep another).
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<Entry>,
    /// Open data connections and their numbers.
    open: Vec<(u32, DataLink)>,
    next_data: u32,
}

/// The most events kept: a long session keeps its beginning, and its last event kept says
/// that the rest was cut.
pub const MAX_ENTRIES: usize = 100_000;

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(Instant::now())
    }
}

impl Recorder {
    /// A recorder whose times count from `start`.
    pub fn new(start: Instant) -> Self {
        Recorder {
            start,
            state: Mutex::new(State::default()),
        }
    }

    /// Adds an event that happened `at` after the start.
    pub fn record(&self, at: Duration, event: Event) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let event = match state.entries.len() {
            count if count + 1 < MAX_ENTRIES => event,
            count if count + 1 == MAX_ENTRIES => Event::Note {
                text: format!("trace cut after {MAX_ENTRIES} events: the rest is not drawn"),
            },
            _ => return,
        };
        state.entries.push(Entry { at, event });
    }

    /// Adds an event that happens now.
    pub fn record_now(&self, event: Event) {
        self.record(self.start.elapsed(), event);
    }

    /// What the user asked for.
    pub fn user(&self, text: &str) {
        self.record_now(Event::User {
            text: text.to_string(),
        });
    }

    /// A copy of the events so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.state
            .lock()
            .map(|state| state.entries.clone())
            .unwrap_or_default()
    }

    /// The number of the open data connection `link`, if it is open.
    fn open_id(&self, link: &DataLink) -> Option<u32> {
        let state = self.state.lock().ok()?;
        let found = state.open.iter().find(|(_, open)| open == link);
        found.map(|(id, _)| *id)
    }

    fn data_id(&self, link: &DataLink, opening: bool) -> u32 {
        let Ok(mut state) = self.state.lock() else {
            return 0;
        };
        if opening {
            state.next_data += 1;
            let id = state.next_data;
            state.open.push((id, *link));
            return id;
        }
        let found = state.open.iter().position(|(_, open)| open == link);
        found.map_or(0, |index| state.open.remove(index).0)
    }
}

impl Transcript for Recorder {
    fn resolving(&self, host: &str) {
        self.record_now(Event::DnsQuery {
            host: host.to_string(),
        });
    }

    fn resolved(&self, host: &str, addrs: &[SocketAddr], source: AnswerSource) {
        let mut ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        ips.dedup();
        self.record_now(Event::DnsAnswer {
            host: host.to_string(),
            addrs: ips,
            source,
        });
    }

    fn resolve_failed(&self, host: &str, error: &str) {
        self.record_now(Event::DnsFailed {
            host: host.to_string(),
            error: error.to_string(),
        });
    }

    fn connected(&self, local: SocketAddr, remote: SocketAddr) {
        self.record_now(Event::ControlConnected { local, remote });
    }

    fn connect_failed(&self, remote: SocketAddr, error: &str) {
        self.record_now(Event::ConnectFailed {
            remote,
            error: error.to_string(),
        });
    }

    fn sent(&self, line: &str) {
        self.record_now(Event::Command {
            line: line.to_string(),
        });
    }

    fn reply(&self, reply: &Reply) {
        self.record_now(Event::Reply {
            code: reply.code,
            lines: reply.lines.clone(),
        });
    }

    fn data_connected(&self, link: &DataLink) {
        let id = self.data_id(link, true);
        self.record_now(Event::DataConnected { id, link: *link });
    }

    fn data_finished(&self, link: &DataLink, end: &TransferEnd) {
        let id = self.data_id(link, false);
        self.record_now(Event::DataFinished {
            id,
            link: *link,
            end: end.clone(),
        });
    }

    fn closed(&self, local: SocketAddr, remote: SocketAddr) {
        self.record_now(Event::ControlClosed { local, remote });
    }

    fn tls_handshake(&self, data: Option<&DataLink>, info: &TlsInfo) {
        self.record_now(Event::Tls {
            data: data.and_then(|link| self.open_id(link)),
            version: info.version.clone(),
            cipher_suite: info.cipher_suite.clone(),
            resumed: info.resumed,
        });
    }

    fn note(&self, text: &str) {
        self.record_now(Event::Note {
            text: text.to_string(),
        });
    }

    fn warning(&self, text: &str) {
        self.note(&format!("warning: {text}"));
    }
}

/// `text` with every control character (C0, DEL, C1) written as `\xNN`, so that what a server
/// sends cannot move the cursor of a terminal showing the text trace or break its lines.
pub fn escape_controls(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn data_connections_are_numbered_and_matched_at_their_end() {
        let recorder = Recorder::default();
        let first = DataLink {
            local: addr("127.0.0.1:40000"),
            remote: addr("127.0.0.1:50000"),
            opener: Opener::Client,
        };
        let second = DataLink {
            local: addr("127.0.0.1:40001"),
            ..first
        };
        let end = TransferEnd {
            bytes: Some(3),
            elapsed: Duration::from_millis(2),
            upload: false,
            error: None,
        };
        recorder.data_connected(&first);
        recorder.data_connected(&second);
        recorder.data_finished(&second, &end);
        recorder.data_finished(&first, &end);
        let ids: Vec<u32> = recorder
            .entries()
            .iter()
            .map(|entry| match entry.event {
                Event::DataConnected { id, .. } | Event::DataFinished { id, .. } => id,
                _ => 0,
            })
            .collect();
        assert_eq!(ids, vec![1, 2, 2, 1]);
    }

    #[test]
    fn a_long_session_is_cut_with_a_note() {
        let recorder = Recorder::default();
        for _ in 0..MAX_ENTRIES + 5 {
            recorder.record(
                Duration::ZERO,
                Event::Command {
                    line: "NOOP".into(),
                },
            );
        }
        let entries = recorder.entries();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert!(
            matches!(&entries[MAX_ENTRIES - 1].event, Event::Note { text } if text.contains("cut"))
        );
    }

    #[test]
    fn control_bytes_are_escaped() {
        assert_eq!(
            escape_controls("a\x1b[2Jb\r\n\u{9b}"),
            "a\\x1b[2Jb\\x0d\\x0a\\x9b"
        );
        assert_eq!(escape_controls("Grüße <ok>"), "Grüße <ok>");
    }
}
