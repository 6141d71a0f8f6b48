//! What a mirror must do, decided without any network: two trees of entries (the source and
//! the target), include/exclude filters, and the options give a [`Plan`] of directories to
//! make, files to transfer (or resume) and entries to delete.
//!
//! Change detection: a file is transferred when it is missing, when the sizes differ, or when
//! the times differ by more than the coarser of the two sides' precision. Times from MLSD,
//! MDTM and local files are exact to the second; an `ls -l` LIST line with `HH:MM` is exact to
//! the minute, one with a year only to the day (both read as UTC); times are compared after
//! truncating both to the coarser unit. Without a time on either side, the size decides.
//!
//! Resuming (`--continue`) only ever continues a `NAME.part` file on the target, never a file
//! that merely looks short or old: a complete-looking name is never treated as partial.

use std::collections::BTreeMap;

/// The suffix of files being transferred.
pub const PART_SUFFIX: &str = ".part";

/// The default of `--max-delete`.
pub const DEFAULT_MAX_DELETE: usize = 100;

/// A file or a directory; links and other kinds are not mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// How exact an entry's modification time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimePrecision {
    /// To the second: MLSD, MDTM, a local file.
    Second,
    /// To the minute: an `ls -l` line with `HH:MM`.
    Minute,
    /// To the day: an `ls -l` line with a year.
    Day,
}

impl TimePrecision {
    fn seconds(self) -> i64 {
        match self {
            TimePrecision::Second => 1,
            TimePrecision::Minute => 60,
            TimePrecision::Day => 86_400,
        }
    }

    /// The precision of a time read from an `ls -l` LIST line: a time of exactly midnight
    /// came from a line with a year and no time of day.
    pub fn of_list_time(time: i64) -> Self {
        if time.rem_euclid(86_400) == 0 {
            TimePrecision::Day
        } else {
            TimePrecision::Minute
        }
    }
}

/// One entry of a tree, its path relative to the tree's root with `/` between names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub size: Option<u64>,
    /// Seconds since the epoch, UTC.
    pub modified: Option<i64>,
    pub precision: TimePrecision,
}

impl Entry {
    pub fn file(path: &str, size: u64, modified: Option<i64>) -> Self {
        Entry {
            path: path.to_string(),
            kind: Kind::File,
            size: Some(size),
            modified,
            precision: TimePrecision::Second,
        }
    }

    pub fn dir(path: &str) -> Self {
        Entry {
            path: path.to_string(),
            kind: Kind::Dir,
            size: None,
            modified: None,
            precision: TimePrecision::Second,
        }
    }
}

/// The entries of a tree by path.
pub type Tree = BTreeMap<String, Entry>;

/// Builds a [`Tree`] from entries.
pub fn tree(entries: impl IntoIterator<Item = Entry>) -> Tree {
    entries.into_iter().map(|e| (e.path.clone(), e)).collect()
}

/// A bad mirror request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    #[error("an empty --include or --exclude pattern matches nothing useful; give a pattern")]
    EmptyPattern,
    #[error(
        "{count} entries would be deleted, more than --max-delete {limit}; nothing was done \
         (raise --max-delete to allow it)"
    )]
    TooManyDeletes { count: usize, limit: usize },
}

/// `--include` and `--exclude` globs (`*`, `?`, `[...]`). A pattern with a `/` is matched
/// against the whole relative path, one without against the last name. An excluded
/// directory is skipped with everything in it, and is never deleted; `--include` patterns
/// select files only (directories are walked to find them).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Filter {
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Result<Self, MirrorError> {
        if include.iter().chain(&exclude).any(|p| p.trim().is_empty()) {
            return Err(MirrorError::EmptyPattern);
        }
        Ok(Filter { include, exclude })
    }

    /// Whether the entry at `path` takes part in the mirror (its parents are checked too).
    pub fn allows(&self, path: &str, kind: Kind) -> bool {
        let excluded = ancestors_and_self(path).any(|p| self.exclude.iter().any(|g| hit(g, p)));
        if excluded {
            return false;
        }
        kind == Kind::Dir || self.include.is_empty() || self.include.iter().any(|g| hit(g, path))
    }
}

fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(move |(at, _)| &path[..at])
        .chain(std::iter::once(path))
}

fn hit(pattern: &str, path: &str) -> bool {
    let subject = match pattern.contains('/') {
        true => path,
        false => path.rsplit('/').next().unwrap_or(path),
    };
    glob_match(pattern.trim_start_matches('/'), subject)
}

/// Shell-style matching: `*` any run of characters but `/`, `?` one character, `[abc]`,
/// `[a-z]`, `[!x]` a class.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    glob_from(&pattern, &text)
}

fn glob_from(pattern: &[char], text: &[char]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some('*') => (0..=text.len())
            .take_while(|&skip| skip == 0 || text[skip - 1] != '/')
            .any(|skip| glob_from(&pattern[1..], &text[skip..])),
        Some('?') => !text.is_empty() && text[0] != '/' && glob_from(&pattern[1..], &text[1..]),
        Some('[') => match (pattern.iter().position(|&c| c == ']'), text.first()) {
            (Some(end), Some(&c)) if end > 1 => {
                class_has(&pattern[1..end], c) && glob_from(&pattern[end + 1..], &text[1..])
            }
            _ => text.first() == Some(&'[') && glob_from(&pattern[1..], &text[1..]),
        },
        Some(&c) => text.first() == Some(&c) && glob_from(&pattern[1..], &text[1..]),
    }
}

fn class_has(class: &[char], c: char) -> bool {
    let (negated, class) = match class.first() {
        Some('!' | '^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut found = false;
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            found |= (class[i]..=class[i + 2]).contains(&c);
            i += 3;
        } else {
            found |= class[i] == c;
            i += 1;
        }
    }
    found != negated
}

/// The mirror's options.
#[derive(Debug, Clone)]
pub struct Options {
    pub delete: bool,
    pub max_delete: usize,
    pub only_newer: bool,
    pub only_missing: bool,
    /// Continue `NAME.part` files on the target.
    pub resume: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            delete: false,
            max_delete: DEFAULT_MAX_DELETE,
            only_newer: false,
            only_missing: false,
            resume: false,
        }
    }
}

/// Why a file is transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Missing,
    SizeDiffers,
    TimeDiffers,
    /// Same size and time, but the server's checksum differs from the local file's.
    ChecksumDiffers,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::SizeDiffers => "size differs",
            Reason::TimeDiffers => "time differs",
            Reason::ChecksumDiffers => "checksum differs",
        }
    }
}

/// One step of a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    MakeDir {
        path: String,
    },
    Transfer {
        path: String,
        size: Option<u64>,
        modified: Option<i64>,
        reason: Reason,
        /// The bytes of `NAME.part` on the target to continue from (0: from the start).
        resume_from: u64,
        /// The source has a file named `NAME.part` too: the download must be written under
        /// another temporary name, or it would take that file's place.
        part_taken: bool,
    },
    Delete {
        path: String,
        kind: Kind,
    },
}

/// What a mirror will do, in order: directories (parents first), transfers, then deletions
/// (children first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Files already the same on both sides (by size and time).
    pub unchanged: usize,
    /// Their paths, for a closer look by checksum.
    pub unchanged_paths: Vec<String>,
    /// Entries left out by the filters.
    pub excluded: usize,
    /// Paths that are a file on one side and a directory on the other: left alone.
    pub conflicts: Vec<String>,
}

