//! FTPS in the binary: the known-hosts file, the `--insecure` warning, and trust on first use:
//! an unknown certificate that no root vouches for is offered to the user of an interactive
//! session, and refused with its fingerprint (and the `--pin` flag) otherwise.

use std::path::PathBuf;

use anyhow::Context;
use ferry_client::tls::known_hosts::{self, KnownHosts};
use ferry_client::tls::Rejection;
use ferry_client::{Client, ClientConfig, Fingerprint, FtpError, TlsMode};

use crate::printer::printable;

/// How the session asks the user a question; `None` when nobody can answer (piped input).
pub type Ask<'a> = Option<&'a mut dyn FnMut(&str) -> Option<String>>;

/// Where trusted fingerprints are kept, and whether checking is off.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: Option<PathBuf>,
    insecure: bool,
}

impl TrustStore {
    pub fn new(known_hosts: Option<PathBuf>, insecure: bool) -> Self {
        TrustStore {
            path: known_hosts.or_else(known_hosts::default_path),
            insecure,
        }
    }

    fn known(&self, host: &str, port: u16) -> Vec<Fingerprint> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        match KnownHosts::load(path) {
            Ok(known) => known.lookup(host, port),
            Err(error) => {
                eprintln!("ferry: warning: cannot read {}: {error}", path.display());
                Vec::new()
            }
        }
    }

    fn remember(&self, host: &str, port: u16, fingerprint: &Fingerprint) {
        let Some(path) = &self.path else {
            return;
        };
        match KnownHosts::append(path, host, port, fingerprint) {
            Ok(()) => println!("Remembered {fingerprint} in {}.", path.display()),
            Err(error) => eprintln!("ferry: warning: cannot write {}: {error}", path.display()),
        }
    }
}

/// Connects to `host`:`port`; with TLS, the known hosts are trusted too, and an untrusted
/// certificate is offered to `ask` (once) before giving up.
pub async fn connect(
    host: &str,
    port: u16,
    mut config: ClientConfig,
    store: &TrustStore,
    ask: Ask<'_>,
) -> anyhow::Result<Client> {
    if config.tls.mode == TlsMode::Off {
        return Ok(Client::connect(host, port, config).await?);
    }
    if store.insecure {
        eprintln!(
            "ferry: warning: --insecure: the server's certificate is not checked; anyone on the \
             way can read and change this session (prefer --pin)"
        );
    }
    config.tls.trust.known = store.known(host, port);
    let error = match Client::connect(host, port, config.clone()).await {
        Ok(client) => return Ok(client),
        Err(error) => error,
    };
    let FtpError::CertificateRejected {
        rejection: Rejection::Untrusted { seen, reason },
        ..
    } = &error
    else {
        return Err(explain(error, store));
    };
    let (seen, reason) = (*seen, reason.clone());
    let Some(ask) = ask else {
        return Err(explain(error, store));
    };
    if !offer(ask, host, port, &seen, &reason) {
        return Err(explain(error, store));
    }
    store.remember(host, port, &seen);
    config.tls.trust.known.push(seen);
    Ok(Client::connect(host, port, config).await?)
}

/// Shows the certificate and asks whether to trust it.
fn offer(
    ask: &mut dyn FnMut(&str) -> Option<String>,
    host: &str,
    port: u16,
    seen: &Fingerprint,
    reason: &str,
) -> bool {
    println!(
        "The certificate of {} is not trusted: {}.\nIts fingerprint is {seen}.",
        printable(&known_hosts::entry_key(host, port)),
        printable(reason)
    );
    let answer = ask("Trust this certificate and remember it? (y/N) ");
    answer.is_some_and(|a| matches!(a.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// The error with what to do about it: which fingerprint to pin, or which line to remove.
fn explain(error: FtpError, store: &TrustStore) -> anyhow::Error {
    let hint = match &error {
        FtpError::CertificateRejected {
            rejection: Rejection::Untrusted { seen, .. },
            ..
        } => format!(
            "not trusting an unknown certificate without asking; if {seen} is the server's \
             certificate, run again with --pin {seen} (or --cacert FILE with its CA)"
        ),
        FtpError::CertificateRejected {
            rejection: Rejection::Changed { .. },
            ..
        } => format!(
            "the certificate changed since it was trusted; if the change is expected, remove \
             the server's line from {}",
            store
                .path
                .as_ref()
                .map_or("the known-hosts file".into(), |p| p.display().to_string())
        ),
        _ => return error.into(),
    };
    anyhow::Error::new(error).context(hint)
}

/// Reads a yes/no answer from a terminal on stdin, for one-shot commands.
pub fn ask_on_terminal(prompt: &str) -> Option<String> {
    use std::io::{BufRead, Write};
    print!("{prompt}");
    std::io::stdout().flush().ok()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the answer")
        .ok()?;
    Some(line)
}
