//! The doctor's certificate check: the chain and key can be read and belong together, the
//! certificate is valid now and for how many more days, and it names the server.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use super::{Finding, Report};
use crate::config::Config;

/// A certificate expiring within this many days gets a warning.
const RENEW_WITHIN_DAYS: i64 = 14;

/// Checks the configured certificate (or says FTPS is off, or self-signed).
pub fn check(config: &Config, server_name: &str, report: &mut Report<impl Write>) {
    const CHECK: &str = "certificate";
    let (Some(certificate), Some(key)) = (&config.tls.certificate, &config.tls.key) else {
        let finding = match config.tls.self_signed {
            true => Finding::warn(
                CHECK,
                "self-signed, made anew at each start",
                "clients must skip verification or pin it after every restart; configure tls.certificate and tls.key",
            ),
            false => Finding::ok(CHECK, "none: FTPS is off"),
        };
        return report.add(finding);
    };
    let chain = match read_chain(certificate) {
        Ok(chain) => chain,
        Err(error) => {
            return report.add(Finding::fail(
                CHECK,
                error,
                "tls.certificate must be a PEM file (the certificate first, then its chain)",
            ))
        }
    };
    let key_finding = key_match(&chain, key);
    let key_ok = key_finding.is_none();
    if let Some(finding) = key_finding {
        report.add(finding);
    }
    let leaf = match x509_parser::parse_x509_certificate(&chain[0]) {
        Ok((_, leaf)) => leaf,
        Err(error) => {
            return report.add(Finding::fail(
                CHECK,
                format!("{}: cannot parse: {error}", certificate.display()),
                "the first PEM block must be the server's certificate",
            ))
        }
    };
    report.add(validity(&leaf));
    report.add(names(&leaf, server_name));
    if key_ok {
        report.add(Finding::ok("certificate key", "matches the certificate"));
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|blocks| blocks.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(chain)
}

/// `None` when the key can be read and is the certificate's; else the failure.
fn key_match(chain: &[CertificateDer<'static>], key: &Path) -> Option<Finding> {
    const CHECK: &str = "certificate key";
    let der = match PrivateKeyDer::from_pem_file(key) {
        Ok(der) => der,
        Err(error) => {
            return Some(Finding::fail(
                CHECK,
                format!("cannot read {}: {error}", key.display()),
                "tls.key must be a PEM private key (PKCS#8, PKCS#1 or SEC1) readable by ferryd",
            ))
        }
    };
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(chain.to_vec(), der, &provider) {
        Ok(_) => None,
        Err(error) => Some(Finding::fail(
            CHECK,
            format!(
                "{} does not go with the certificate: {error}",
                key.display()
            ),
            "tls.key must be the private key the certificate was issued for",
        )),
    }
}

fn validity(leaf: &x509_parser::certificate::X509Certificate<'_>) -> Finding {
    const CHECK: &str = "certificate validity";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let not_before = leaf.validity().not_before.timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    let days_left = (not_after - now).div_euclid(86_400);
    if now < not_before {
        return Finding::fail(
            CHECK,
            format!("not valid before {}", leaf.validity().not_before),
            "check this machine's clock, or the certificate's dates",
        );
    }
    if now > not_after {
        return Finding::fail(
            CHECK,
            format!(
                "expired {} days ago ({})",
                -days_left,
                leaf.validity().not_after
            ),
            "renew the certificate; clients that verify refuse it",
        );
    }
    if days_left < RENEW_WITHIN_DAYS {
        return Finding::warn(
            CHECK,
            format!(
                "expires in {days_left} days ({})",
                leaf.validity().not_after
            ),
            "renew it soon, then reload ferryd (systemctl reload ferryd)",
        );
    }
    Finding::ok(
        CHECK,
        format!(
            "expires in {days_left} days ({})",
            leaf.validity().not_after
        ),
    )
}

/// The names the certificate is for: its subject alternative names (DNS and IP), else its
/// common name.
fn certificate_names(leaf: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(Some(extension)) = leaf.subject_alternative_name() {
        for name in &extension.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.extend(
            leaf.subject()
                .iter_common_name()
                .filter_map(|name| name.as_str().ok().map(str::to_string)),
        );
    }
    names
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// Whether `pattern` (a name or `*.domain`, matching one label) covers `name`.
fn name_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(domain) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
        None => pattern == name,
    }
}

fn names(leaf: &x509_parser::certificate::X509Certificate<'_>, server_name: &str) -> Finding {
    const CHECK: &str = "certificate names";
    let names = certificate_names(leaf);
    let listed = names.join(", ");
    if names
        .iter()
        .any(|pattern| name_matches(pattern, server_name))
    {
        return Finding::ok(CHECK, format!("{listed} (covers {server_name})"));
    }
    Finding::warn(
        CHECK,
        format!("{listed}: none is the server's name {server_name}"),
        "set server_name to the name clients connect to, or get a certificate for it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("*.example.com", "ftp.example.com"));
        assert!(name_matches("FTP.example.com", "ftp.EXAMPLE.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("ftp.example.com", "www.example.com"));
    }
}