impl Plan {
    pub fn transfers(&self) -> impl Iterator<Item = &Action> {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Transfer { .. }))
    }

    /// Turns an unchanged file into a transfer (its checksum differs), before any deletion.
    pub fn retransfer(&mut self, source: &Entry, sources: &Tree) {
        if let Some(at) = self.unchanged_paths.iter().position(|p| *p == source.path) {
            self.unchanged_paths.remove(at);
            self.unchanged -= 1;
        }
        let first_delete = self
            .actions
            .iter()
            .position(|a| matches!(a, Action::Delete { .. }))
            .unwrap_or(self.actions.len());
        let transfer = Action::Transfer {
            path: source.path.clone(),
            size: source.size,
            modified: source.modified,
            reason: Reason::ChecksumDiffers,
            resume_from: 0,
            part_taken: sources.contains_key(&format!("{}{PART_SUFFIX}", source.path)),
        };
        self.actions.insert(first_delete, transfer);
    }

    pub fn deletions(&self) -> impl Iterator<Item = &Action> {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Delete { .. }))
    }
}

/// Compares `source` with `target` and says what makes the target like the source.
pub fn plan(
    source: &Tree,
    target: &Tree,
    filter: &Filter,
    options: &Options,
) -> Result<Plan, MirrorError> {
    let mut plan = Plan::default();
    let mut transfers = Vec::new();
    for entry in source.values() {
        if !filter.allows(&entry.path, entry.kind) {
            plan.excluded += 1;
            continue;
        }
        match (entry.kind, target.get(&entry.path)) {
            (Kind::Dir, None) => plan.actions.push(Action::MakeDir {
                path: entry.path.clone(),
            }),
            (Kind::Dir, Some(t)) if t.kind == Kind::Dir => {}
            (Kind::File, existing) if existing.is_none_or(|t| t.kind == Kind::File) => {
                match transfer_for(entry, existing, source, target, options) {
                    Some(action) => transfers.push(action),
                    None => {
                        plan.unchanged += 1;
                        plan.unchanged_paths.push(entry.path.clone());
                    }
                }
            }
            _ => plan.conflicts.push(entry.path.clone()),
        }
    }
    plan.actions.extend(transfers);
    if options.delete {
        let deletions = deletions(source, target, filter);
        if deletions.len() > options.max_delete {
            return Err(MirrorError::TooManyDeletes {
                count: deletions.len(),
                limit: options.max_delete,
            });
        }
        plan.actions.extend(deletions);
    }
    Ok(plan)
}

fn transfer_for(
    source: &Entry,
    existing: Option<&Entry>,
    sources: &Tree,
    target: &Tree,
    options: &Options,
) -> Option<Action> {
    let reason = match existing {
        None => Reason::Missing,
        Some(_) if options.only_missing => return None,
        Some(existing) => changed(source, existing, options.only_newer)?,
    };
    let part_path = format!("{}{PART_SUFFIX}", source.path);
    // A `NAME.part` the source has too is that file's copy, not a part of NAME.
    let part_taken = sources.contains_key(&part_path);
    let part = target.get(&part_path).filter(|_| !part_taken);
    let resume_from = match (options.resume, part, source.size) {
        (true, Some(part), Some(size)) if part.kind == Kind::File => {
            part.size.filter(|&done| done <= size).unwrap_or(0)
        }
        _ => 0,
    };
    Some(Action::Transfer {
        path: source.path.clone(),
        size: source.size,
        modified: source.modified,
        reason,
        resume_from,
        part_taken,
    })
}

/// Why `source` differs from the target's `existing` file, if it does.
fn changed(source: &Entry, existing: &Entry, only_newer: bool) -> Option<Reason> {
    let order = match (source.modified, existing.modified) {
        (Some(s), Some(t)) => {
            let unit = source.precision.max(existing.precision).seconds();
            Some(s.div_euclid(unit).cmp(&t.div_euclid(unit)))
        }
        _ => None,
    };
    if only_newer && order.is_some_and(|o| o != std::cmp::Ordering::Greater) {
        return None;
    }
    match (source.size, existing.size, order) {
        (Some(s), Some(t), _) if s != t => Some(Reason::SizeDiffers),
        (_, _, Some(o)) if o != std::cmp::Ordering::Equal => Some(Reason::TimeDiffers),
        _ => None,
    }
}

