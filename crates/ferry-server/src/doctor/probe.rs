//! The doctor as a client: a control connection, PASV and EPSV listings over the advertised
//! address, and a TLS data connection that must resume the control connection's TLS session.
//!
//! When the listen port is free the doctor runs the configured server itself for the length of
//! the checks (with a one-off read-only account when anonymous logins are off); when it is
//! taken, it talks to the server that holds it.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::account::DoctorAccount;
use super::client::{connect, listing, read_listing, Control, STEP};
use super::local::{is_local, Listen, Listeners};
use super::tls::client_config;
use super::{Finding, Report};
use crate::config::TlsPolicy;
use crate::server::Context;

/// Where the doctor connects, and which addresses it may be sent to.
struct Target {
    control: SocketAddr,
    /// The configured addresses: the only ones PASV may send the doctor to.
    allowed: Vec<IpAddr>,
    user: String,
    password: String,
}

/// Runs the client checks.
pub async fn run(context: Context, listeners: Listeners, report: &mut Report<impl Write>) {
    if context.proxy.is_some() {
        return report.add(Finding::warn(
            CLIENT,
            "skipped: the PROXY protocol is on, and the doctor is not the proxy",
            "check through the load balancer with any FTP client, e.g. curl ftp://HOST/",
        ));
    }
    let account = DoctorAccount::new(&context);
    // Checked where a server is: the doctor's own (both listeners free) or a running one.
    let implicit = match (&listeners.control, &listeners.implicit) {
        (Listen::Bound(_), Some(Listen::Bound(listener))) => listener.local_addr().ok(),
        (Listen::InUse(_), Some(Listen::InUse(address))) => Some(*address),
        _ => None,
    };
    let Some((listen, server)) = server_to_check(&context, &account, listeners, report) else {
        return;
    };
    let (user, password) = match (&server, context.config.anonymous.enabled) {
        (_, true) => ("anonymous".to_string(), "doctor@".to_string()),
        (Some(_), false) => (account.user.clone(), account.password.clone()),
        (None, false) => {
            return report.add(Finding::warn(
                CLIENT,
                "skipped: a running server with anonymous logins off",
                "stop ferryd while the doctor runs, so that it can run the server itself",
            ))
        }
    };
    let target = Target {
        control: control_address(listen, &context),
        allowed: allowed_addresses(listen, &context),
        user,
        password,
    };
    checks(&context, &target, implicit, report).await;
    if let Some(server) = server {
        server.stop().await;
    }
}

/// The name of the findings about the client checks as a whole.
const CLIENT: &str = "client";

/// The listen address of the server to check, and the doctor's own server when it started one.
fn server_to_check(
    context: &Context,
    account: &DoctorAccount,
    listeners: Listeners,
    report: &mut Report<impl Write>,
) -> Option<(SocketAddr, Option<OwnServer>)> {
    match listeners.control {
        Listen::Unusable => {
            report.add(Finding::warn(
                CLIENT,
                "skipped: the listen address cannot be used",
                "fix the listen check above first",
            ));
            None
        }
        Listen::InUse(address) => Some((address, None)),
        Listen::Bound(listener) => {
            let config = context.config.clone();
            match OwnServer::start(config, account.clone(), listener, listeners.implicit) {
                Ok((address, server)) => Some((address, Some(server))),
                Err(error) => {
                    report.add(Finding::fail(CLIENT, error, "see the configuration check"));
                    None
                }
            }
        }
    }
}

/// Plain, TLS and implicit FTPS connections, as the configuration allows them.
async fn checks(
    context: &Context,
    target: &Target,
    implicit: Option<SocketAddr>,
    report: &mut Report<impl Write>,
) {
    if plain_allowed(context, target) {
        plain_checks(target, report).await;
    } else {
        report.add(Finding::ok(
            "plain connections",
            "refused by the configuration (TLS required): checked over TLS only",
        ));
    }
    if context.tls.is_some() && context.config.tls.control != TlsPolicy::Off {
        report.add(tls_check(target).await);
    }
    if let Some(address) = implicit {
        report.add(implicit_check(control_address(address, context)).await);
    }
}

/// The control address to connect to: the listen address; for a wildcard, a configured passive
/// address of this machine (so PASV's answer is reachable), else loopback.
fn control_address(listen: SocketAddr, context: &Context) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let local_passive = context.passive_addresses.as_ref().and_then(|addresses| {
        addresses
            .entries()
            .into_iter()
            .map(|(_, ip)| IpAddr::V4(ip))
            .find(|ip| is_local(*ip))
    });
    let loopback = match listen {
        SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
        SocketAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(local_passive.unwrap_or(loopback), listen.port())
}

fn allowed_addresses(listen: SocketAddr, context: &Context) -> Vec<IpAddr> {
    let mut allowed = vec![control_address(listen, context).ip()];
    if let Some(addresses) = &context.passive_addresses {
        allowed.extend(
            addresses
                .entries()
                .into_iter()
                .map(|(_, ip)| IpAddr::V4(ip)),
        );
    }
    allowed
}

