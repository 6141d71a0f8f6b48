//! `ftp://[user[:password]@]host[:port][/path][;type=a|i]` URLs (RFC 1738 §3.2), and
//! `ftps://` URLs for implicit FTPS (TLS from the first byte, port 990 unless given).
//!
//! User, password and path are percent-decoded. The path is the part after the `/` that ends
//! the host, so `ftp://h/pub/f` names `pub/f` relative to the login directory and
//! `ftp://h/%2Fetc/f` names `/etc/f`, as RFC 1738 says.

use std::str::FromStr;

use ferry_proto::command::{Secret, TransferType};

/// A parsed `ftp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUrl {
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Decoded path, relative to the login directory unless it starts with `/`; may be empty.
    pub path: String,
    /// The `;type=` suffix, if any.
    pub transfer_type: Option<TransferType>,
    /// An `ftps://` URL: implicit TLS.
    pub implicit_tls: bool,
}

/// Why a URL is not a usable `ftp://` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not an ftp:// or ftps:// URL: {0}")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("bad port in URL: {0}")]
    Port(String),
    #[error("bad percent-encoding in URL: {0}")]
    Encoding(String),
}

impl FromStr for FtpUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, UrlError> {
        let (rest, implicit_tls) =
            strip_scheme(text).ok_or_else(|| UrlError::Scheme(text.to_string()))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (user, password) = split_userinfo(userinfo)?;
        let default_port = if implicit_tls { 990 } else { 21 };
        let (host, port) = split_host_port(hostport, default_port)?;
        let (path, transfer_type) = split_type(path);
        Ok(FtpUrl {
            user,
            password,
            host,
            port,
            path: percent_decode(path)?,
            transfer_type,
            implicit_tls,
        })
    }
}

impl FtpUrl {
    /// The last path segment: the local file name a download gets by default.
    pub fn file_name(&self) -> Option<&str> {
        self.path.rsplit('/').next().filter(|name| !name.is_empty())
    }
}

/// The text after `ftp://` or `ftps://`, and whether it was `ftps`.
fn strip_scheme(text: &str) -> Option<(&str, bool)> {
    let (scheme, rest) = text.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "ftp" => Some((rest, false)),
        "ftps" => Some((rest, true)),
        _ => None,
    }
}

/// Whether `text` starts like an `ftp://` or `ftps://` URL.
pub fn looks_like_url(text: &str) -> bool {
    strip_scheme(text).is_some()
}

type UserInfo = (Option<String>, Option<Secret>);

fn split_userinfo(userinfo: Option<&str>) -> Result<UserInfo, UrlError> {
    let Some(userinfo) = userinfo else {
        return Ok((None, None));
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    // The error names the text it could not decode: never the password's.
    let password = password
        .map(|p| percent_decode(p).map_err(|_| UrlError::Encoding("(the password)".into())))
        .transpose()?
        .map(Secret::new);
    Ok((Some(percent_decode(user)?), password))
}

fn split_host_port(hostport: &str, default_port: u16) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or(UrlError::NoHost)?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let port = match port {
        None | Some("") => default_port,
        Some(port) => port.parse().map_err(|_| UrlError::Port(port.to_string()))?,
    };
    Ok((host.to_string(), port))
}

fn split_type(path: &str) -> (&str, Option<TransferType>) {
    let Some((path, suffix)) = path.rsplit_once(";type=") else {
        return (path, None);
    };
    match suffix {
        "a" | "A" => (path, Some(TransferType::Ascii)),
        "i" | "I" => (path, Some(TransferType::Image)),
        _ => (path, None),
    }
}

/// Decodes `%XX` escapes. Decoded CR, LF and NUL are refused: they would end or cut a command.
pub fn percent_decode(text: &str) -> Result<String, UrlError> {
    let error = || UrlError::Encoding(text.to_string());
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3).ok_or_else(error)?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| error())?;
            if matches!(byte, b'\r' | b'\n' | 0) {
                return Err(error());
            }
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| error())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> FtpUrl {
        text.parse().unwrap()
    }

    #[test]
    fn full_url_is_decoded() {
        let parsed = url("ftp://us%40er:p%3Ass@ftp.any-domain.com:2121/pub/read%20me.txt");
        assert_eq!(parsed.user.as_deref(), Some("us@er"));
        assert_eq!(parsed.password.as_ref().map(Secret::expose), Some("p:ss"));
        assert_eq!(parsed.host, "ftp.any-domain.com");
        assert_eq!(parsed.port, 2121);
        assert_eq!(parsed.path, "pub/read me.txt");
        assert_eq!(parsed.file_name(), Some("read me.txt"));
    }

    #[test]
    fn anonymous_default_port_and_ipv6() {
        let parsed = url("FTP://[::1]/");
        assert_eq!(
            (parsed.user.as_deref(), parsed.host.as_str(), parsed.port),
            (None, "::1", 21)
        );
        assert_eq!(parsed.path, "");
        assert_eq!(parsed.file_name(), None);
        assert_eq!(url("ftp://[::1]:99/x").port, 99);
        assert_eq!(url("ftp://h").path, "");
    }

    #[test]
    fn at_sign_in_password_and_absolute_path() {
        let parsed = url("ftp://me:a@b@host/%2Fetc/motd;type=a");
        assert_eq!(parsed.password.as_ref().map(Secret::expose), Some("a@b"));
        assert_eq!(parsed.host, "host");
        assert_eq!(parsed.path, "/etc/motd");
        assert_eq!(parsed.transfer_type, Some(TransferType::Ascii));
    }

    #[test]
    fn a_bad_password_escape_is_refused_without_saying_the_password() {
        let error = "ftp://u:50%off@h/"
            .parse::<FtpUrl>()
            .unwrap_err()
            .to_string();
        assert!(
            !error.contains("50%off") && !error.contains("off"),
            "{error}"
        );
        assert!(error.contains("password"), "{error}");
    }

    #[test]
    fn ftps_is_implicit_tls_on_990() {
        let parsed = url("ftps://u:p@h/f");
        assert!(parsed.implicit_tls);
        assert_eq!((parsed.host.as_str(), parsed.port), ("h", 990));
        assert_eq!(url("FTPS://h:2990/").port, 2990);
        assert!(!url("ftp://h/").implicit_tls);
        assert!(looks_like_url("ftps://h") && !looks_like_url("sftp://h"));
    }

    #[test]
    fn bad_urls() {
        for bad in [
            "http://h/x",
            "ftp:///x",
            "ftp://h:99999/",
            "ftp://h:x/",
            "ftp://h/a%2",
            "ftp://h/a%zz",
            "ftp://h/a%0d%0aDELE%20x",
            "ftp://[::1/",
        ] {
            assert!(bad.parse::<FtpUrl>().is_err(), "{bad}");
        }
    }
}
