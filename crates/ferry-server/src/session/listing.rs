//! Listings: LIST, NLST (RFC 959 §4.1.3), MLSD, MLST (RFC 3659 §7), and STAT with a path.
//!
//! Arguments may start with `ls` options (`LIST -la dir`, as clients send them: `-a` shows dot
//! files, others are ignored) and the last part may be a `*`/`?` pattern.

use ferry_proto::listing::{format_mlsx_line, write_ls_line, write_mlsx_line};
use ferry_proto::Reply;

use std::sync::Arc;

use super::{Flow, Session};
use crate::permissions::{AccessPolicy, Permission};
use crate::storage::{FileFacts, FileKind, Names, Storage, StorageError, VirtualPath};

/// What a listing command sends for each entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// LIST: `ls -l` lines.
    Long,
    /// NLST: names only.
    Names,
    /// MLSD: fact lines.
    Facts,
}

/// A parsed listing argument.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    /// The path as the client wrote it (after options), if any.
    path: Option<String>,
    show_hidden: bool,
}

/// Splits `-la some dir` into options and path.
fn parse_request(arg: Option<&str>) -> Request {
    let mut rest = arg.unwrap_or("").trim_start();
    let mut show_hidden = false;
    while let Some(option) = rest.strip_prefix('-').filter(|_| !rest.starts_with("- ")) {
        let (flags, tail) = option.split_once(' ').unwrap_or((option, ""));
        show_hidden |= flags.contains('a') || flags.contains('A');
        rest = tail.trim_start();
    }
    Request {
        path: (!rest.is_empty()).then(|| rest.to_string()),
        show_hidden,
    }
}

/// What is known of each listed entry.
enum Entries {
    /// LIST and MLSD: each entry looked up.
    Facts(Vec<FileFacts>),
    /// NLST: names only, with no look-up of each entry (shared with the storage's cache).
    Names(Arc<Names>),
}

impl Entries {
    /// Keeps the entries whose names pass `keep`.
    fn filtered(self, keep: impl Fn(&str) -> bool) -> Entries {
        match self {
            Entries::Facts(mut facts) => {
                facts.retain(|f| keep(&f.name));
                Entries::Facts(facts)
            }
            Entries::Names(mut names) => {
                // Copied only when something is left out (dot files, a pattern).
                if names.iter().any(|name| !keep(name)) {
                    Arc::make_mut(&mut names).retain(keep);
                }
                Entries::Names(names)
            }
        }
    }
}

/// The entries a listing shows, with the prefix NLST puts before names found by a pattern.
struct Selection {
    entries: Entries,
    name_prefix: String,
    /// The folder the entries are in.
    folder: VirtualPath,
}

