//! Test certificates made at run time with rcgen (no private key is checked in): a CA, and a
//! server certificate it signed for `127.0.0.1` and `localhost`, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// PEM files of a test PKI, and the server certificate's DER for fingerprints.
pub struct TestPki {
    /// The CA certificate (for `--cacert`).
    pub ca_pem: PathBuf,
    /// The server certificate.
    pub cert_pem: PathBuf,
    /// The server's private key (ECDSA P-256, PKCS#8).
    pub key_pem: PathBuf,
    pub cert_der: Vec<u8>,
}

impl TestPki {
    /// Makes a CA and a server certificate in `dir`.
    pub fn create(dir: &Path) -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Ferry test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "ferry test server");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        TestPki {
            ca_pem: write("ca.pem", ca_cert.pem()),
            cert_pem: write("server.pem", cert.pem()),
            key_pem: write("server.key", key.serialize_pem()),
            cert_der: cert.der().to_vec(),
        }
    }

    /// The server certificate's `SHA256:<hex>` fingerprint.
    pub fn fingerprint(&self) -> ferry_client::Fingerprint {
        ferry_client::Fingerprint::of(&self.cert_der)
    }
}
