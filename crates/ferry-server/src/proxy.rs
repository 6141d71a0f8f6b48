//! The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer in front of the server
//! starts each connection it forwards with a header naming the real client's address.
//!
//! Off unless trusted source networks are configured (`[proxy_protocol] from`). When on, it is
//! required: every control connection and every passive data connection must come from a
//! trusted network and begin with a header, and the header's source address stands for the
//! client everywhere (limits, bans, logs, the data connections' peer checks).
//!
//! Parsing is `proxy-header`'s; this module reads exactly the header's bytes off the socket
//! (never the client's first bytes after it) and decides what a header means for a connection.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The v2 header's first twelve bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\x00\r\nQUIT\n";
/// A v2 header's fixed part: signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// The longest v2 header accepted: addresses and a few TLVs (HAProxy's are small).
const V2_MAX: usize = 4096;
/// The v1 header's first bytes.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 header, CRLF included (the specification's limit).
const V1_MAX: usize = 107;

/// An IP network, `10.0.0.0/8` or `fd00::/8`; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the network. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as a
    /// dual-stack listener sees IPv4 peers) count as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `ADDRESS/PREFIX` or `ADDRESS`; the address's bits past the prefix must be zero (a
    /// `10.0.0.1/8` is more likely a typo than a network).
    fn from_str(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            format!("{text:?} is not a network like \"10.0.0.0/8\" or \"fd00::/8\"")
        })?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?,
        };
        let cidr = Cidr { network, prefix };
        let masked = cidr.masked();
        if masked != network {
            return Err(format!(
                "{text:?} has bits set past the prefix; the network is {masked}/{prefix}"
            ));
        }
        Ok(cidr)
    }
}

impl Cidr {
    /// The prefix length: how many leading bits name the network.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network's address with every bit past the prefix cleared.
    fn masked(&self) -> IpAddr {
        match self.network {
            IpAddr::V4(ip) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u32::from(ip) & mask).to_be_bytes())
            }
            IpAddr::V6(ip) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u128::from(ip) & mask).to_be_bytes())
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The networks PROXY headers are accepted from (the load balancers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted(Vec<Cidr>);

impl Trusted {
    pub fn new(networks: Vec<Cidr>) -> Trusted {
        Trusted(networks)
    }

    /// Whether a connection from `ip` may (and must) carry a PROXY header.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }
}

/// What a valid header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A forwarded TCP connection from this client address.
    Proxied(SocketAddr),
    /// No client: v2 `LOCAL` (the proxy's own health check), v1 `UNKNOWN`, or a family without
    /// an address to use (unspecified, UNIX). Such a connection is closed quietly.
    Local,
}

