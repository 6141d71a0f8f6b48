//! `.netrc` files: `machine NAME login USER password PASS [account ACCT]`, `default`, and
//! `macdef` blocks (skipped), as the classic `ftp` reads them.

use std::path::PathBuf;

use ferry_proto::command::Secret;

/// The login details of one `machine` (or the `default`) entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetrcEntry {
    pub login: Option<String>,
    pub password: Option<Secret>,
    pub account: Option<String>,
}

/// A parsed `.netrc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netrc {
    machines: Vec<(String, NetrcEntry)>,
    default: Option<NetrcEntry>,
}

/// Which entry the tokens being read belong to.
enum Target {
    None,
    Machine(usize),
    Default,
}

impl Netrc {
    /// Parses the text of a `.netrc`. Unknown tokens are skipped.
    pub fn parse(text: &str) -> Self {
        let mut netrc = Netrc::default();
        let mut target = Target::None;
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let mut tokens = line.split_whitespace();
            while let Some(token) = tokens.next() {
                match token {
                    "machine" => {
                        let name = tokens.next().unwrap_or_default().to_string();
                        netrc.machines.push((name, NetrcEntry::default()));
                        target = Target::Machine(netrc.machines.len() - 1);
                    }
                    "default" => {
                        netrc.default = Some(NetrcEntry::default());
                        target = Target::Default;
                    }
                    "macdef" => {
                        skip_macro(&mut lines);
                        break;
                    }
                    key => {
                        let value = tokens.next().unwrap_or_default();
                        if let Some(entry) = netrc.entry_mut(&target) {
                            entry.set(key, value);
                        }
                    }
                }
            }
        }
        netrc
    }

    fn entry_mut(&mut self, target: &Target) -> Option<&mut NetrcEntry> {
        match target {
            Target::None => None,
            Target::Machine(index) => self.machines.get_mut(*index).map(|(_, entry)| entry),
            Target::Default => self.default.as_mut(),
        }
    }

    /// The entry for `host` (case-insensitive), else the `default` entry.
    pub fn lookup(&self, host: &str) -> Option<&NetrcEntry> {
        self.machines
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, entry)| entry)
            .or(self.default.as_ref())
    }

    /// Reads `$NETRC`, else `$HOME/.netrc`; a missing or unreadable file is an empty `.netrc`.
    pub fn load_default() -> Self {
        default_path()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| Netrc::parse(&text))
            .unwrap_or_default()
    }
}

impl NetrcEntry {
    fn set(&mut self, key: &str, value: &str) {
        match key {
            "login" => self.login = Some(value.to_string()),
            "password" => self.password = Some(Secret::new(value)),
            "account" => self.account = Some(value.to_string()),
            _ => {}
        }
    }
}

/// A macro definition runs to the next empty line.
fn skip_macro<'a>(lines: &mut impl Iterator<Item = &'a str>) {
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
    }
}

/// Where the `.netrc` is: `$NETRC`, else `$HOME/.netrc`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NETRC") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".netrc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
machine ftp.any-domain.com login ftp password abc@any-domain.com
machine other
    login alice
    password s3cret account dept
macdef init
binary
machine hidden login no

default login anonymous password guest@
";

    #[test]
    fn machines_and_default() {
        let netrc = Netrc::parse(SAMPLE);
        let seed = netrc.lookup("FTP.any-domain.com").unwrap();
        assert_eq!(seed.login.as_deref(), Some("ftp"));
        assert_eq!(
            seed.password.as_ref().map(Secret::expose),
            Some("abc@any-domain.com")
        );
        let other = netrc.lookup("other").unwrap();
        assert_eq!(other.login.as_deref(), Some("alice"));
        assert_eq!(other.account.as_deref(), Some("dept"));
        let fallback = netrc.lookup("elsewhere").unwrap();
        assert_eq!(fallback.login.as_deref(), Some("anonymous"));
    }

    #[test]
    fn macro_bodies_are_not_entries() {
        let netrc = Netrc::parse(SAMPLE);
        assert_eq!(
            netrc.lookup("hidden").and_then(|e| e.login.as_deref()),
            Some("anonymous")
        );
    }

    #[test]
    fn empty_and_truncated_files() {
        assert_eq!(Netrc::parse("").lookup("x"), None);
        let truncated = Netrc::parse("machine h login");
        assert_eq!(truncated.lookup("h").unwrap().login.as_deref(), Some(""));
    }
}
