//! Observing a session: the commands sent and the replies received, for `verbose` and `debug`.

use std::net::SocketAddr;

use ferry_proto::reply::Reply;

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
