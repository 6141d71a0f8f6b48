//! The address PASV advertises (RFC 959 §4.1.2), for a server behind NAT: one address or host
//! name, or one per client network, since behind NAT clients on the LAN must be told the
//! server's own address and clients on the internet the NAT's public one.
//!
//! Host names are resolved when the configuration is loaded (at start, and again on each
//! reload, which builds a new [`crate::Context`]), never per command.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::str::FromStr;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::proxy::Cidr;

/// The key of a network map's entry for every client no network matches.
pub const DEFAULT_KEY: &str = "default";

/// `data.passive_address` as written: `"203.0.113.7"`, `"ftp.example.com"`, or a table of
/// client networks to addresses, `{ "10.0.0.0/8" = "10.0.0.5", default = "ftp.example.com" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PassiveAddress {
    One(String),
    ByNetwork(BTreeMap<String, String>),
}

impl FromStr for PassiveAddress {
    type Err = std::convert::Infallible;

    /// One address or host name (checked when resolved).
    fn from_str(text: &str) -> Result<PassiveAddress, Self::Err> {
        Ok(PassiveAddress::One(text.to_string()))
    }
}

/// The resolved answer for each client: the most specific network that holds the client's
/// address wins; else the default; else (`None`) the control connection's local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveAddresses {
    /// Longest prefix first.
    by_network: Vec<(Cidr, Ipv4Addr)>,
    default: Option<Ipv4Addr>,
}

impl PassiveAddresses {
    /// Checks every entry and resolves host names; an error names the entry.
    pub fn resolve(setting: &PassiveAddress) -> Result<PassiveAddresses, ConfigError> {
        match setting {
            PassiveAddress::One(text) => Ok(PassiveAddresses {
                by_network: Vec::new(),
                default: Some(resolve_entry("data.passive_address", text)?),
            }),
            PassiveAddress::ByNetwork(map) => resolve_map(map),
        }
    }

    /// The address to advertise to a client at `client`, if one is configured for it.
    pub fn for_client(&self, client: IpAddr) -> Option<Ipv4Addr> {
        self.by_network
            .iter()
            .find(|(network, _)| network.contains(client))
            .map(|(_, address)| *address)
            .or(self.default)
    }

    /// Every address it may advertise, each with the network it is for (`None`: the default).
    pub fn entries(&self) -> Vec<(Option<String>, Ipv4Addr)> {
        let mut entries: Vec<_> = self
            .by_network
            .iter()
            .map(|(network, address)| (Some(network.to_string()), *address))
            .collect();
        entries.extend(self.default.map(|address| (None, address)));
        entries
    }
}

fn resolve_map(map: &BTreeMap<String, String>) -> Result<PassiveAddresses, ConfigError> {
    let mut by_network = Vec::with_capacity(map.len());
    let mut default = None;
    for (key, value) in map {
        let name = format!("data.passive_address.{key:?}");
        let address = resolve_entry(&name, value)?;
        if key == DEFAULT_KEY {
            default = Some(address);
            continue;
        }
        let network = key.parse::<Cidr>().map_err(|reason| {
            ConfigError::Invalid(format!(
                "data.passive_address: {reason} (keys are client networks, or \"{DEFAULT_KEY}\")"
            ))
        })?;
        by_network.push((network, address));
    }
    by_network.sort_by_key(|(network, _)| std::cmp::Reverse(network.prefix()));
    Ok(PassiveAddresses {
        by_network,
        default,
    })
}

/// An IPv4 address, or a host name resolved to its first IPv4 address (PASV names IPv4 only).
fn resolve_entry(name: &str, text: &str) -> Result<Ipv4Addr, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid(format!("{name} = {text:?}: {reason}"));
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(address)) => return Ok(address),
        Ok(IpAddr::V6(_)) => return Err(invalid(
            "PASV advertises IPv4 addresses only (IPv6 clients use EPSV, which names no address)"
                .into(),
        )),
        Err(_) => {}
    }
    if !is_host_name(text) {
        return Err(invalid("not an IPv4 address or a host name".into()));
    }
    let addresses = (text, 0)
        .to_socket_addrs()
        .map_err(|e| invalid(format!("cannot resolve: {e}")))?;
    addresses
        .filter_map(|address| match address.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| invalid("resolves to no IPv4 address".into()))
}

/// Letters, digits, hyphens and dots, in labels of 1 to 63 characters (RFC 1123 §2.1).
fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> PassiveAddress {
        PassiveAddress::ByNetwork(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_most_specific_network_wins_then_the_default() {
        let resolved = PassiveAddresses::resolve(&map(&[
            ("10.0.0.0/8", "10.0.0.5"),
            ("10.1.0.0/16", "10.1.0.5"),
            ("default", "203.0.113.7"),
        ]))
        .unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(
            resolved.for_client(ip("10.1.2.3")),
            Some([10, 1, 0, 5].into())
        );
        assert_eq!(
            resolved.for_client(ip("10.2.2.3")),
            Some([10, 0, 0, 5].into())
        );
        assert_eq!(
            resolved.for_client(ip("::ffff:10.2.2.3")),
            Some([10, 0, 0, 5].into())
        );
        assert_eq!(
            resolved.for_client(ip("198.51.100.1")),
            Some([203, 0, 113, 7].into())
        );
        let no_default = PassiveAddresses::resolve(&map(&[("10.0.0.0/8", "10.0.0.5")])).unwrap();
        assert_eq!(no_default.for_client(ip("198.51.100.1")), None);
    }

    #[test]
    fn host_names_resolve() {
        let resolved = PassiveAddresses::resolve(&"localhost".parse().unwrap()).unwrap();
        let answer = resolved.for_client([192, 0, 2, 1].into()).unwrap();
        assert!(answer.is_loopback(), "{answer}");
    }

    #[test]
    fn bad_entries_are_named() {
        let error =
            |setting: PassiveAddress| PassiveAddresses::resolve(&setting).unwrap_err().to_string();
        let text = error(map(&[("10.0.0.0/40", "10.0.0.5")]));
        assert!(
            text.contains("\"10.0.0.0/40\"") && text.contains("prefix"),
            "{text}"
        );
        let text = error(map(&[("10.0.0.0/8", "not an address!")]));
        assert!(
            text.starts_with("data.passive_address.\"10.0.0.0/8\" = \"not an address!\""),
            "{text}"
        );
        let text = error(map(&[("default", "2001:db8::1")]));
        assert!(text.contains("IPv4"), "{text}");
        let text = error("no-such-host.invalid".parse().unwrap());
        assert!(
            text.starts_with("data.passive_address = \"no-such-host.invalid\": cannot resolve"),
            "{text}"
        );
    }

    #[test]
    fn the_file_takes_an_address_or_a_table() {
        #[derive(Deserialize)]
        struct Data {
            passive_address: PassiveAddress,
        }
        let one: Data = toml::from_str("passive_address = \"ftp.example.com\"").unwrap();
        assert_eq!(one.passive_address, "ftp.example.com".parse().unwrap());
        let table: Data = toml::from_str(
            "passive_address = { \"10.0.0.0/8\" = \"10.0.0.5\", default = \"203.0.113.7\" }",
        )
        .unwrap();
        assert_eq!(
            table.passive_address,
            map(&[("10.0.0.0/8", "10.0.0.5"), ("default", "203.0.113.7")])
        );
    }
}