/// Whether this login may use plain control and data connections.
fn plain_allowed(context: &Context, target: &Target) -> bool {
    let tls = &context.config.tls;
    let exempt = target.user == "anonymous" && tls.anonymous_exempt;
    exempt || (tls.control != TlsPolicy::Required && tls.data != TlsPolicy::Required)
}
/// Connects, reads the greeting and logs in.
async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    control: &mut Control<S>,
    target: &Target,
) -> Result<(), String> {
    control
        .expect(&format!("USER {}", target.user), 331)
        .await?;
    control
        .expect(&format!("PASS {}", target.password), 230)
        .await
        .map_err(|_| "PASS: login refused".to_string())?;
    control.expect("TYPE I", 200).await?;
    Ok(())
}

/// The plain control connection, then a PASV and an EPSV listing.
async fn plain_checks(target: &Target, report: &mut Report<impl Write>) {
    const CHECK: &str = "control connection";
    let (mut control, local) = match plain_login(target).await {
        Ok(connected) => connected,
        Err(error) => {
            return report.add(Finding::fail(
                CHECK,
                error,
                "is ferryd running there, and does the firewall let this machine in?",
            ))
        }
    };
    report.add(Finding::ok(
        CHECK,
        format!("{} answers, {} logs in", target.control, target.user),
    ));
    if local.is_ipv4() {
        report.add(passive_listing(&mut control, target, local, "PASV").await);
    }
    report.add(passive_listing(&mut control, target, local, "EPSV").await);
    let _ = control.command("QUIT").await;
}

/// A plain control connection, logged in; and its local address.
async fn plain_login(target: &Target) -> Result<(Control<TcpStream>, IpAddr), String> {
    let stream = connect(target.control, None).await?;
    let local = stream.local_addr().map_err(|e| e.to_string())?.ip();
    let mut control = Control {
        reader: BufReader::new(stream),
    };
    let (code, greeting) = control.reply().await?;
    if code != 220 {
        return Err(format!("greeting: {greeting}"));
    }
    login(&mut control, target).await?;
    Ok((control, local))
}

/// The data address a PASV or EPSV reply names, if it is one the doctor may connect to.
fn data_address(verb: &str, text: &str, target: &Target) -> Result<SocketAddr, String> {
    let argument = text.get(4..).unwrap_or("");
    let address = match verb {
        "PASV" => {
            ferry_proto::hostport::parse_pasv_reply(argument).map_err(|e| format!("{text}: {e}"))?
        }
        _ => SocketAddr::new(
            target.control.ip(),
            ferry_proto::hostport::parse_epsv_reply(argument)
                .map_err(|e| format!("{text}: {e}"))?,
        ),
    };
    if !target.allowed.contains(&address.ip()) {
        return Err(format!(
            "{verb} named {}, which is not a configured address; not connecting",
            address.ip()
        ));
    }
    Ok(address)
}

async fn passive_listing<S: AsyncRead + AsyncWrite + Unpin>(
    control: &mut Control<S>,
    target: &Target,
    local: IpAddr,
    verb: &str,
) -> Finding {
    let check = format!("{verb} data connection");
    let reply = match control.command(verb).await {
        Ok((227 | 229, text)) => text,
        Ok((_, text)) => {
            return Finding::fail(
                check,
                text,
                "data.passive_enabled must be on for clients behind NAT",
            )
        }
        Err(error) => return Finding::fail(check, error, "the control connection broke"),
    };
    let address = match data_address(verb, &reply, target) {
        Ok(address) => address,
        Err(error) => {
            return Finding::fail(
                check,
                error,
                "set data.passive_address to this server's public address",
            )
        }
    };
    // From the control connection's own address, as ferryd takes passive connections only from
    // the client's address.
    let data = match connect(address, Some(local)).await {
        Ok(data) => data,
        Err(error) if !is_local(address.ip()) => {
            return Finding::warn(
                check,
                format!("{error} (from this machine)"),
                "normal behind a NAT without hairpinning: check from outside that the passive ports are forwarded",
            )
        }
        Err(error) if address.ip() != target.control.ip() => {
            return Finding::fail(
                check,
                error,
                "ferryd takes data connections on the address the client reached it at: advertise that one, or the NAT's",
            )
        }
        Err(error) => {
            return Finding::fail(check, error, "does a firewall on this machine block the passive ports?")
        }
    };
    match listing(control, data).await {
        Ok(bytes) => Finding::ok(check, format!("LIST over {address}: {bytes} bytes")),
        Err(error) => Finding::fail(check, error, "see ferryd's log for the session"),
    }
}
/// AUTH TLS, PROT P, and a listing over a TLS data connection that resumes the control
/// connection's session.
async fn tls_check(target: &Target) -> Finding {
    const CHECK: &str = "TLS data connection";
    match tls_listing(target).await {
        Ok(detail) => Finding::ok(CHECK, detail),
        Err(error) => Finding::fail(
            CHECK,
            error,
            "see ferryd's log; tls.require_session_reuse needs clients that resume",
        ),
    }
}