/// Target entries that the source lacks, children before their parents. Entries the filter
/// leaves out, and `.part` files of source files, are kept.
fn deletions(source: &Tree, target: &Tree, filter: &Filter) -> Vec<Action> {
    let mut found: Vec<Action> = target
        .values()
        .filter(|t| !source.contains_key(&t.path))
        .filter(|t| filter.allows(&t.path, t.kind))
        .filter(|t| !is_part_of_source(&t.path, source))
        .map(|t| Action::Delete {
            path: t.path.clone(),
            kind: t.kind,
        })
        .collect();
    found.reverse();
    found
}

/// `NAME.part`, and pget's `NAME.part.pget`, of a source file.
fn is_part_of_source(path: &str, source: &Tree) -> bool {
    let path = path.strip_suffix(".pget").unwrap_or(path);
    path.strip_suffix(PART_SUFFIX)
        .and_then(|base| source.get(base))
        .is_some_and(|e| e.kind == Kind::File)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options::default()
    }

    fn paths(plan: &Plan) -> Vec<String> {
        plan.actions
            .iter()
            .map(|a| match a {
                Action::MakeDir { path } => format!("mkdir {path}"),
                Action::Transfer {
                    path, resume_from, ..
                } => format!("get {path}@{resume_from}"),
                Action::Delete { path, .. } => format!("rm {path}"),
            })
            .collect()
    }

    #[test]
    fn missing_changed_and_unchanged_files() {
        let source = tree([
            Entry::dir("d"),
            Entry::file("d/a", 10, Some(1000)),
            Entry::file("b", 5, Some(2000)),
            Entry::file("c", 7, Some(3000)),
        ]);
        let target = tree([
            Entry::file("b", 6, Some(2000)),
            Entry::file("c", 7, Some(3000)),
        ]);
        let plan = plan(&source, &target, &Filter::default(), &options()).unwrap();
        assert_eq!(paths(&plan), ["mkdir d", "get b@0", "get d/a@0"]);
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn times_compare_at_the_coarser_precision() {
        let mut listed = Entry::file("f", 7, Some(120)); // 00:02 from a LIST line
        listed.precision = TimePrecision::Minute;
        let source = tree([listed.clone()]);
        let same_minute = tree([Entry::file("f", 7, Some(179))]);
        let plan_same = plan(&source, &same_minute, &Filter::default(), &options()).unwrap();
        assert_eq!(plan_same.unchanged, 1);
        let next_minute = tree([Entry::file("f", 7, Some(180))]);
        let plan_next = plan(&source, &next_minute, &Filter::default(), &options()).unwrap();
        assert_eq!(paths(&plan_next), ["get f@0"]);
        assert_eq!(TimePrecision::of_list_time(86_400 * 3), TimePrecision::Day);
        assert_eq!(
            TimePrecision::of_list_time(86_400 * 3 + 60),
            TimePrecision::Minute
        );
    }

    #[test]
    fn only_newer_and_only_missing() {
        let source = tree([
            Entry::file("old", 9, Some(100)),
            Entry::file("new", 9, Some(900)),
        ]);
        let target = tree([
            Entry::file("old", 8, Some(500)),
            Entry::file("new", 8, Some(500)),
        ]);
        let newer = Options {
            only_newer: true,
            ..options()
        };
        let plan_newer = plan(&source, &target, &Filter::default(), &newer).unwrap();
        assert_eq!(paths(&plan_newer), ["get new@0"]);
        let missing = Options {
            only_missing: true,
            ..options()
        };
        let plan_missing = plan(&source, &target, &Filter::default(), &missing).unwrap();
        assert!(plan_missing.actions.is_empty());
    }

    #[test]
    fn resumes_only_part_files_never_short_files() {
        let source = tree([
            Entry::file("a", 100, Some(5)),
            Entry::file("b", 100, Some(5)),
        ]);
        // `a` looks partial (shorter, older) but is a complete name: it is fetched again
        // from the start. `b.part` is a partial download: it is continued.
        let target = tree([
            Entry::file("a", 40, Some(1)),
            Entry::file("b.part", 60, Some(9)),
        ]);
        let resume = Options {
            resume: true,
            delete: true,
            ..options()
        };
        let plan = plan(&source, &target, &Filter::default(), &resume).unwrap();
        assert_eq!(paths(&plan), ["get a@0", "get b@60"]);
    }

    #[test]
    fn deletions_are_limited_and_children_go_first() {
        let source = tree([Entry::file("keep", 1, None)]);
        let target = tree([
            Entry::file("keep", 1, None),
            Entry::dir("gone"),
            Entry::file("gone/x", 1, None),
            Entry::file("gone/y", 1, None),
        ]);
        let delete = Options {
            delete: true,
            ..options()
        };
        let plan_delete = plan(&source, &target, &Filter::default(), &delete).unwrap();
        assert_eq!(paths(&plan_delete), ["rm gone/y", "rm gone/x", "rm gone"]);
        let limited = Options {
            max_delete: 2,
            ..delete
        };
        assert_eq!(
            plan(&source, &target, &Filter::default(), &limited),
            Err(MirrorError::TooManyDeletes { count: 3, limit: 2 })
        );
    }

    #[test]
    fn excluded_entries_are_neither_copied_nor_deleted() {
        let filter = Filter::new(vec![], vec!["*.tmp".into(), "cache".into()]).unwrap();
        let source = tree([Entry::file("a.tmp", 1, None), Entry::file("b", 1, None)]);
        let target = tree([
            Entry::dir("cache"),
            Entry::file("cache/big", 1, None),
            Entry::file("old.tmp", 1, None),
        ]);
        let delete = Options {
            delete: true,
            ..options()
        };
        let plan = plan(&source, &target, &filter, &delete).unwrap();
        assert_eq!(paths(&plan), ["get b@0"]);
        assert_eq!(plan.excluded, 1);
    }

    #[test]
    fn empty_patterns_are_refused() {
        assert_eq!(
            Filter::new(vec![], vec!["".into()]).unwrap_err(),
            MirrorError::EmptyPattern
        );
        assert!(Filter::new(vec![" ".into()], vec![]).is_err());
    }

    #[test]
    fn includes_select_files() {
        let filter = Filter::new(vec!["*.txt".into(), "docs/*.md".into()], vec![]).unwrap();
        assert!(filter.allows("a/b.txt", Kind::File));
        assert!(filter.allows("docs/x.md", Kind::File));
        assert!(!filter.allows("x.md", Kind::File));
        assert!(filter.allows("anything", Kind::Dir));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.t?t", "a.txt"));
        assert!(!glob_match("*.txt", "a/b.txt"));
        assert!(glob_match("[a-c]*", "beta"));
        assert!(!glob_match("[!a-c]*", "beta"));
        assert!(glob_match("a[", "a["));
    }

    #[test]
    fn a_checksum_difference_goes_before_deletions() {
        let source = tree([Entry::file("same", 3, Some(9))]);
        let target = tree([
            Entry::file("same", 3, Some(9)),
            Entry::file("extra", 1, None),
        ]);
        let delete = Options {
            delete: true,
            ..options()
        };
        let mut plan = plan(&source, &target, &Filter::default(), &delete).unwrap();
        assert_eq!(plan.unchanged_paths, ["same"]);
        plan.retransfer(&source["same"], &source);
        assert_eq!(paths(&plan), ["get same@0", "rm extra"]);
        assert_eq!(plan.unchanged, 0);
    }

    #[test]
    fn type_conflicts_are_left_alone() {
        let source = tree([Entry::file("x", 1, None)]);
        let target = tree([Entry::dir("x")]);
        let plan = plan(&source, &target, &Filter::default(), &options()).unwrap();
        assert!(plan.actions.is_empty());
        assert_eq!(plan.conflicts, ["x"]);
    }
}
