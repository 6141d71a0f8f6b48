//! The one error type of the library: what failed, and against which server or file.

use std::net::SocketAddr;
use std::path::PathBuf;

use ferry_proto::Reply;

/// Why a workload could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what} with {addr} failed: {source}")]
    Io {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what} with {addr} timed out")]
    Timeout {
        what: &'static str,
        addr: SocketAddr,
    },
    #[error("{addr} closed the control connection")]
    Closed { addr: SocketAddr },
    #[error("{addr} sent a control line longer than {limit} bytes")]
    LineTooLong { addr: SocketAddr, limit: usize },
    #[error("{addr} sent a malformed reply: {source}")]
    Reply {
        addr: SocketAddr,
        source: ferry_proto::reply::ReplyError,
    },
    #[error("{addr} answered {command:?} with {reply}")]
    Unexpected {
        addr: SocketAddr,
        command: String,
        reply: Reply,
    },
    #[error("cannot find the data port in {addr}'s reply {reply}")]
    PassiveReply { addr: SocketAddr, reply: Reply },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("transfer from {addr} moved {actual} bytes, expected {expected}")]
    ShortTransfer {
        addr: SocketAddr,
        expected: u64,
        actual: u64,
    },
    #[error("no workload iteration completed within the time limit")]
    NothingCompleted,
    #[error("cannot read process memory: {0}")]
    Memory(String),
    #[error("the ceiling's sender thread panicked")]
    SenderPanicked,
    #[error("{0:?} is not a valid TLS server name (a DNS name or an IP address)")]
    ServerName(String),
    #[error("cannot set up TLS: {0}")]
    TlsConfig(rustls::Error),
    #[error("cannot raise the open-file limit to {wanted} (hard limit {hard}; beyond it needs root, and at most fs.nr_open): {errno}")]
    FileLimit {
        wanted: u64,
        hard: u64,
        errno: std::io::Error,
    },
    #[error("{0} clients need more loopback source addresses than 127.0.0.1-254")]
    TooManyClients(usize),
}
