//! The doctor's checks of this machine: the listen and passive ports can be bound, the passive
//! address is this machine's or plausibly a NAT's, the object stores answer.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use super::{Finding, Report};
use crate::server::Context;

/// What became of a listen address.
#[derive(Debug)]
pub enum Listen {
    /// Free: bound here, for the doctor's own server.
    Bound(TcpListener),
    /// Taken, most likely by a running ferryd, which the doctor then talks to.
    InUse(SocketAddr),
    /// Cannot be used at all (no permission, no such address).
    Unusable,
}

/// The control listener and the implicit FTPS one.
#[derive(Debug)]
pub struct Listeners {
    pub control: Listen,
    pub implicit: Option<Listen>,
}

/// Binds like `ferryd` does (SO_REUSEADDR, so connections in TIME_WAIT do not matter).
fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn listen_port(check: &str, address: SocketAddr, report: &mut Report<impl Write>) -> Listen {
    match bind(address) {
        Ok(listener) => {
            report.add(Finding::ok(check, format!("{address} can be bound")));
            Listen::Bound(listener)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            report.add(Finding::warn(
                check,
                format!("{address} is in use; the checks below talk to whatever holds it"),
                "fine if it is ferryd (systemctl status ferryd); else stop what holds the port",
            ));
            Listen::InUse(address)
        }
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            report.add(Finding::fail(
                check,
                format!("cannot bind {address}: {error}"),
                "ports below 1024 need CAP_NET_BIND_SERVICE (the systemd unit grants it) or root",
            ));
            Listen::Unusable
        }
        Err(error) => {
            report.add(Finding::fail(
                check,
                format!("cannot bind {address}: {error}"),
                "listen on an address of this machine, or 0.0.0.0 / [::] for all",
            ));
            Listen::Unusable
        }
    }
}

/// Binds the listen addresses (kept for the doctor's own server when free).
pub fn listen_ports(context: &Context, report: &mut Report<impl Write>) -> Listeners {
    let config = &context.config;
    let control = listen_port("listen", config.listen, report);
    let implicit = config
        .tls
        .implicit_listen
        .map(|address| listen_port("implicit FTPS listen", address, report));
    Listeners { control, implicit }
}

/// Every port of the passive range can be bound on the listen address.
pub fn passive_ports(context: &Context, report: &mut Report<impl Write>) {
    const CHECK: &str = "passive ports";
    let ip = context.config.listen.ip();
    let Some((start, end)) = context.passive_ports else {
        let finding = match context.passive_addresses {
            Some(_) => Finding::warn(
                CHECK,
                "any free port (no data.passive_ports)",
                "behind NAT or a firewall, set data.passive_ports and forward or open that range",
            ),
            None => Finding::ok(CHECK, "any free port the system gives"),
        };
        return report.add(finding);
    };
    let busy: Vec<u16> = (start..=end)
        .filter(|port| bind(SocketAddr::new(ip, *port)).is_err())
        .collect();
    let total = usize::from(end - start) + 1;
    let finding = match busy.len() {
        0 => Finding::ok(CHECK, format!("all {total} ports of {start}-{end} can be bound")),
        n if n == total => Finding::fail(
            CHECK,
            format!("none of {start}-{end} can be bound on {ip}"),
            "another program holds the range, or a running ferryd is using it all: choose another range",
        ),
        n => Finding::warn(
            CHECK,
            format!("{n} of {total} ports of {start}-{end} are taken (first: {})", busy[0]),
            "fine while ferryd runs (its transfers hold some); otherwise another program shares the range",
        ),
    };
    report.add(finding);
}

/// Whether `ip` is one of this machine's addresses (it can be bound).
pub fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// An address that is never a NAT's public one.
fn is_special(ip: Ipv4Addr) -> bool {
    let shared = u32::from(ip) & 0xffc0_0000 == 0x6440_0000; // 100.64.0.0/10, carrier-grade NAT
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || shared
}

/// Each address PASV may advertise is this machine's, or plausibly a NAT's public one.
pub fn passive_addresses(context: &Context, report: &mut Report<impl Write>) {
    let Some(addresses) = &context.passive_addresses else {
        let listen = context.config.listen.ip();
        let detail = match listen.is_unspecified() {
            true => "not set: PASV names the address each client connected to".to_string(),
            false => format!("not set: PASV names {listen}"),
        };
        return report.add(Finding::ok("passive address", detail));
    };
    for (network, ip) in addresses.entries() {
        let check = match &network {
            Some(network) => format!("passive address for {network}"),
            None => "passive address".to_string(),
        };
        report.add(passive_address(check, ip));
    }
}

fn passive_address(check: String, ip: Ipv4Addr) -> Finding {
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Finding::fail(
            check,
            format!("{ip} cannot be connected to"),
            "set data.passive_address to the address clients reach this server at",
        );
    }
    if is_local(IpAddr::V4(ip)) {
        return Finding::ok(check, format!("{ip} is an address of this machine"));
    }
    if is_special(ip) {
        return Finding::warn(
            check,
            format!("{ip} is neither this machine's nor a public address"),
            "clients told to connect there reach nothing: use this machine's address or the NAT's public one",
        );
    }
    Finding::ok(
        check,
        format!("{ip} is not this machine's: plausibly the NAT's public address"),
    )
}

/// The `s3://` roots' buckets answer.
pub async fn object_stores(context: &Context, report: &mut Report<impl Write>) {
    let objects = context
        .roots()
        .iter()
        .filter(|root| crate::storage::ObjectRoot::parse(root).is_some())
        .count();
    if objects == 0 {
        return;
    }
    let finding = match context.check_object_roots().await {
        Ok(()) => Finding::ok("object stores", format!("{objects} s3:// root(s) answer")),
        Err(error) => Finding::fail(
            "object stores",
            error,
            "check s3.endpoint, the credentials and the bucket's name",
        ),
    };
    report.add(finding);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_told_apart() {
        let finding = |text: &str| passive_address("p".into(), text.parse().unwrap());
        assert_eq!(finding("127.0.0.1").status, super::super::Status::Ok);
        assert_eq!(finding("0.0.0.0").status, super::super::Status::Fail);
        // 10.255.255.254 is not on this machine (tests run on loopback only).
        let private = finding("10.255.255.254");
        assert_eq!(private.status, super::super::Status::Warn, "{private:?}");
        let public = finding("8.8.8.8");
        assert!(public.detail.contains("NAT"), "{public:?}");
        assert!(is_special("100.64.1.1".parse().unwrap()));
        assert!(!is_special("100.128.1.1".parse().unwrap()));
    }
}