async fn tls_listing(target: &Target) -> Result<String, String> {
    let connector = tokio_rustls::TlsConnector::from(client_config()?);
    let name = rustls::pki_types::ServerName::IpAddress(target.control.ip().into());
    let stream = connect(target.control, None).await?;
    let local = stream.local_addr().map_err(|e| e.to_string())?.ip();
    let mut plain = Control {
        reader: BufReader::new(stream),
    };
    plain.reply().await?;
    plain.expect("AUTH TLS", 234).await?;
    let stream = plain.reader.into_inner();
    let secured = tokio::time::timeout(STEP, connector.connect(name.clone(), stream))
        .await
        .map_err(|_| "TLS handshake: no answer within 10 s".to_string())?
        .map_err(|e| format!("TLS handshake on the control connection: {e}"))?;
    let mut control = Control {
        reader: BufReader::new(secured),
    };
    control.expect("PBSZ 0", 200).await?;
    control.expect("PROT P", 200).await?;
    login(&mut control, target).await?;
    let text = control.expect("EPSV", 229).await?;
    let address = data_address("EPSV", &text, target)?;
    let data = connect(address, Some(local)).await?;
    control
        .reader
        .get_mut()
        .write_all(b"LIST\r\n")
        .await
        .map_err(|e| e.to_string())?;
    match control.reply().await? {
        (125 | 150, _) => {}
        (_, text) => return Err(format!("LIST: {text}")),
    }
    let data = tokio::time::timeout(STEP, connector.connect(name, data))
        .await
        .map_err(|_| "TLS handshake on the data connection: no answer within 10 s".to_string())?
        .map_err(|e| format!("TLS handshake on the data connection: {e}"))?;
    let resumed = data.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let mut data = data;
    let bytes = read_listing(&mut data).await?;
    match control.reply().await? {
        (226 | 250, _) => {}
        (_, text) => return Err(format!("after LIST: {text}")),
    }
    let _ = control.command("QUIT").await;
    if !resumed {
        return Err("the data connection's TLS session was not a resumption".into());
    }
    Ok(format!(
        "LIST over {address} with TLS, session resumed: {bytes} bytes"
    ))
}

/// A TLS connection from the first byte to the implicit FTPS listener, and its greeting.
async fn implicit_check(address: SocketAddr) -> Finding {
    const CHECK: &str = "implicit FTPS";
    match implicit_greeting(address).await {
        Ok(greeting) => Finding::ok(CHECK, format!("{address} answers over TLS: {greeting}")),
        Err(error) => Finding::fail(
            CHECK,
            error,
            "see ferryd's log; is tls.implicit_listen's port open?",
        ),
    }
}

async fn implicit_greeting(address: SocketAddr) -> Result<String, String> {
    let connector = tokio_rustls::TlsConnector::from(client_config()?);
    let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
    let stream = connect(address, None).await?;
    let secured = tokio::time::timeout(STEP, connector.connect(name, stream))
        .await
        .map_err(|_| "TLS handshake: no answer within 10 s".to_string())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let mut control = Control {
        reader: BufReader::new(secured),
    };
    let (code, greeting) = control.reply().await?;
    if code != 220 {
        return Err(format!("greeting: {greeting}"));
    }
    let _ = control.command("QUIT").await;
    Ok(greeting)
}

/// The configured server, run by the doctor on the listener it bound.
struct OwnServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl OwnServer {
    fn start(
        config: crate::config::Config,
        account: DoctorAccount,
        listener: std::net::TcpListener,
        implicit: Option<Listen>,
    ) -> Result<(SocketAddr, OwnServer), String> {
        let context =
            Context::with_authenticator(config, Arc::new(account)).map_err(|e| e.to_string())?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let implicit = match implicit {
            Some(Listen::Bound(implicit)) => {
                Some(tokio::net::TcpListener::from_std(implicit).map_err(|e| e.to_string())?)
            }
            _ => None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crate::server::run_with_implicit_tls(
            listener,
            implicit,
            Arc::new(context),
            stopped,
        ));
        Ok((address, OwnServer { stop, task }))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(STEP, self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            control: "127.0.0.1:2121".parse().unwrap(),
            allowed: vec!["127.0.0.1".parse().unwrap(), "127.0.0.9".parse().unwrap()],
            user: "anonymous".into(),
            password: "doctor@".into(),
        }
    }

    #[test]
    fn only_configured_addresses_are_connected_to() {
        let target = target();
        let address = data_address(
            "PASV",
            "227 Entering Passive Mode (127,0,0,9,195,80).",
            &target,
        );
        assert_eq!(address, Ok("127.0.0.9:50000".parse().unwrap()));
        let error = data_address(
            "PASV",
            "227 Entering Passive Mode (10,0,0,1,195,80).",
            &target,
        )
        .unwrap_err();
        assert!(
            error.contains("10.0.0.1") && error.contains("not connecting"),
            "{error}"
        );
        // EPSV's address is the control connection's.
        let address = data_address(
            "EPSV",
            "229 Entering Extended Passive Mode (|||50001|)",
            &target,
        );
        assert_eq!(address, Ok("127.0.0.1:50001".parse().unwrap()));
        assert!(data_address("PASV", "227 nonsense", &target).is_err());
    }
}
