//! FTPS (RFC 4217): TLS on the control connection (explicit with AUTH TLS, or implicit from the
//! first byte) and on data connections after PBSZ 0 / PROT P.
//!
//! One [`TlsContext`] serves a whole session: the control connection and every data connection
//! use the same `Arc<rustls::ClientConfig>` and the same [`ServerName`], so each data connection
//! resumes the control connection's TLS session from rustls's in-memory session cache, as
//! servers with `require_ssl_reuse` (vsftpd) demand.
//!
//! - [`fingerprint`]: `SHA256:<hex>` certificate fingerprints.
//! - [`verify`]: the certificate verifier (pins, known hosts, webpki roots).
//! - [`known_hosts`]: the trust-on-first-use file.

pub mod fingerprint;
pub mod known_hosts;
mod validity;
pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::FtpError;
pub use fingerprint::Fingerprint;
pub use verify::{CertVerifier, Rejection, TrustPolicy};

/// Whether and how a session uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain FTP.
    #[default]
    Off,
    /// AUTH TLS after the greeting; a refusal is an error.
    Explicit,
    /// AUTH TLS after the greeting; on a refusal, go on in plain FTP (with a warning).
    Opportunistic,
    /// TLS from the first byte (usually port 990).
    Implicit,
}

/// The TLS protocol versions offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.3 and 1.2.
    #[default]
    Any,
    Tls12Only,
    Tls13Only,
}

impl std::str::FromStr for TlsVersions {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "1.2" => Ok(TlsVersions::Tls12Only),
            "1.3" => Ok(TlsVersions::Tls13Only),
            "any" => Ok(TlsVersions::Any),
            _ => Err(format!("TLS version must be 1.2, 1.3 or any, not {text:?}")),
        }
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, Default)]
pub enum Roots {
    /// The operating system's store (rustls-native-certs).
    #[default]
    System,
    /// The certificates of a PEM file, instead of the system's.
    PemFile(PathBuf),
    /// These certificates, instead of the system's.
    Certificates(Vec<CertificateDer<'static>>),
}

/// The TLS settings of a [`crate::ClientConfig`].
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub mode: TlsMode,
    pub roots: Roots,
    pub trust: TrustPolicy,
    pub versions: TlsVersions,
    /// Protect data connections (PBSZ 0, PROT P) once the control connection is TLS.
    pub protect_data: bool,
    /// The name checked against the certificate; defaults to the host connected to.
    pub server_name: Option<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            mode: TlsMode::Off,
            roots: Roots::System,
            trust: TrustPolicy::default(),
            versions: TlsVersions::Any,
            protect_data: true,
            server_name: None,
        }
    }
}

/// What a TLS connection negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: String,
    pub cipher_suite: String,
    /// Whether the handshake resumed an earlier session.
    pub resumed: bool,
}

impl TlsInfo {
    /// The negotiated parameters of a connection (after its handshake).
    pub fn of(connection: &rustls::ClientConnection) -> Self {
        let version = connection.protocol_version().map(|v| format!("{v:?}"));
        let suite = connection.negotiated_cipher_suite();
        TlsInfo {
            version: version.unwrap_or_default(),
            cipher_suite: suite
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            resumed: connection.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }
}

/// The TLS state shared by a session's connections.
#[derive(Debug, Clone)]
pub struct TlsContext {
    config: Arc<ClientConfig>,
    verifier: Arc<CertVerifier>,
    server_name: ServerName<'static>,
    /// What the user calls the server, for messages.
    server: String,
}

impl TlsContext {
    /// Builds the rustls configuration for `options`; `host` names the server (an address or
    /// a DNS name) unless `options.server_name` does.
    pub fn new(options: &TlsOptions, host: &str, port: u16) -> Result<Self, FtpError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let name = options.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| FtpError::TlsSetup(format!("{name} is not a valid TLS server name")))?;
        let webpki = webpki_verifier(&options.roots, &options.trust, provider.clone())?;
        let exact = exact_certificates(&options.roots, &options.trust)?;
        let verifier = Arc::new(
            CertVerifier::new(options.trust.clone(), webpki, provider.clone()).with_exact(exact),
        );
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(protocol_versions(options.versions))
            .map_err(|error| FtpError::TlsSetup(error.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(TlsContext {
            config: Arc::new(config),
            verifier,
            server_name,
            server: known_hosts::entry_key(host, port),
        })
    }

    /// The verifier, to ask which certificate was seen or refused.
    pub fn verifier(&self) -> &CertVerifier {
        &self.verifier
    }

    /// Runs a TLS handshake as the client over `tcp` within `timeout`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, FtpError> {
        let connector = TlsConnector::from(self.config.clone());
        let handshake = connector.connect(self.server_name.clone(), tcp);
        let result = tokio::time::timeout(timeout, handshake).await;
        match result {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(self.handshake_error(error.to_string())),
            Err(_) => Err(self.handshake_error(format!("timed out after {}s", timeout.as_secs()))),
        }
    }

