//! Uploads' private files: the hidden names uploads are written under before they are
//! published, and the removal of those left behind by broken uploads or a crash.
//!
//! `.NAME.OWNER.ferry-upload` beside `NAME` takes an upload that must not show under its name
//! until it is complete (atomic uploads), or that may not replace a file already there. OWNER
//! says whose it is: a named user's (a later session of theirs resumes it with REST+STOR), or
//! an anonymous session's own. No client can name, list or reach such a file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use super::VirtualPath;

/// What the private names of uploads end with.
const SUFFIX: &str = ".ferry-upload";

/// Folders below a root that a sweep goes into, at most.
const SWEEP_DEPTH: usize = 64;

/// Entries one sweep looks at, at most, across all roots.
const SWEEP_ENTRIES: usize = 1_000_000;

/// The longest file name most file systems take, in bytes.
pub const NAME_MAX: usize = 255;

/// The private name of an upload to `path` owned by `owner` (see [`owner`]). A name too long
/// to take the private parts keeps its start and a hash of the whole instead of its end, so
/// that every name a file system takes has a private name it takes too.
pub fn private_name(path: &VirtualPath, owner: &str) -> VirtualPath {
    let name = path.file_name();
    let whole = format!(".{name}.{owner}{SUFFIX}");
    if whole.len() <= NAME_MAX {
        return path.parent().join(&whole);
    }
    let hash = format!("~{:016x}", fnv1a(name.as_bytes()));
    let room = NAME_MAX - (whole.len() - name.len()) - hash.len();
    let mut start = room.min(name.len());
    while !name.is_char_boundary(start) {
        start -= 1;
    }
    path.parent()
        .join(&format!(".{}{hash}.{owner}{SUFFIX}", &name[..start]))
}

/// Whether a name is an upload's private name (this release's, or an older
/// `.NAME.ferry-upload`).
pub fn is_private_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(SUFFIX)
}

/// Whether a path leads to, or through, an upload's private name.
pub fn is_private(path: &VirtualPath) -> bool {
    path.parts().any(is_private_name)
}

/// A number of its own for an anonymous session, which [`owner`] makes its private names' owner
/// part from.
pub fn anonymous_session() -> u64 {
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    SESSIONS.fetch_add(1, Ordering::Relaxed)
}

/// The owner part of private names: a named user's, the same in every session (the name
/// hashed, so that any name makes a valid file name), or, for the anonymous session numbered
/// `anonymous` by [`anonymous_session`], one of its own.
pub fn owner(user: &str, anonymous: Option<u64>) -> String {
    static PROCESS: OnceLock<u64> = OnceLock::new();
    let Some(session) = anonymous else {
        return format!("u{:016x}", fnv1a(user.as_bytes()));
    };
    // The process's part is made once (its id and start time): every anonymous session then
    // costs a counter increment, not a clock read and a system call.
    let process = *PROCESS.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        fnv1a(format!("{}:{nanos}", std::process::id()).as_bytes())
    });
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&process.to_le_bytes());
    seed[8..].copy_from_slice(&session.to_le_bytes());
    format!("s{:016x}", fnv1a(&seed))
}

/// FNV-1a, 64 bits: stable across releases, so a named user's private files keep their names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Removes private upload files not written to for `age` under the `roots` (local folders),
/// without following symlinks; returns how many. Bounded: [`SWEEP_DEPTH`] folders deep and
/// [`SWEEP_ENTRIES`] entries in all.
pub fn sweep(roots: &[PathBuf], age: Duration) -> usize {
    let Some(cutoff) = SystemTime::now().checked_sub(age) else {
        return 0;
    };
    let mut budget = SWEEP_ENTRIES;
    let mut removed = 0;
    let mut folders: Vec<(PathBuf, usize)> = roots.iter().map(|r| (r.clone(), 0)).collect();
    while let Some((folder, depth)) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            if budget == 0 {
                tracing::warn!("the sweep of abandoned uploads stopped at its entry limit");
                return removed;
            }
            budget -= 1;
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < SWEEP_DEPTH {
                folders.push((entry.path(), depth + 1));
            } else if kind.is_file() && is_private_name(&entry.file_name().to_string_lossy()) {
                removed += usize::from(remove_if_older(&entry.path(), cutoff));
            }
        }
    }
    removed
}

fn remove_if_older(path: &Path, cutoff: SystemTime) -> bool {
    let modified = std::fs::symlink_metadata(path).and_then(|m| m.modified());
    if !modified.is_ok_and(|time| time < cutoff) {
        return false;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "removed an abandoned upload");
            true
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot remove an abandoned upload");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_names() {
        let path = VirtualPath::root().join("/in/report.pdf");
        let owner = owner("alice", None);
        assert_eq!(owner, super::owner("alice", None), "a user's is stable");
        let session = super::anonymous_session();
        assert_eq!(
            super::owner("ftp", Some(session)),
            super::owner("ftp", Some(session))
        );
        assert_ne!(
            super::owner("ftp", Some(super::anonymous_session())),
            super::owner("ftp", Some(super::anonymous_session()))
        );
        let private = private_name(&path, &owner);
        assert_eq!(private.parent().as_str(), "/in");
        assert!(is_private_name(private.file_name()) && is_private(&private));
        assert!(is_private(&VirtualPath::root().join(".x.ferry-upload/y")));
        assert!(is_private_name(".report.pdf.ferry-upload"), "older form");
        assert!(!is_private(&path) && !is_private_name("report.ferry-upload"));
    }

    /// Names up to the file system's 255 bytes have private names of at most 255 bytes, apart
    /// from one another, which can be created.
    #[test]
    fn long_names_have_private_names_that_fit() {
        let owner = owner("alice", None);
        let dir = tempfile::tempdir().unwrap();
        let long_a = "a".repeat(250);
        let long_b = format!("{}b", "a".repeat(249));
        let wide = "é".repeat(127);
        let mut seen = std::collections::HashSet::new();
        for name in [long_a.as_str(), &long_b, &wide, "short.txt"] {
            let private = private_name(&VirtualPath::root().join(name), &owner);
            let file = private.file_name();
            assert!(file.len() <= NAME_MAX, "{} bytes: {file}", file.len());
            assert!(is_private_name(file), "{file}");
            std::fs::write(dir.path().join(file), b"x").unwrap();
            assert!(seen.insert(file.to_string()), "{file} twice");
        }
        assert_eq!(
            private_name(&VirtualPath::root().join("short.txt"), &owner).file_name(),
            format!(".short.txt.{owner}.ferry-upload"),
            "short names keep the form sessions of older releases resume"
        );
    }

    #[test]
    fn sweeps_only_old_private_files() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let old = deep.join(".f.u1.ferry-upload");
        let fresh = root.path().join(".g.u1.ferry-upload");
        let plain = root.path().join("old.txt");
        for path in [&old, &fresh, &plain] {
            std::fs::write(path, b"x").unwrap();
        }
        let long_ago = SystemTime::now() - Duration::from_secs(7200);
        for path in [&old, &plain] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        assert_eq!(
            sweep(&[root.path().to_path_buf()], Duration::from_secs(3600)),
            1
        );
        assert!(!old.exists() && fresh.exists() && plain.exists());
    }
}
