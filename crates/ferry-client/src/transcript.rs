//! Observing a session: the commands sent and the replies received, for `verbose` and `debug`,
//! and the connections under them, for `--trace` ([`crate::trace`]).

use std::net::SocketAddr;
use std::sync::Arc;

use ferry_proto::reply::Reply;

use crate::tls::TlsInfo;
use crate::trace::{AnswerSource, DataLink, TransferEnd};

/// Receives what happens on the control connection. Every method has an empty default, so an
/// observer implements only what it shows.
pub trait Transcript: Send + Sync {
    /// A connection attempt to `addr` starts.
    fn trying(&self, _addr: SocketAddr) {}
    /// A command line was sent; passwords arrive already masked (`PASS XXXX`).
    fn sent(&self, _line: &str) {}
    /// A complete reply was received.
    fn reply(&self, _reply: &Reply) {}
    /// The library changed course on its own, e.g. fell back from passive to active mode.
    fn note(&self, _text: &str) {}
    /// Something the user should know even when not verbose: a fallback to plain FTP, say.
    fn warning(&self, _text: &str) {}
    /// The addresses of `host` are about to be asked of the system resolver (not called for a
    /// `--resolve` pin or an address).
    fn resolving(&self, _host: &str) {}
    /// The addresses found for `host` (before the `-4`/`-6` filter), and where from.
    fn resolved(&self, _host: &str, _addrs: &[SocketAddr], _source: AnswerSource) {}
    /// No address was found for `host`.
    fn resolve_failed(&self, _host: &str, _error: &str) {}
    /// The control connection's TCP handshake completed.
    fn connected(&self, _local: SocketAddr, _remote: SocketAddr) {}
    /// A control connection attempt failed.
    fn connect_failed(&self, _remote: SocketAddr, _error: &str) {}
    /// A data connection is up (before any TLS handshake on it).
    fn data_connected(&self, _link: &DataLink) {}
    /// A data connection carried its bytes and is closed.
    fn data_finished(&self, _link: &DataLink, _end: &TransferEnd) {}
    /// The client closed the control connection.
    fn closed(&self, _local: SocketAddr, _remote: SocketAddr) {}
    /// A TLS handshake completed on the control connection (`None`) or a data connection.
    fn tls_handshake(&self, _data: Option<&DataLink>, _info: &TlsInfo) {}
}

/// Two observers as one: each event goes to the first, then to the second.
pub struct Both(pub Arc<dyn Transcript>, pub Arc<dyn Transcript>);

impl Transcript for Both {
    fn trying(&self, addr: SocketAddr) {
        self.0.trying(addr);
        self.1.trying(addr);
    }
    fn sent(&self, line: &str) {
        self.0.sent(line);
        self.1.sent(line);
    }
    fn reply(&self, reply: &Reply) {
        self.0.reply(reply);
        self.1.reply(reply);
    }
    fn note(&self, text: &str) {
        self.0.note(text);
        self.1.note(text);
    }
    fn warning(&self, text: &str) {
        self.0.warning(text);
        self.1.warning(text);
    }
    fn resolving(&self, host: &str) {
        self.0.resolving(host);
        self.1.resolving(host);
    }
    fn resolved(&self, host: &str, addrs: &[SocketAddr], source: AnswerSource) {
        self.0.resolved(host, addrs, source);
        self.1.resolved(host, addrs, source);
    }
    fn resolve_failed(&self, host: &str, error: &str) {
        self.0.resolve_failed(host, error);
        self.1.resolve_failed(host, error);
    }
    fn connected(&self, local: SocketAddr, remote: SocketAddr) {
        self.0.connected(local, remote);
        self.1.connected(local, remote);
    }
    fn connect_failed(&self, remote: SocketAddr, error: &str) {
        self.0.connect_failed(remote, error);
        self.1.connect_failed(remote, error);
    }
    fn data_connected(&self, link: &DataLink) {
        self.0.data_connected(link);
        self.1.data_connected(link);
    }
    fn data_finished(&self, link: &DataLink, end: &TransferEnd) {
        self.0.data_finished(link, end);
        self.1.data_finished(link, end);
    }
    fn closed(&self, local: SocketAddr, remote: SocketAddr) {
        self.0.closed(local, remote);
        self.1.closed(local, remote);
    }
    fn tls_handshake(&self, data: Option<&DataLink>, info: &TlsInfo) {
        self.0.tls_handshake(data, info);
        self.1.tls_handshake(data, info);
    }
}

/// The line a transcript shows for a command: the password of `PASS` is masked.
pub fn masked(line: &str) -> String {
    let verb = line.split(' ').next().unwrap_or_default();
    if verb.eq_ignore_ascii_case("PASS") {
        "PASS XXXX".to_string()
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(masked("PASS secret"), "PASS XXXX");
        assert_eq!(masked("pass secret"), "PASS XXXX");
        assert_eq!(masked("USER ftp"), "USER ftp");
        assert_eq!(masked("PASSIVE"), "PASSIVE");
    }
}