    /// The error for a failed handshake: the verifier's refusal if it refused, else `error`.
    fn handshake_error(&self, error: String) -> FtpError {
        match self.verifier.take_rejection() {
            Some(rejection) => FtpError::CertificateRejected {
                server: self.server.clone(),
                rejection,
            },
            None => FtpError::TlsHandshake {
                server: self.server.clone(),
                error,
            },
        }
    }
}

static BOTH: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
static ONLY_12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
static ONLY_13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

fn protocol_versions(versions: TlsVersions) -> &'static [&'static SupportedProtocolVersion] {
    match versions {
        TlsVersions::Any => &BOTH,
        TlsVersions::Tls12Only => &ONLY_12,
        TlsVersions::Tls13Only => &ONLY_13,
    }
}

/// The webpki verifier over the trusted roots; `None` when no root is available (then only
/// pins and known hosts pass) or when nothing is checked anyway.
fn webpki_verifier(
    roots: &Roots,
    trust: &TrustPolicy,
    provider: Arc<CryptoProvider>,
) -> Result<Option<Arc<WebPkiServerVerifier>>, FtpError> {
    if trust.insecure || trust.pin.is_some() {
        return Ok(None);
    }
    let store = root_store(roots)?;
    if store.is_empty() {
        return Ok(None);
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map(Some)
        .map_err(|error| FtpError::TlsSetup(error.to_string()))
}

/// The certificates given as roots (not the system's), which a server may also present as
/// its own certificate.
fn exact_certificates(
    roots: &Roots,
    trust: &TrustPolicy,
) -> Result<Vec<CertificateDer<'static>>, FtpError> {
    if trust.insecure || trust.pin.is_some() {
        return Ok(Vec::new());
    }
    match roots {
        Roots::System => Ok(Vec::new()),
        Roots::PemFile(path) => read_pem_certificates(path),
        Roots::Certificates(certificates) => Ok(certificates.clone()),
    }
}

fn root_store(roots: &Roots) -> Result<RootCertStore, FtpError> {
    let mut store = RootCertStore::empty();
    let certificates = match roots {
        Roots::System => rustls_native_certs::load_native_certs().certs,
        Roots::Certificates(certificates) => certificates.clone(),
        Roots::PemFile(path) => read_pem_certificates(path)?,
    };
    store.add_parsable_certificates(certificates);
    if store.is_empty() && !matches!(roots, Roots::System) {
        return Err(FtpError::TlsSetup("no usable CA certificate given".into()));
    }
    Ok(store)
}

/// The certificates of a PEM file.
pub fn read_pem_certificates(
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, FtpError> {
    let error = |reason: String| FtpError::TlsSetup(format!("{}: {reason}", path.display()));
    let iterator = CertificateDer::pem_file_iter(path).map_err(|e| error(e.to_string()))?;
    let certificates: Vec<_> = iterator
        .collect::<Result<_, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no certificate in the file".into()));
    }
    Ok(certificates)
}
