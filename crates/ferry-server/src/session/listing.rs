//! Listings: LIST, NLST (RFC 959 §4.1.3), MLSD, MLST (RFC 3659 §7), and STAT with a path.
//!
//! Arguments may start with `ls` options (`LIST -la dir`, as clients send them: `-a` shows dot
//! files, others are ignored) and the last part may be a `*`/`?` pattern.
//!
//! A listing is rendered a batch of entries at a time while it is sent (on the data connection,
//! or for STAT on the control connection): what a session holds does not grow with the folder.

use ferry_proto::listing::{format_mlsx_line, write_ls_line, write_mlsx_line};
use ferry_proto::Reply;

use std::sync::Arc;

use super::{Flow, Session};
use crate::data::Chunks;
use crate::permissions::{AccessPolicy, Permission};
use crate::storage::{FileFacts, FileKind, Listing, Names, Storage, StorageError, VirtualPath};

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

/// The ls flags a LIST or NLST option word may hold (those clients send, and their like).
const LS_FLAGS: &str = "1aACdFghlLnoRrStU";

/// Splits `-la some dir` into options and path. A word is options only when it is `-` and ls
/// flags ([`LS_FLAGS`]): `-report.txt` and `-report` are names; `--` ends the options, so
/// `-- -la` names `-la`.
fn parse_request(arg: Option<&str>) -> Request {
    let mut rest = arg.unwrap_or("").trim_start();
    let mut show_hidden = false;
    while let Some(option) = rest.strip_prefix('-') {
        let (flags, tail) = option.split_once(' ').unwrap_or((option, ""));
        if flags == "-" {
            rest = tail.trim_start();
            break;
        }
        if flags.is_empty() || !flags.chars().all(|c| LS_FLAGS.contains(c)) {
            break;
        }
        show_hidden |= flags.contains('a') || flags.contains('A');
        rest = tail.trim_start();
    }
    Request {
        path: (!rest.is_empty()).then(|| rest.to_string()),
        show_hidden,
    }
}

impl Session {
    /// LIST, NLST and MLSD: sent over a data connection as they are rendered.
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
        let rendering = match self.open_rendering(request, format).await {
            Ok(rendering) => rendering,
            Err(flow) => return flow,
        };
        let verb = match format {
            Format::Long => "LIST",
            Format::Names => "NLST",
            Format::Facts => "MLSD",
        };
        self.send_listing(plan, verb, Box::new(rendering)).await
    }

    /// Checks a listing's path and permission and finds its entries; on failure, the reply
    /// has been sent and `Err` carries how the session goes on.
    async fn open_rendering(
        &mut self,
        request: Request,
        format: Format,
    ) -> Result<Rendering, Flow> {
        let target = self.resolve(request.path.as_deref().unwrap_or("."));
        if crate::storage::uploads::is_private(&target) {
            return Err(self.reply(550, "No such file or directory.").await);
        }
        if !self
            .permitted(Permission::List, &listed_folder(&target, format))
            .await
        {
            return Err(self.reply(550, "Permission denied.").await);
        }
        let given = request.path.clone();
        let policy = self.policy();
        let facts = self.mlst_facts().to_vec();
        let show_hidden = request.show_hidden;
        let opened = self
            .with_storage(move |s| {
                let given = given.as_deref();
                let opened = Rendering::open(s, &target, given, format, show_hidden, facts, policy);
                opened?.map(|r| r.prepare(FIRST_CHUNK)).transpose()
            })
            .await;
        match opened {
            Ok(Some(rendering)) => Ok(rendering),
            Ok(None) => Err(self.reply(501, "MLSD: not a directory.").await),
            Err(error) => Err(self.reply_storage_error(&error).await),
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
                let line = format!(" {}", format_mlsx_line(&facts, self.mlst_facts(), &perm));
                let lines = vec![format!("Listing {path}"), line, "End".to_string()];
                self.send(Reply::multi(250, lines)).await
            }
            Err(error) => self.reply_storage_error(&error).await,
        }
    }

    /// STAT with a path (RFC 959 §4.1.3): a LIST over the control connection, sent a chunk at
    /// a time as it is rendered, like a listing on a data connection.
    pub(super) async fn stat_path(&mut self, arg: &str) -> Flow {
        let request = parse_request(Some(arg));
        let mut rendering = match self.open_rendering(request, Format::Long).await {
            Ok(rendering) => rendering,
            Err(flow) => return flow,
        };
        let first = format!("213-Status of {}:\r\n", one_line(arg.trim()));
        if self.control.send_wire(first.as_bytes()).await.is_err() {
            return Flow::Quit;
        }
        let mut chunk = Vec::new();
        let mut last = "End of status";
        loop {
            let filled = tokio::task::spawn_blocking(move || {
                let result = rendering.fill(&mut chunk, STAT_CHUNK);
                (rendering, chunk, result)
            })
            .await;
            let Ok((back, filled, Ok(()))) = filled else {
                last = "End of status (incomplete: the listing failed)";
                break;
            };
            (rendering, chunk) = (back, filled);
            if chunk.is_empty() {
                break;
            }
            if self.control.send_wire(&chunk).await.is_err() {
                return Flow::Quit;
            }
        }
        self.reply(213, last).await
    }
}