/// Why a connection's header was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("no PROXY header: {0}")]
    Invalid(&'static str),
    #[error("the connection closed before its PROXY header was complete")]
    Closed,
    #[error("no complete PROXY header within {0:?}")]
    TimedOut(Duration),
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// Reads the PROXY header that must begin `stream`, within `limit`. Reads exactly the header's
/// bytes: what the client sent after it stays in the socket for the session.
pub async fn read_header(stream: &mut TcpStream, limit: Duration) -> Result<Header, HeaderError> {
    tokio::time::timeout(limit, read_header_bytes(stream))
        .await
        .map_err(|_| HeaderError::TimedOut(limit))
        .and_then(|bytes| parse(&bytes?))
}

/// The header's bytes. Peeks at what has arrived, takes the part that belongs to the header,
/// and waits for more only while the header is incomplete; rejects at once bytes that cannot
/// begin a header (a client that speaks FTP straight away).
async fn read_header_bytes(stream: &mut TcpStream) -> Result<Vec<u8>, HeaderError> {
    let mut header = Vec::with_capacity(64);
    let mut peeked = vec![0; V2_MAX];
    // Every round takes at least one byte, so this ends by V2_MAX rounds.
    for _ in 0..V2_MAX {
        let available = stream.peek(&mut peeked[..V2_MAX - header.len()]).await?;
        if available == 0 {
            return Err(HeaderError::Closed);
        }
        let known = header.len();
        header.extend_from_slice(&peeked[..available]);
        let take = match header_length(&header)? {
            Some(length) => length.min(header.len()),
            None => header.len(),
        };
        header.truncate(take);
        stream.read_exact(&mut peeked[..take - known]).await?;
        if header_length(&header)? == Some(header.len()) {
            return Ok(header);
        }
    }
    Err(HeaderError::Invalid("header too long"))
}

/// The whole header's length, once `start` (the connection's first bytes) tells it; `None`
/// while more bytes are needed to tell; an error when `start` cannot begin a header.
fn header_length(start: &[u8]) -> Result<Option<usize>, HeaderError> {
    let seen = start.len().min(V2_SIGNATURE.len());
    if start[..seen] == V2_SIGNATURE[..seen] {
        if start.len() < V2_FIXED {
            return Ok(None);
        }
        let length = V2_FIXED + usize::from(u16::from_be_bytes([start[14], start[15]]));
        if length > V2_MAX {
            return Err(HeaderError::Invalid("v2 header too long"));
        }
        return Ok(Some(length));
    }
    let seen = start.len().min(V1_PREFIX.len());
    if start[..seen] != V1_PREFIX[..seen] {
        return Err(HeaderError::Invalid(
            "the connection does not start with one",
        ));
    }
    match memchr::memchr(b'\n', start) {
        Some(end) if end < V1_MAX => Ok(Some(end + 1)),
        None if start.len() < V1_MAX => Ok(None),
        _ => Err(HeaderError::Invalid("v1 header longer than 107 bytes")),
    }
}

/// What a complete header says.
fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
    use proxy_header::{ParseConfig, Protocol, ProxyHeader};
    let config = ParseConfig {
        include_tlvs: false,
        allow_v1: true,
        allow_v2: true,
    };
    let (header, length) = ProxyHeader::parse(bytes, config)
        .map_err(|_| HeaderError::Invalid("malformed PROXY header"))?;
    if length != bytes.len() {
        return Err(HeaderError::Invalid("malformed PROXY header"));
    }
    match header.proxied_address() {
        None => Ok(Header::Local),
        Some(address) if address.protocol == Protocol::Stream => {
            let source = address.source;
            Ok(Header::Proxied(SocketAddr::new(
                source.ip().to_canonical(),
                source.port(),
            )))
        }
        Some(_) => Err(HeaderError::Invalid(
            "a datagram (UDP) header on a TCP connection",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_networks_match_their_addresses_only() {
        let net = cidr("10.1.0.0/16");
        assert!(net.contains("10.1.0.0".parse().unwrap()));
        assert!(net.contains("10.1.255.7".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        // As a dual-stack listener sees an IPv4 peer.
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        let host = cidr("127.0.0.2");
        assert_eq!(host.to_string(), "127.0.0.2/32");
        assert!(host.contains("127.0.0.2".parse().unwrap()));
        assert!(!host.contains("127.0.0.1".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn ipv6_networks_match_their_addresses_only() {
        let net = cidr("fd00:1::/32");
        assert!(net.contains("fd00:1::5".parse().unwrap()));
        assert!(net.contains("fd00:1:ffff::1".parse().unwrap()));
        assert!(!net.contains("fd00:2::1".parse().unwrap()));
        assert!(!net.contains("10.0.0.1".parse().unwrap()));
        assert!(cidr("::1").contains("::1".parse().unwrap()));
        assert!(!cidr("::1/128").contains("::2".parse().unwrap()));
        assert!(cidr("::/0").contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn bad_networks_are_refused_with_a_reason() {
        for (text, reason) in [
            ("10.0.0.0/33", "prefix length must be 0 to 32"),
            ("fd00::/129", "prefix length must be 0 to 128"),
            ("10.0.0.0/x", "prefix length"),
            ("10.0.0/8", "not a network"),
            ("localhost", "not a network"),
            ("10.0.0.1/8", "the network is 10.0.0.0/8"),
            ("fd00::1/16", "the network is fd00::/16"),
        ] {
            let error = text.parse::<Cidr>().unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn trusted_is_any_of_its_networks() {
        let trusted = Trusted::new(vec![cidr("127.0.0.2/32"), cidr("fd00::/8")]);
        assert!(trusted.trusts("127.0.0.2".parse().unwrap()));
        assert!(trusted.trusts("fd12::1".parse().unwrap()));
        assert!(!trusted.trusts("127.0.0.1".parse().unwrap()));
        assert!(!Trusted::new(Vec::new()).trusts("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn header_lengths_are_known_as_soon_as_possible() {
        assert_eq!(header_length(b"PRO").unwrap(), None);
        assert_eq!(header_length(b"PROXY TCP4 1.2.3.4").unwrap(), None);
        assert_eq!(header_length(b"PROXY UNKNOWN\r\nUSER x").unwrap(), Some(15));
        assert!(header_length(b"USER ftp\r\n").is_err());
        assert!(header_length(b"PROXYTCP4").is_err());
        assert!(header_length(&[b'P'; 200]).is_err());
        let mut v2 = V2_SIGNATURE.to_vec();
        assert_eq!(header_length(&v2).unwrap(), None);
        v2.extend_from_slice(&[0x21, 0x11, 0, 12]);
        assert_eq!(header_length(&v2).unwrap(), Some(28));
        v2[14..16].copy_from_slice(&[0xff, 0xff]);
        assert!(header_length(&v2).is_err());
    }

    #[test]
    fn headers_say_who_the_client_is() {
        let v1 = b"PROXY TCP4 192.0.2.9 198.51.100.1 40000 21\r\n";
        assert_eq!(
            parse(v1).unwrap(),
            Header::Proxied("192.0.2.9:40000".parse().unwrap())
        );
        let v1 = b"PROXY TCP6 2001:db8::9 2001:db8::1 40000 21\r\n";
        assert_eq!(
            parse(v1).unwrap(),
            Header::Proxied("[2001:db8::9]:40000".parse().unwrap())
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap(), Header::Local);
        assert!(parse(b"PROXY TCP4 192.0.2.9 nonsense 1 2\r\n").is_err());
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 0, 2, 9, 198, 51, 100, 1]);
        v2.extend_from_slice(&[0x9c, 0x40, 0, 21]);
        assert_eq!(
            parse(&v2).unwrap(),
            Header::Proxied("192.0.2.9:40000".parse().unwrap())
        );
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(parse(&local).unwrap(), Header::Local);
        // UDP is not what an FTP connection carries.
        v2[13] = 0x12;
        assert!(parse(&v2).is_err());
    }
}
