//! Data connections: where to connect in passive mode, and the pending connection of either mode.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::error::FtpError;

/// Where to connect for a 227 reply's address: the control connection's server, at the
/// reply's port (as curl does by default), so that a server cannot direct the client's data
/// to another host; with `trust`, the announced address, unless it is one no other host could
/// reach (private, loopback, link-local, unspecified) and differs from the control peer's (a
/// server behind NAT announcing its inside address).
pub fn passive_target(announced: SocketAddr, control_peer: SocketAddr, trust: bool) -> SocketAddr {
    let kept = announced.ip() == control_peer.ip() || (trust && !is_unroutable(announced.ip()));
    if kept {
        return announced;
    }
    SocketAddr::new(control_peer.ip(), announced.port())
}

/// Addresses that are not reachable from elsewhere on the Internet.
fn is_unroutable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A data connection being set up: connected (passive) or waiting for the server (active).
#[derive(Debug)]
pub enum PendingData {
    Connected(TcpStream),
    Listening(TcpListener),
}

impl PendingData {
    /// The data stream: accepts the server's connection in active mode, within `timeout`.
    /// A connection from any host other than `control_peer` is refused (PORT bounce defence).
    pub async fn establish(
        self,
        control_peer: IpAddr,
        timeout: Duration,
    ) -> Result<TcpStream, FtpError> {
        let listener = match self {
            PendingData::Connected(stream) => return Ok(stream),
            PendingData::Listening(listener) => listener,
        };
        let seconds = timeout.as_secs();
        tokio::time::timeout(timeout, accept_from(&listener, control_peer))
            .await
            .map_err(|_| FtpError::DataTimeout {
                action: "waiting for the server to open the data connection",
                seconds,
            })?
    }
}

async fn accept_from(listener: &TcpListener, control_peer: IpAddr) -> Result<TcpStream, FtpError> {
    loop {
        let (stream, from) = listener
            .accept()
            .await
            .map_err(|e| FtpError::DataConnection(format!("accept: {e}")))?;
        if same_host(from.ip(), control_peer) {
            return Ok(stream);
        }
    }
}

/// Compares addresses, treating an IPv4-mapped IPv6 address as its IPv4 address.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Connects to a passive-mode address within `timeout`.
pub async fn connect_passive(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, FtpError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(FtpError::DataConnection(format!(
            "connect to {addr}: {error}"
        ))),
        Err(_) => Err(FtpError::DataTimeout {
            action: "connecting the data connection",
            seconds: timeout.as_secs(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_address_behind_nat_becomes_the_peer() {
        let peer = addr("203.0.113.7:21");
        for trust in [false, true] {
            for announced in ["192.168.0.2:5001", "10.1.2.3:5001", "0.0.0.0:5001"] {
                assert_eq!(
                    passive_target(addr(announced), peer, trust),
                    addr("203.0.113.7:5001")
                );
            }
        }
    }

    #[test]
    fn another_host_is_reached_only_when_trusted() {
        let peer = addr("192.168.0.9:21");
        assert_eq!(
            passive_target(addr("192.168.0.9:5001"), peer, false),
            addr("192.168.0.9:5001")
        );
        // A server that names another host does not get the client's data sent there...
        assert_eq!(
            passive_target(addr("198.51.100.1:5001"), peer, false),
            addr("192.168.0.9:5001")
        );
        // ...unless the user trusts PASV addresses (a server farm with a data address).
        assert_eq!(
            passive_target(addr("198.51.100.1:5001"), peer, true),
            addr("198.51.100.1:5001")
        );
    }

    #[test]
    fn ipv6_control_connection_gets_its_own_address() {
        let peer = addr("[2001:db8::1]:21");
        assert_eq!(
            passive_target(addr("127.0.0.1:5001"), peer, true),
            addr("[2001:db8::1]:5001")
        );
    }

    #[test]
    fn mapped_addresses_count_as_the_same_host() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(same_host(mapped, "127.0.0.1".parse().unwrap()));
        assert!(!same_host(mapped, "127.0.0.2".parse().unwrap()));
    }
}
