//! [`Fingerprint`]: the SHA-256 digest of a certificate's DER bytes, written `SHA256:<hex>`.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 fingerprint of a DER-encoded certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// Why a fingerprint text is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 fingerprint (want SHA256: and 64 hex digits): {0}")]
pub struct FingerprintError(pub String);

impl Fingerprint {
    /// The fingerprint of a certificate's DER bytes.
    pub fn of(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    /// Accepts `SHA256:` (any case) and 64 hex digits, which may be separated by colons as
    /// `openssl x509 -fingerprint -sha256` prints them.
    fn from_str(text: &str) -> Result<Self, FingerprintError> {
        let error = || FingerprintError(text.to_string());
        let prefix = text.get(..7).filter(|p| p.eq_ignore_ascii_case("SHA256:"));
        let hex: String = match prefix {
            Some(_) => text[7..].chars().filter(|&c| c != ':').collect(),
            None => return Err(error()),
        };
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(error());
        }
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            let pair = &hex[index * 2..index * 2 + 2];
            *byte = u8::from_str_radix(pair, 16).map_err(|_| error())?;
        }
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let fingerprint = Fingerprint::of(b"certificate bytes");
        let text = fingerprint.to_string();
        assert!(
            text.starts_with("SHA256:") && text.len() == 7 + 64,
            "{text}"
        );
        assert_eq!(text.parse::<Fingerprint>().unwrap(), fingerprint);
        assert_eq!(
            text.to_uppercase().parse::<Fingerprint>().unwrap(),
            fingerprint
        );
    }

    #[test]
    fn accepts_openssl_colons() {
        let fingerprint = Fingerprint::of(b"x");
        let hex = &fingerprint.to_string()[7..];
        let pairs: Vec<&str> = (0..32).map(|i| &hex[i * 2..i * 2 + 2]).collect();
        let colons = format!("sha256:{}", pairs.join(":"));
        assert_eq!(colons.parse::<Fingerprint>().unwrap(), fingerprint);
    }

    #[test]
    fn refuses_bad_text() {
        for bad in [
            "",
            "SHA256:",
            "SHA256:abcd",
            "MD5:00",
            &format!("SHA256:{}", "g".repeat(64)),
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
        let no_prefix = Fingerprint::of(b"x").to_string()[7..].to_string();
        assert!(no_prefix.parse::<Fingerprint>().is_err());
        assert!(format!("SHA256:{}", "é".repeat(32))
            .parse::<Fingerprint>()
            .is_err());
    }
}
