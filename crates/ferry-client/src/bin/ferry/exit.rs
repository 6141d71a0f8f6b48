//! Exit codes of the `ferry` binary, and which error gets which.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | a command failed for another reason (refused by the server, not connected, bad usage inside a session) |
//! | 2 | bad command-line usage |
//! | 3 | connection failure: unknown host, connection refused or timed out, control connection lost |
//! | 4 | login refused |
//! | 5 | remote file or directory not found or not available |
//! | 6 | transfer broken: data connection failed, timed out or was aborted |
//! | 7 | local I/O error (reading or writing a local file) |
//! | 8 | protocol error: the server sent garbage, over-long lines or unexpected replies |
//! | 9 | TLS failure: the server refused AUTH TLS, the TLS handshake failed, a bad `--cacert` file |
//! | 10 | the server's certificate is not trusted (unknown issuer, wrong name, `--pin` mismatch, changed since it was trusted) |
//! | 11 | verification failed: the file's checksum differs from the server's (`--verify`); the download stays `NAME.part` |
//!
//! In a session fed from standard input, the exit code is that of the first command that failed.

use ferry_client::{ErrorCategory, FtpError};

pub const OK: u8 = 0;
pub const OTHER: u8 = 1;
pub const CONNECTION: u8 = 3;
pub const LOGIN: u8 = 4;
pub const NOT_FOUND: u8 = 5;
pub const TRANSFER: u8 = 6;
pub const LOCAL_IO: u8 = 7;
pub const PROTOCOL: u8 = 8;
pub const TLS: u8 = 9;
pub const CERTIFICATE: u8 = 10;
pub const VERIFICATION: u8 = 11;

/// The text `--help` shows about exit codes.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  a command failed for another reason (refused, not connected, usage inside a session)
  2  bad command-line usage
  3  connection failure (unknown host, refused, timed out, connection lost)
  4  login refused
  5  remote file or directory not found or unavailable
  6  transfer broken (data connection failed, timed out or aborted)
  7  local I/O error
  8  protocol error (garbage, over-long lines or unexpected replies from the server)
  9  TLS failure (AUTH TLS refused, handshake failed, unreadable --cacert file)
  10 server certificate not trusted (unknown issuer, wrong name, --pin mismatch, changed)
  11 verification failed (--verify: checksum differs from the server's; file kept as .part)
When commands come from standard input, the exit code is that of the first failed command.";

/// A bad command line found after parsing (an empty `--exclude`, say): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The exit code for an error of a command.
pub fn code_for(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Usage>().is_some() {
        return 2;
    }
    if let Some(ftp) = error.downcast_ref::<FtpError>() {
        return code_for_category(ftp.category());
    }
    if error.downcast_ref::<std::io::Error>().is_some() {
        return LOCAL_IO;
    }
    OTHER
}

fn code_for_category(category: ErrorCategory) -> u8 {
    match category {
        ErrorCategory::Connection => CONNECTION,
        ErrorCategory::Login => LOGIN,
        ErrorCategory::NotFound => NOT_FOUND,
        ErrorCategory::Transfer => TRANSFER,
        ErrorCategory::Local => LOCAL_IO,
        ErrorCategory::Protocol => PROTOCOL,
        ErrorCategory::Tls => TLS,
        ErrorCategory::Certificate => CERTIFICATE,
        ErrorCategory::Verification => VERIFICATION,
        ErrorCategory::Other => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_have_distinct_codes() {
        let lost = anyhow::Error::new(FtpError::ConnectionClosed);
        assert_eq!(code_for(&lost), CONNECTION);
        let local = anyhow::Error::new(std::io::Error::other("disk full"));
        assert_eq!(code_for(&local), LOCAL_IO);
        assert_eq!(code_for(&anyhow::anyhow!("usage")), OTHER);
        let codes = [
            OK,
            OTHER,
            2,
            CONNECTION,
            LOGIN,
            NOT_FOUND,
            TRANSFER,
            LOCAL_IO,
            PROTOCOL,
            TLS,
            CERTIFICATE,
            VERIFICATION,
        ];
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
    }
}
