//! FTPS (RFC 4217): the server's TLS configuration and certificates, and the acceptor each
//! session gets.
//!
//! Every session gets its own copy of the TLS configuration with its own session cache, so a
//! data connection that resumes a TLS session can only be resuming one of this session's (the
//! control connection's): data-connection reuse is enforced by checking that the data
//! handshake was a resumption (see `session::transfer`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{CipherSuite, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{TlsConfig, VhostConfig};

/// How many TLS sessions one FTP session keeps for its data connections to resume.
const SESSIONS_PER_CONNECTION: usize = 32;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate file {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("cannot read key file {path}: {message}")]
    Key { path: String, message: String },
    #[error("certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("vhost {name:?}: certificate and key do not work together: {message}")]
    Vhost { name: String, message: String },
}

/// The server's TLS settings, ready to make per-session acceptors.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    base: Arc<ServerConfig>,
}

impl TlsSettings {
    /// Loads the certificate and key, or generates a self-signed pair when asked; `None` when
    /// the configuration names neither. Virtual hosts with certificates of their own get them
    /// when the client names them (SNI).
    pub fn load(
        config: &TlsConfig,
        server_name: &str,
        vhosts: &[VhostConfig],
    ) -> Result<Option<TlsSettings>, TlsError> {
        let (certificates, key) = match (&config.certificate, &config.key) {
            (Some(certificate), Some(key)) => (read_certificates(certificate)?, read_key(key)?),
            _ if config.self_signed => self_signed(server_name)?,
            _ => return Ok(None),
        };
        let provider = Arc::new(aes_128_first(serving_provider()));
        let mut resolver = ByServerName {
            default: Arc::new(CertifiedKey::from_der(certificates, key, &provider)?),
            named: HashMap::new(),
        };
        for vhost in vhosts {
            let (Some(certificate), Some(key)) = (&vhost.certificate, &vhost.key) else {
                continue;
            };
            let certified = Arc::new(
                CertifiedKey::from_der(read_certificates(certificate)?, read_key(key)?, &provider)
                    .map_err(|e| TlsError::Vhost {
                        name: vhost.name.clone(),
                        message: e.to_string(),
                    })?,
            );
            for name in vhost.names() {
                resolver.named.insert(name, Arc::clone(&certified));
            }
        }
        let mut base = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        // The server's order (see `aes_128_first`), not the client's.
        base.ignore_client_order = true;
        Ok(Some(TlsSettings {
            base: Arc::new(base),
        }))
    }

    /// The acceptors for one FTP session's control and data connections, sharing a session
    /// cache of their own.
    pub fn session_acceptors(&self) -> SessionAcceptors {
        let mut control = (*self.base).clone();
        control.session_storage = Arc::new(ReusableSessions(ServerSessionMemoryCache::new(
            SESSIONS_PER_CONNECTION,
        )));
        // Clients built on rustls use each TLS 1.3 ticket once (OpenSSL and GnuTLS reuse one):
        // the control connection hands out a stock of them, and every download one more.
        control.send_tls13_tickets = CONTROL_TICKETS;
        let mut download = control.clone();
        download.send_tls13_tickets = 1;
        // No tickets on uploads: a client that only sends never reads them, and unread bytes
        // make its close a reset that can cut the upload short.
        let mut upload = control.clone();
        upload.send_tls13_tickets = 0;
        SessionAcceptors {
            control: TlsAcceptor::from(Arc::new(control)),
            download: TlsAcceptor::from(Arc::new(download)),
            upload: TlsAcceptor::from(Arc::new(upload)),
        }
    }
}

