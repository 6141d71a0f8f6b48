//! The known-hosts file of trust on first use: one `host:port SHA256:<hex>` line per server
//! whose certificate the user chose to trust. `#` starts a comment; unreadable lines are skipped.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::fingerprint::Fingerprint;

/// The entries of a known-hosts file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    entries: Vec<(String, Fingerprint)>,
}

impl KnownHosts {
    /// Parses the text of a known-hosts file.
    pub fn parse(text: &str) -> Self {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (host, fingerprint) = line.split_once(char::is_whitespace)?;
                Some((host.to_string(), fingerprint.trim().parse().ok()?))
            })
            .collect();
        KnownHosts { entries }
    }

    /// Reads `path`; a missing file is an empty list.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error),
        }
    }

    /// The fingerprints trusted for `host` on `port`.
    pub fn lookup(&self, host: &str, port: u16) -> Vec<Fingerprint> {
        let key = entry_key(host, port);
        self.entries
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(&key))
            .map(|(_, fingerprint)| *fingerprint)
            .collect()
    }

    /// Appends a line to the file at `path`, creating it and its folder if needed.
    pub fn append(
        path: &Path,
        host: &str,
        port: u16,
        fingerprint: &Fingerprint,
    ) -> std::io::Result<()> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{} {fingerprint}", entry_key(host, port))
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub fn entry_key(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `$XDG_CONFIG_HOME/ferry/known_hosts`, else `~/.config/ferry/known_hosts`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("ferry").join("known_hosts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_skips_junk() {
        let a = Fingerprint::of(b"a");
        let b = Fingerprint::of(b"b");
        let text = format!(
            "# comment\nftp.example.com:990 {a}\n\n[::1]:21 {b}\nbroken line\nx:1 SHA256:00\n"
        );
        let known = KnownHosts::parse(&text);
        assert_eq!(known.lookup("FTP.example.com", 990), vec![a]);
        assert_eq!(known.lookup("ftp.example.com", 21), vec![]);
        assert_eq!(known.lookup("::1", 21), vec![b]);
    }

    #[test]
    fn append_creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let fingerprint = Fingerprint::of(b"c");
        KnownHosts::append(&path, "127.0.0.1", 2121, &fingerprint).unwrap();
        let known = KnownHosts::load(&path).unwrap();
        assert_eq!(known.lookup("127.0.0.1", 2121), vec![fingerprint]);
        assert_eq!(
            KnownHosts::load(&dir.path().join("none")).unwrap(),
            KnownHosts::default()
        );
    }
}