/// Bytes of a listing rendered when it is opened, before the data connection is made.
const FIRST_CHUNK: usize = 256 * 1024;

/// Bytes of a STAT listing rendered at a time.
const STAT_CHUNK: usize = 32 * 1024;

/// Which names a listing shows: never an upload in progress; dot files with `-a`; the matches
/// of a pattern.
struct Filter {
    show_hidden: bool,
    pattern: Option<String>,
}

impl Filter {
    fn keeps(&self, name: &str) -> bool {
        !crate::storage::uploads::is_private_name(name)
            && (self.show_hidden || !name.starts_with('.'))
            && self
                .pattern
                .as_deref()
                .is_none_or(|pattern| wildcard_match(pattern, name))
    }
}

/// Where a listing's entries come from.
enum Entries {
    /// LIST and MLSD of a folder: looked up a batch at a time.
    Listing(Box<dyn Listing>),
    /// NLST of a folder: names only, with no look-up of each entry (shared with the storage's
    /// cache); `next` is the index of the next one.
    /// `one_line`: no name has a CR or LF (looked at once, not for each name).
    Names {
        names: Arc<Names>,
        next: usize,
        one_line: bool,
    },
    /// One file named by the client (taken when rendered).
    One(Option<FileFacts>),
}

/// A listing being sent: a batch of entries rendered per chunk, so what the session holds does
/// not grow with the folder.
pub(super) struct Rendering {
    entries: Entries,
    filter: Filter,
    style: LineStyle,
    /// The first chunk, made when the listing was opened (see [`Rendering::prepare`]).
    ready: Option<Vec<u8>>,
}