/// The cryptography FTPS connections are served with: aws-lc-rs, whose AES-GCM uses AVX-512
/// (VAES, VPCLMULQDQ) where the CPU has it. Bulk transfers spend much of their CPU time in the
/// cipher: on 1 GiB downloads over loopback (2 cores with AVX-512), ring's AVX2 code took
/// about 25 % of ferryd's CPU time, aws-lc's about 15 %. Other TLS work (the doctor's probes,
/// object-store clients) keeps ring.
fn serving_provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// `provider` with its AES-128-GCM suites first, for the server to choose over the client's
/// order: most clients (rustls, OpenSSL) list AES-256-GCM first, which costs 14 AES rounds per
/// block against 10 for no practical gain in security. The other suites keep their order.
///
/// The cost: a client without AES instructions that lists ChaCha20-Poly1305 first gets
/// AES-128-GCM too, slower for it; such clients are rare among those that move big files.
fn aes_128_first(mut provider: CryptoProvider) -> CryptoProvider {
    provider
        .cipher_suites
        .sort_by_key(|suite| !is_aes_128_gcm(suite.suite()));
    provider
}

fn is_aes_128_gcm(suite: CipherSuite) -> bool {
    matches!(
        suite,
        CipherSuite::TLS13_AES_128_GCM_SHA256
            | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    )
}

/// The certificate for the name the client asks for (SNI): a vhost's, else the server's.
#[derive(Debug)]
struct ByServerName {
    default: Arc<CertifiedKey>,
    named: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ByServerName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello
            .server_name()
            .and_then(|name| self.named.get(&name.to_ascii_lowercase()));
        Some(Arc::clone(named.unwrap_or(&self.default)))
    }
}

/// TLS 1.3 tickets sent on a control connection (rustls clients keep up to 8 per server).
const CONTROL_TICKETS: usize = 8;

/// One FTP session's TLS acceptors.
#[derive(Clone)]
pub struct SessionAcceptors {
    pub control: TlsAcceptor,
    /// For data connections that send to the client (RETR, listings).
    pub download: TlsAcceptor,
    /// For data connections that receive from the client (STOR, APPE, STOU).
    pub upload: TlsAcceptor,
}

/// A session cache whose TLS 1.3 tickets may be used more than once. rustls makes stateful
/// tickets single-use (`take`), which protects 0-RTT data from replay; FTP has no 0-RTT, and
/// clients (GnuTLS in lftp, for one) resume every data connection from the same control
/// connection ticket, so a ticket is looked up here without being removed.
#[derive(Debug)]
struct ReusableSessions(Arc<ServerSessionMemoryCache>);

impl rustls::server::StoresServerSessions for ReusableSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.0.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }

    fn can_cache(&self) -> bool {
        self.0.can_cache()
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |message: String| TlsError::Certificate {
        path: path.display().to_string(),
        message,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(certificates)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A certificate for the server's name, localhost and the loopback addresses, made now.
fn self_signed(
    server_name: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let names = vec![
        server_name.to_string(),
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((vec![generated.cert.der().clone()], key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_settings_make_acceptors() {
        let config = TlsConfig {
            self_signed: true,
            ..TlsConfig::default()
        };
        let settings = TlsSettings::load(&config, "ftp.example.com", &[])
            .unwrap()
            .unwrap();
        let first = settings.session_acceptors();
        let second = settings.session_acceptors();
        assert!(
            !Arc::ptr_eq(first.control.config(), second.control.config()),
            "each session has its own cache"
        );
        assert_eq!(first.upload.config().send_tls13_tickets, 0);
        assert_eq!(first.download.config().send_tls13_tickets, 1);
    }

    #[test]
    fn aes_128_gcm_is_preferred() {
        let suites: Vec<CipherSuite> = aes_128_first(serving_provider())
            .cipher_suites
            .iter()
            .map(|suite| suite.suite())
            .collect();
        assert_eq!(suites[0], CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert!(suites.contains(&CipherSuite::TLS13_AES_256_GCM_SHA384));
        assert!(suites.contains(&CipherSuite::TLS13_CHACHA20_POLY1305_SHA256));
    }

    #[test]
    fn missing_files_are_reported_by_name() {
        let config = TlsConfig {
            certificate: Some("/nonexistent/cert.pem".into()),
            key: Some("/nonexistent/key.pem".into()),
            ..TlsConfig::default()
        };
        let error = TlsSettings::load(&config, "x", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/cert.pem"), "{error}");
        assert!(TlsSettings::load(&TlsConfig::default(), "x", &[])
            .unwrap()
            .is_none());
    }
}
