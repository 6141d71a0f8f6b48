//! Explicit FTPS (RFC 4217) for `--tls`: the client TLS configuration, and a certificate check
//! that accepts any certificate.
//!
//! **For benchmarking only.** The bench talks to servers that `bench/compare.sh` (or a test)
//! started on 127.0.0.1 with throwaway self-signed certificates, so it has nothing to verify a
//! certificate against. [`AnyCertificate`] accepts every certificate but still checks the
//! handshake signatures (with the aws-lc-rs provider's algorithms), so the TLS work a server does is
//! the same as with a verifying client. Never use this module to move data you care about.
//!
//! Servers such as ferryd and vsftpd (`require_ssl_reuse`) refuse a data connection that does
//! not resume the control connection's TLS session. rustls resumes from the client
//! configuration's session store, keyed by server name, so every FTP session gets its own
//! configuration ([`TlsClient::session`]: a fresh in-memory store) and uses it, with the same
//! server name, for its control connection and all its data connections. A store shared between
//! sessions would offer one session's tickets on another's data connections.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::BenchError;

/// How to speak TLS to one server: a client configuration and the name to present.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// A configuration that accepts any certificate (see the module documentation), for the
    /// server called `host` (a DNS name or an IP address).
    pub fn accept_any_certificate(host: &str) -> Result<TlsClient, BenchError> {
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| BenchError::ServerName(host.to_string()))?;
        // aws-lc-rs: its AES-GCM (AVX-512 where the CPU has it) costs the bench less CPU than
        // ring's, leaving more of a shared machine to the server measured.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(BenchError::TlsConfig)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    /// A copy for one FTP session, with a session store of its own (see the module docs).
    pub fn session(&self) -> TlsClient {
        let mut config = (*self.config).clone();
        config.resumption = Resumption::default();
        TlsClient {
            config: Arc::new(config),
            server_name: self.server_name.clone(),
        }
    }

    /// Runs the client handshake on `stream`; resumes a stored session when there is one.
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let connector = TlsConnector::from(self.config.clone());
        connector.connect(self.server_name.clone(), stream).await
    }
}

/// Accepts every server certificate; checks the handshake signatures. Benchmarking only.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_addresses() {
        assert!(TlsClient::accept_any_certificate("127.0.0.1").is_ok());
        assert!(TlsClient::accept_any_certificate("localhost").is_ok());
        assert!(TlsClient::accept_any_certificate("not a name").is_err());
    }
}
