//! The errors of the client library, and the categories a program maps to exit codes.

use std::io;
use std::net::SocketAddr;

use ferry_proto::reply::{Reply, ReplyError};

/// What went wrong, broadly: the `ferry` binary maps each category to one exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// Name resolution, connecting, or the control connection dropping.
    Connection,
    /// The server refused the user name or password.
    Login,
    /// The remote file or directory does not exist or is not available (550 and friends).
    NotFound,
    /// A data connection could not be set up, broke, timed out, or the server failed it.
    Transfer,
    /// Reading or writing the local side failed.
    Local,
    /// The server sent something that is not FTP (garbage, huge lines, wrong codes).
    Protocol,
    /// TLS could not be set up: AUTH TLS refused, a failed handshake, a bad CA file.
    Tls,
    /// The server's certificate is not trusted (unknown issuer, wrong pin, changed).
    Certificate,
    /// A transferred file's checksum differs from the server's.
    Verification,
    /// Anything else: a refused command, a bad argument.
    Other,
}

/// An error of the FTP client.
#[derive(Debug, thiserror::Error)]
pub enum FtpError {
    #[error("cannot resolve {host}: {error}")]
    Resolve { host: String, error: io::Error },
    #[error("{host}: no address of the requested family")]
    NoAddress { host: String },
    #[error("cannot connect to {addr}: {error}")]
    Connect { addr: SocketAddr, error: io::Error },
    #[error("timed out after {seconds}s connecting to {addr}")]
    ConnectTimeout { addr: SocketAddr, seconds: u64 },
    #[error("timed out after {seconds}s waiting for the server's reply")]
    ReplyTimeout { seconds: u64 },
    #[error("control connection: {0}")]
    ControlIo(io::Error),
    #[error("the server closed the control connection")]
    ConnectionClosed,
    #[error("the server sent a reply line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("malformed reply from the server: {0}")]
    MalformedReply(#[from] ReplyError),
    #[error("unexpected reply to {command}: {}", summary(.reply))]
    UnexpectedReply { command: String, reply: Reply },
    #[error("login refused: {}", summary(.reply))]
    LoginRefused { reply: Reply },
    #[error("{command}: {}", summary(.reply))]
    Refused { command: String, reply: Reply },
    #[error("{path}: {}", summary(.reply))]
    FileUnavailable { path: String, reply: Reply },
    #[error("data connection: {0}")]
    DataConnection(String),
    #[error("timed out after {seconds}s {action}")]
    DataTimeout { action: &'static str, seconds: u64 },
    #[error("transfer of {path} failed: {}", summary(.reply))]
    TransferFailed { path: String, reply: Reply },
    #[error("transfer of {path} broken: {error}")]
    TransferBroken { path: String, error: io::Error },
    #[error("{path}: cannot resume from byte {offset}: the server's file has {size} bytes")]
    ResumePastEnd {
        path: String,
        offset: u64,
        size: u64,
    },
    #[error("listing is larger than {limit} bytes")]
    ListingTooLarge { limit: usize },
    #[error("local I/O: {0}")]
    Local(io::Error),
    #[error("argument contains a line break: {0:?}")]
    InvalidArgument(String),
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    #[error("the server refuses TLS (AUTH TLS): {}", summary(.reply))]
    TlsRefused { reply: Reply },
    #[error("TLS handshake with {server} failed: {error}")]
    TlsHandshake { server: String, error: String },
    #[error("{path}: {algorithm} mismatch: local {local}, server {remote}")]
    HashMismatch {
        path: String,
        algorithm: &'static str,
        local: String,
        remote: String,
    },
    #[error("{server}: {rejection}")]
    CertificateRejected {
        server: String,
        rejection: crate::tls::Rejection,
    },
}

/// `550 No such file`: the code and the reply's text on one line.
pub fn summary(reply: &Reply) -> String {
    format!("{} {}", reply.code, reply.lines.join(" "))
}

impl FtpError {
    /// The category of this error, for exit codes and retry decisions.
    pub fn category(&self) -> ErrorCategory {
        use FtpError as E;
        match self {
            E::Resolve { .. }
            | E::NoAddress { .. }
            | E::Connect { .. }
            | E::ConnectTimeout { .. }
            | E::ReplyTimeout { .. }
            | E::ControlIo(_)
            | E::ConnectionClosed => ErrorCategory::Connection,
            E::LoginRefused { .. } => ErrorCategory::Login,
            E::FileUnavailable { .. } => ErrorCategory::NotFound,
            E::DataConnection(_)
            | E::DataTimeout { .. }
            | E::TransferFailed { .. }
            | E::TransferBroken { .. }
            | E::ResumePastEnd { .. } => ErrorCategory::Transfer,
            E::Local(_) => ErrorCategory::Local,
            E::LineTooLong { .. }
            | E::MalformedReply(_)
            | E::UnexpectedReply { .. }
            | E::ListingTooLarge { .. } => ErrorCategory::Protocol,
            E::Refused { .. } | E::InvalidArgument(_) => ErrorCategory::Other,
            E::TlsSetup(_) | E::TlsRefused { .. } | E::TlsHandshake { .. } => ErrorCategory::Tls,
            E::CertificateRejected { .. } => ErrorCategory::Certificate,
            E::HashMismatch { .. } => ErrorCategory::Verification,
        }
    }

    /// Whether the control connection is unusable after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            FtpError::ReplyTimeout { .. }
                | FtpError::ControlIo(_)
                | FtpError::ConnectionClosed
                | FtpError::LineTooLong { .. }
                | FtpError::MalformedReply(_)
                | FtpError::TlsHandshake { .. }
                | FtpError::CertificateRejected { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_reply() {
        let error = FtpError::FileUnavailable {
            path: "readme.txt".into(),
            reply: Reply::new(550, "No such file."),
        };
        assert_eq!(error.to_string(), "readme.txt: 550 No such file.");
        assert_eq!(error.category(), ErrorCategory::NotFound);
        assert!(!error.is_fatal());
    }
}
