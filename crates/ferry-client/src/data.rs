//! Data connections: where to connect in passive mode, and the pending connection of either mode.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::error::FtpError;

/// Where to connect for a 227 reply's address.
///
/// A server behind NAT often announces its private address, which the client cannot reach. Like
/// curl, a private, loopback, link-local or unspecified address that differs from the control
/// connection's peer is replaced by the peer's address; the port is kept.
pub fn passive_target(announced: SocketAddr, control_peer: SocketAddr) -> SocketAddr {
    if announced.ip() == control_peer.ip() || !is_unroutable(announced.ip()) {
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
        assert_eq!(
            passive_target(addr("192.168.0.2:5001"), peer),
            addr("203.0.113.7:5001")
        );
        assert_eq!(
            passive_target(addr("10.1.2.3:5001"), peer),
            addr("203.0.113.7:5001")
        );
        assert_eq!(
            passive_target(addr("0.0.0.0:5001"), peer),
            addr("203.0.113.7:5001")
        );
    }

    #[test]
    fn matching_or_public_addresses_are_kept() {
        let peer = addr("192.168.0.9:21");
        assert_eq!(
            passive_target(addr("192.168.0.9:5001"), peer),
            addr("192.168.0.9:5001")
        );
        assert_eq!(
            passive_target(addr("198.51.100.1:5001"), peer),
            addr("198.51.100.1:5001")
        );
    }

    #[test]
    fn ipv6_control_connection_gets_its_own_address() {
        let peer = addr("[2001:db8::1]:21");
        assert_eq!(
            passive_target(addr("127.0.0.1:5001"), peer),
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