impl Session {
    /// LIST, NLST and MLSD: render the listing, then send it over a data connection.
    pub(super) async fn list(&mut self, arg: Option<&str>, format: Format) -> Flow {
        let request = if format == Format::Facts {
            Request {
                path: arg.map(str::to_string),
                show_hidden: true,
            }
        } else {
            parse_request(arg)
        };
        let plan = match self.take_data_plan() {
            Ok(plan) => plan,
            Err((code, text)) => return self.reply(code, text).await,
        };
        let target = self.resolve(request.path.as_deref().unwrap_or("."));
        if !self.allowed(Permission::List, &listed_folder(&target, format)) {
            return self.reply(550, "Permission denied.").await;
        }
        let given = request.path.clone();
        let policy = self.policy();
        let facts = self.mlst_facts.clone();
        let rendered = self
            .with_storage(move |s| {
                let selection = select(s, &target, given.as_deref(), format, request.show_hidden)?;
                Ok(render(&selection, format, &facts, &policy))
            })
            .await;
        match rendered {
            Ok(Some(body)) => {
                let verb = match format {
                    Format::Long => "LIST",
                    Format::Names => "NLST",
                    Format::Facts => "MLSD",
                };
                self.send_listing(plan, verb, body).await
            }
            Ok(None) => self.reply(501, "MLSD: not a directory.").await,
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// MLST (RFC 3659 §7.2): the facts of one path, over the control connection.
    pub(super) async fn mlst(&mut self, arg: Option<&str>) -> Flow {
        let path = self.resolve(arg.unwrap_or("."));
        let probe = path.clone();
        match self.with_storage_quick(move |s| s.metadata(&probe)).await {
            Ok(mut facts) => {
                facts.name = path.to_string();
                let perm = self.policy().at(&path).mlsx_perm(facts.kind);
                let line = format!(" {}", format_mlsx_line(&facts, &self.mlst_facts, &perm));
                let lines = vec![format!("Listing {path}"), line, "End".to_string()];
                self.send(Reply::multi(250, lines)).await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// STAT with a path (RFC 959 §4.1.3): a LIST over the control connection.
    pub(super) async fn stat_path(&mut self, arg: &str) -> Flow {
        let request = parse_request(Some(arg));
        let target = self.resolve(request.path.as_deref().unwrap_or("."));
        if !self.allowed(Permission::List, &listed_folder(&target, Format::Long)) {
            return self.reply(550, "Permission denied.").await;
        }
        let given = request.path.clone();
        let policy = self.policy();
        let rendered = self
            .with_storage(move |s| {
                let selection = select(
                    s,
                    &target,
                    given.as_deref(),
                    Format::Long,
                    request.show_hidden,
                )?;
                Ok(render(&selection, Format::Long, &[], &policy))
            })
            .await;
        match rendered {
            Ok(Some(body)) => {
                let text = String::from_utf8_lossy(&body);
                let mut lines = vec![format!("Status of {}:", arg.trim())];
                lines.extend(text.lines().map(str::to_string));
                lines.push("End of status".to_string());
                self.send(Reply::multi(213, lines)).await
            }
            Ok(None) => self.reply(550, "No such file or directory.").await,
            Err(error) => self.reply_storage_error(&error).await,
        }
    }
}

/// Finds the entries to list: a folder's contents, one file, or the matches of a pattern.
fn select(
    storage: &dyn Storage,
    target: &VirtualPath,
    given: Option<&str>,
    format: Format,
    show_hidden: bool,
) -> Result<Option<Selection>, StorageError> {
    let visible = |name: &str| show_hidden || !name.starts_with('.');
    let pattern = target.file_name();
    if format != Format::Facts && is_pattern(pattern) {
        let parent = target.parent();
        let entries = entries_of(storage, &parent, format)?
            .filtered(|name| visible(name) && wildcard_match(pattern, name));
        let name_prefix = given
            .and_then(|g| g.rfind('/').map(|i| g[..=i].to_string()))
            .unwrap_or_default();
        return Ok(Some(Selection {
            entries,
            name_prefix,
            folder: parent,
        }));
    }
    let facts = storage.metadata(target)?;
    if facts.kind == FileKind::Directory {
        let entries = entries_of(storage, target, format)?.filtered(visible);
        return Ok(Some(Selection {
            entries,
            name_prefix: String::new(),
            folder: target.clone(),
        }));
    }
    if format == Format::Facts {
        return Ok(None);
    }
    let mut single = facts;
    single.name = given.unwrap_or(target.file_name()).to_string();
    let entries = match format {
        Format::Names => Entries::Names(Arc::new([single.name].into_iter().collect())),
        _ => Entries::Facts(vec![single]),
    };
    Ok(Some(Selection {
        entries,
        name_prefix: String::new(),
        folder: target.parent(),
    }))
}

/// A folder's entries; for NLST only their names are read, with no look-up of each entry.
fn entries_of(
    storage: &dyn Storage,
    folder: &VirtualPath,
    format: Format,
) -> Result<Entries, StorageError> {
    Ok(match format {
        Format::Names => Entries::Names(storage.list_names(folder)?),
        Format::Long | Format::Facts => Entries::Facts(storage.list(folder)?),
    })
}

/// The folder whose List permission a listing of `target` needs: the parent for a pattern.
fn listed_folder(target: &VirtualPath, format: Format) -> VirtualPath {
    if format != Format::Facts && is_pattern(target.file_name()) {
        target.parent()
    } else {
        target.clone()
    }
}

/// Renders the selection with CRLF line ends (listings are always sent that way).
fn render(
    selection: &Option<Selection>,
    format: Format,
    facts: &[&str],
    policy: &AccessPolicy,
) -> Option<Vec<u8>> {
    let selection = selection.as_ref()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let entries = match &selection.entries {
        Entries::Names(names) => {
            let prefix = &selection.name_prefix;
            let length: usize = names.iter().map(|n| prefix.len() + n.len() + 2).sum();
            let mut body = Vec::with_capacity(length);
            for name in names.iter() {
                body.extend_from_slice(prefix.as_bytes());
                body.extend_from_slice(name.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            return Some(body);
        }
        Entries::Facts(entries) => entries,
    };
    let mut body = String::with_capacity(entries.len() * 72);
    for entry in entries {
        match format {
            Format::Facts => {
                let perm = policy
                    .at_entry(&selection.folder, &entry.name)
                    .mlsx_perm(entry.kind);
                write_mlsx_line(&mut body, entry, facts, &perm);
            }
            Format::Long | Format::Names => write_ls_line(&mut body, entry, now),
        }
        body.push_str("\r\n");
    }
    Some(body.into_bytes())
}

fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// `*` matches any run of characters, `?` one character. Linear in time (no backtracking
/// blow-up): the last `*` is the only one ever revisited.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_split_from_paths() {
        assert_eq!(
            parse_request(None),
            Request {
                path: None,
                show_hidden: false
            }
        );
        assert_eq!(
            parse_request(Some("-la")),
            Request {
                path: None,
                show_hidden: true
            }
        );
        assert_eq!(
            parse_request(Some("-l my dir")),
            Request {
                path: Some("my dir".into()),
                show_hidden: false
            }
        );
        assert_eq!(
            parse_request(Some("pub")),
            Request {
                path: Some("pub".into()),
                show_hidden: false
            }
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.txt", "readme.txt"));
        assert!(wildcard_match("read?e.*", "readme.txt"));
        assert!(!wildcard_match("*.txt", "readme.txt.gz"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        let long = "a".repeat(5000);
        assert!(!wildcard_match(&"*a".repeat(50).replace("a", "b"), &long));
    }
}
