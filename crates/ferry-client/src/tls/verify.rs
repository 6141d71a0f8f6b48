//! [`CertVerifier`]: rustls's certificate check for Ferry. A pinned fingerprint (`--pin`) is
//! required exactly; otherwise the webpki verifier decides against the trusted roots, and a
//! certificate it refuses still passes when its fingerprint is a known host's (trust on first
//! use). A server certificate that is byte for byte one of the `--cacert` certificates passes
//! as itself, if valid now and for the server's name: `openssl req -x509` marks a self-signed
//! certificate as a CA, which webpki refuses as a server's own (`CaUsedAsEndEntity`), while
//! curl and lftp accept it. `insecure` accepts anything. The handshake signatures are always checked, so a pinned
//! or known certificate proves the server holds its key.
//!
//! Every refusal is remembered with the certificate's fingerprint, so the caller can tell the
//! user what to pin or offer to trust it.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};

use super::fingerprint::Fingerprint;
use super::validity::validity;

/// Why a server certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("certificate {seen} does not match the pinned {expected}")]
    PinMismatch {
        seen: Fingerprint,
        expected: Fingerprint,
    },
    #[error("certificate {seen} is not trusted: {reason}")]
    Untrusted { seen: Fingerprint, reason: String },
    #[error("certificate {seen} differs from the one in known_hosts and is not trusted: {reason}")]
    Changed { seen: Fingerprint, reason: String },
}

impl Rejection {
    /// The fingerprint of the refused certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        match self {
            Rejection::PinMismatch { seen, .. }
            | Rejection::Untrusted { seen, .. }
            | Rejection::Changed { seen, .. } => *seen,
        }
    }
}

/// What the verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// The only certificate accepted, when set.
    pub pin: Option<Fingerprint>,
    /// Certificates accepted for this server although no root vouches for them.
    pub known: Vec<Fingerprint>,
    /// Accept any certificate.
    pub insecure: bool,
}

/// The certificate verifier shared by a session's control and data connections.
#[derive(Debug)]
pub struct CertVerifier {
    policy: TrustPolicy,
    /// `None` when there are no trusted roots at all: only pins and known hosts pass.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    /// Certificates trusted as themselves (those of `--cacert`).
    exact: Vec<CertificateDer<'static>>,
    seen: Mutex<Option<Fingerprint>>,
    rejection: Mutex<Option<Rejection>>,
}

impl CertVerifier {
    pub fn new(
        policy: TrustPolicy,
        webpki: Option<Arc<WebPkiServerVerifier>>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        CertVerifier {
            policy,
            webpki,
            provider,
            exact: Vec::new(),
            seen: Mutex::new(None),
            rejection: Mutex::new(None),
        }
    }

    /// Also accepts a server certificate identical to one of `certificates` (checked for
    /// the server's name and its dates, not for a chain).
    pub fn with_exact(mut self, certificates: Vec<CertificateDer<'static>>) -> Self {
        self.exact = certificates;
        self
    }

    /// The fingerprint of the last certificate checked, accepted or not.
    pub fn last_seen(&self) -> Option<Fingerprint> {
        self.seen.lock().ok().and_then(|seen| *seen)
    }

    /// The last refusal, taken (so a later failure is not blamed on it).
    pub fn take_rejection(&self) -> Option<Rejection> {
        self.rejection.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Records a refusal and returns it as rustls's error.
    fn remember(&self, rejection: Rejection) -> Error {
        let error = Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            rejection.clone(),
        ))));
        self.record(rejection);
        error
    }

    fn record(&self, rejection: Rejection) {
        if let Ok(mut slot) = self.rejection.lock() {
            *slot = Some(rejection);
        }
    }

    /// The webpki verdict; without roots, every certificate is of an unknown issuer.
    fn webpki_verdict(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }
}

/// The verdict on a certificate trusted as itself: it must be for `server_name` and valid
/// at `now`.
fn accept_as_itself(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, Error> {
    let parsed = ParsedCertificate::try_from(end_entity)?;
    verify_server_name(&parsed, server_name)?;
    let (not_before, not_after) =
        validity(end_entity).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < not_before {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > not_after {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(ServerCertVerified::assertion())
}

impl ServerCertVerifier for CertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let seen = Fingerprint::of(end_entity);
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(seen);
        }
        if self.policy.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(expected) = self.policy.pin {
            return match seen == expected {
                true => Ok(ServerCertVerified::assertion()),
                false => Err(self.remember(Rejection::PinMismatch { seen, expected })),
            };
        }
        if self.policy.known.contains(&seen) {
            return Ok(ServerCertVerified::assertion());
        }
        let verdict = match self.exact.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            true => accept_as_itself(end_entity, server_name, now),
            false => {
                self.webpki_verdict(end_entity, intermediates, server_name, ocsp_response, now)
            }
        };
        verdict.inspect_err(|error| {
            let reason = error.to_string();
            self.record(match self.policy.known.is_empty() {
                true => Rejection::Untrusted { seen, reason },
                false => Rejection::Changed { seen, reason },
            });
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