impl Rendering {
    /// Finds what to list: a folder's contents, one file, or the matches of a pattern. `None`
    /// for MLSD of something that is not a folder.
    fn open(
        storage: &dyn Storage,
        target: &VirtualPath,
        given: Option<&str>,
        format: Format,
        show_hidden: bool,
        facts: Vec<&'static str>,
        policy: AccessPolicy,
    ) -> Result<Option<Rendering>, StorageError> {
        let mut filter = Filter {
            show_hidden,
            pattern: None,
        };
        let pattern = target.file_name();
        let (entries, folder, name_prefix) = if format != Format::Facts && is_pattern(pattern) {
            filter.pattern = Some(pattern.to_string());
            let parent = target.parent();
            let name_prefix = given
                .and_then(|g| g.rfind('/').map(|i| g[..=i].to_string()))
                .unwrap_or_default();
            (entries_of(storage, &parent, format)?, parent, name_prefix)
        } else {
            let single = storage.metadata(target)?;
            if single.kind == FileKind::Directory {
                (
                    entries_of(storage, target, format)?,
                    target.clone(),
                    String::new(),
                )
            } else if format == Format::Facts {
                return Ok(None);
            } else {
                let mut single = single;
                single.name = given.unwrap_or(target.file_name()).to_string();
                filter.show_hidden = true;
                (Entries::One(Some(single)), target.parent(), String::new())
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Ok(Some(Rendering {
            entries,
            filter,
            style: LineStyle {
                format,
                name_prefix,
                same_perms: (!policy.has_folder_rules()).then(|| {
                    let set = policy.at(&folder);
                    [FileKind::File, FileKind::Directory].map(|kind| set.mlsx_perm(kind))
                }),
                folder,
                facts,
                policy,
                now,
            },
            ready: None,
        }))
    }

    /// Makes the first chunk now, on the thread that opened the listing: a listing that fits in
    /// one chunk (most) then needs no other trip to the blocking pool.
    fn prepare(mut self, size: usize) -> Result<Rendering, StorageError> {
        let mut first = String::new();
        self.render(&mut first, size)?;
        self.ready = Some(first.into_bytes());
        Ok(self)
    }

    /// Renders the next entries, with CRLF line ends, until `out` holds about `size` bytes;
    /// nothing is added at the end.
    fn render(&mut self, out: &mut String, size: usize) -> Result<(), StorageError> {
        // A chunk's entries in one batch: each batch may start threads to look its entries up.
        let per_batch = (size / 64).clamp(64, 4096);
        while out.len() < size {
            let written = match &mut self.entries {
                Entries::Listing(listing) => {
                    let (filter, style) = (&self.filter, &self.style);
                    listing.next_rendered(
                        per_batch,
                        &|name| filter.keeps(name),
                        &|out, entry| style.write_line(out, entry),
                        out,
                    )?
                }
                Entries::Names {
                    names,
                    next,
                    one_line: all_one_line,
                } => {
                    // Room for what is left (names, prefixes, line ends), up to the chunk size.
                    let left = names.len().saturating_sub(*next);
                    let average = names.text().len() / names.len().max(1);
                    let wanted = left * (average + self.style.name_prefix.len() + 2);
                    out.reserve(wanted.min(size.saturating_sub(out.len())) + 256);
                    let mut taken = 0;
                    for name in names.iter_from(*next) {
                        taken += 1;
                        if self.filter.keeps(name) {
                            out.push_str(&self.style.name_prefix);
                            match all_one_line {
                                true => out.push_str(name),
                                false => out.push_str(&one_line(name)),
                            }
                            out.push_str("\r\n");
                            if out.len() >= size {
                                break;
                            }
                        }
                    }
                    *next += taken;
                    return Ok(());
                }
                Entries::One(single) => match single.take() {
                    Some(entry) => {
                        self.style.write_line(out, &entry);
                        1
                    }
                    None => 0,
                },
            };
            if written == 0 {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// How a listing writes each entry's line; shared by the threads that look entries up.
struct LineStyle {
    format: Format,
    /// NLST puts the folder the client named before names found by a pattern.
    name_prefix: String,
    /// The folder the entries are in (for MLSD's `perm` fact).
    folder: VirtualPath,
    facts: Vec<&'static str>,
    policy: AccessPolicy,
    /// MLSD's `perm` fact of files and of folders, when no folder has permissions of its own:
    /// the same for every entry, so made once rather than for each.
    same_perms: Option<[String; 2]>,
    now: i64,
}

impl LineStyle {
    /// The `perm` fact of an entry (RFC 3659 §7.5.5).
    fn perm(&self, entry: &FileFacts) -> std::borrow::Cow<'_, str> {
        match &self.same_perms {
            Some([file, folder]) => match entry.kind {
                FileKind::Directory => folder.into(),
                _ => file.into(),
            },
            None => self
                .policy
                .at_entry(&self.folder, &entry.name)
                .mlsx_perm(entry.kind)
                .into(),
        }
    }

    fn write_line(&self, out: &mut String, entry: &FileFacts) {
        let renamed;
        let entry = if has_line_break(&entry.name) {
            renamed = FileFacts {
                name: one_line(&entry.name).into_owned(),
                ..entry.clone()
            };
            &renamed
        } else {
            entry
        };
        match self.format {
            Format::Facts => write_mlsx_line(out, entry, &self.facts, &self.perm(entry)),
            Format::Long => write_ls_line(out, entry, self.now),
            Format::Names => {
                out.push_str(&self.name_prefix);
                out.push_str(&entry.name);
            }
        }
        out.push_str("\r\n");
    }
}

impl Chunks for Rendering {
    fn fill(&mut self, chunk: &mut Vec<u8>, size: usize) -> std::io::Result<()> {
        if let Some(ready) = self.ready.take() {
            *chunk = ready;
            return Ok(());
        }
        chunk.clear();
        // The chunk's buffer, reused as text (it is empty, so valid UTF-8).
        let mut text = String::from_utf8(std::mem::take(chunk)).unwrap_or_default();
        let rendered = self.render(&mut text, size);
        *chunk = text.into_bytes();
        rendered.map_err(|error| error.source)
    }

    fn take_ready(&mut self) -> Option<Vec<u8>> {
        self.ready.take()
    }

    fn finished(&self) -> bool {
        self.ready.is_none()
            && match &self.entries {
                Entries::Names { names, next, .. } => *next >= names.len(),
                Entries::One(single) => single.is_none(),
                Entries::Listing(_) => false,
            }
    }
}

/// A name on one line: CR and LF (which only a local user can put in a name) would split a
/// listing's line in two, or a STAT reply.
fn one_line(name: &str) -> std::borrow::Cow<'_, str> {
    if has_line_break(name) {
        name.replace(['\r', '\n'], " ").into()
    } else {
        name.into()
    }
}

fn has_line_break(text: &str) -> bool {
    memchr::memchr2(b'\r', b'\n', text.as_bytes()).is_some()
}

/// A folder's entries; for NLST only their names are read, with no look-up of each entry.
fn entries_of(
    storage: &dyn Storage,
    folder: &VirtualPath,
    format: Format,
) -> Result<Entries, StorageError> {
    Ok(match format {
        Format::Names => {
            let names = storage.list_names(folder)?;
            Entries::Names {
                one_line: !has_line_break(names.text()),
                names,
                next: 0,
            }
        }
        Format::Long | Format::Facts => Entries::Listing(storage.open_listing(folder)?),
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
    fn names_that_start_with_a_dash() {
        let path = |arg: &str| parse_request(Some(arg)).path;
        assert_eq!(path("-report.txt"), Some("-report.txt".into()));
        assert_eq!(path("-report"), Some("-report".into()));
        assert_eq!(path("-alR"), None);
        assert_eq!(path("-l -report.txt"), Some("-report.txt".into()));
        assert_eq!(path("-- -la"), Some("-la".into()));
        assert_eq!(path("- x"), Some("- x".into()));
        assert_eq!(path("-"), Some("-".into()));
        assert!(parse_request(Some("-a -- -x")).show_hidden);
    }

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
