//! Turning a host name into the addresses to try: DNS (all A and AAAA records), address
//! family filters (`-4`/`-6`) and curl-style `--resolve` pins.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::error::FtpError;
use crate::trace::AnswerSource;

/// Which address families to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    Any,
    V4,
    V6,
}

impl AddressFamily {
    fn accepts(self, addr: &SocketAddr) -> bool {
        match self {
            AddressFamily::Any => true,
            AddressFamily::V4 => addr.is_ipv4(),
            AddressFamily::V6 => addr.is_ipv6(),
        }
    }
}

/// A pinned address: `host:addr` (any port) or curl's `host:port:addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    pub host: String,
    pub port: Option<u16>,
    pub addr: IpAddr,
}

/// Why a `--resolve` argument is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected HOST:ADDRESS or HOST:PORT:ADDRESS, got {0:?}")]
pub struct ResolveSyntaxError(String);

impl FromStr for ResolveOverride {
    type Err = ResolveSyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ResolveSyntaxError(text.to_string());
        let (host, rest) = text.split_once(':').ok_or_else(error)?;
        if host.is_empty() {
            return Err(error());
        }
        let (port, addr) = match parse_ip(rest) {
            Some(addr) => (None, addr),
            None => {
                let (port, addr) = rest.split_once(':').ok_or_else(error)?;
                let port = port.parse().map_err(|_| error())?;
                (Some(port), parse_ip(addr).ok_or_else(error)?)
            }
        };
        Ok(ResolveOverride {
            host: host.to_string(),
            port,
            addr,
        })
    }
}

/// Parses an IP address, IPv6 with or without brackets.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner.parse().ok()
}

/// The pinned addresses for `host:port`, if any `--resolve` matches.
fn pinned(host: &str, port: u16, overrides: &[ResolveOverride]) -> Vec<SocketAddr> {
    overrides
        .iter()
        .filter(|o| o.host.eq_ignore_ascii_case(host) && o.port.is_none_or(|p| p == port))
        .map(|o| SocketAddr::new(o.addr, port))
        .collect()
}

/// Every address to try for `host:port`, in the resolver's order, filtered by family.
pub async fn resolve(
    host: &str,
    port: u16,
    family: AddressFamily,
    overrides: &[ResolveOverride],
) -> Result<Vec<SocketAddr>, FtpError> {
    let (addrs, _) = lookup(host, port, overrides).await?;
    filter(host, addrs, family)
}

/// The addresses of `host:port` before the family filter, and where they came from: a
/// `--resolve` pin, the name itself (an address), or the system resolver.
pub async fn lookup(
    host: &str,
    port: u16,
    overrides: &[ResolveOverride],
) -> Result<(Vec<SocketAddr>, AnswerSource), FtpError> {
    let host = unbracketed(host);
    let addrs = pinned(host, port, overrides);
    if !addrs.is_empty() {
        return Ok((addrs, AnswerSource::Pinned));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((vec![SocketAddr::new(ip, port)], AnswerSource::Literal));
    }
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| FtpError::Resolve {
            host: host.to_string(),
            error,
        })?
        .collect();
    Ok((addrs, AnswerSource::Resolver))
}

/// Where the addresses of `host:port` will come from, without looking them up.
pub fn answer_source(host: &str, port: u16, overrides: &[ResolveOverride]) -> AnswerSource {
    let host = unbracketed(host);
    if !pinned(host, port, overrides).is_empty() {
        AnswerSource::Pinned
    } else if host.parse::<IpAddr>().is_ok() {
        AnswerSource::Literal
    } else {
        AnswerSource::Resolver
    }
}

fn unbracketed(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Keeps the addresses of `family`, each once; none left is an error naming `host`.
pub fn filter(
    host: &str,
    mut addrs: Vec<SocketAddr>,
    family: AddressFamily,
) -> Result<Vec<SocketAddr>, FtpError> {
    let host = unbracketed(host);
    addrs.retain(|addr| family.accepts(addr));
    addrs.dedup();
    if addrs.is_empty() {
        return Err(FtpError::NoAddress {
            host: host.to_string(),
        });
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_override_forms() {
        let any: ResolveOverride = "ftp.example.com:127.0.0.1".parse().unwrap();
        assert_eq!(any.port, None);
        assert_eq!(any.addr, IpAddr::from([127, 0, 0, 1]));
        let curl: ResolveOverride = "ftp.example.com:2121:[::1]".parse().unwrap();
        assert_eq!(curl.port, Some(2121));
        assert_eq!(curl.addr, "::1".parse::<IpAddr>().unwrap());
        let bare_v6: ResolveOverride = "h:::1".parse().unwrap();
        assert_eq!(bare_v6.addr, "::1".parse::<IpAddr>().unwrap());
        for bad in ["", "host", ":1.2.3.4", "host:notanip", "host:99999:1.2.3.4"] {
            assert!(bad.parse::<ResolveOverride>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn pins_win_and_family_filters() {
        let pins = vec![
            "ftp.test:127.0.0.1".parse().unwrap(),
            "ftp.test:21:[::1]".parse().unwrap(),
        ];
        let all = resolve("ftp.test", 21, AddressFamily::Any, &pins).await;
        assert_eq!(all.unwrap().len(), 2);
        let v6 = resolve("FTP.test", 21, AddressFamily::V6, &pins).await;
        assert_eq!(v6.unwrap(), vec!["[::1]:21".parse().unwrap()]);
        let other_port = resolve("ftp.test", 2121, AddressFamily::Any, &pins).await;
        assert_eq!(other_port.unwrap(), vec!["127.0.0.1:2121".parse().unwrap()]);
    }

    #[tokio::test]
    async fn literals_resolve_without_dns() {
        let addrs = resolve("[::1]", 21, AddressFamily::Any, &[]).await.unwrap();
        assert_eq!(addrs, vec!["[::1]:21".parse().unwrap()]);
        let none = resolve("127.0.0.1", 21, AddressFamily::V6, &[]).await;
        assert!(matches!(none, Err(FtpError::NoAddress { .. })));
    }
}
