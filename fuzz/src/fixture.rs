//! The folders the `session` target serves: a root with a small seed tree, inside a parent
//! folder that also holds a sentinel file, and the checks that nothing outside the root changed
//! and (where nothing may change) that the root did not either.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// The sentinel's content. The NUL and control bytes cannot reach a file name or a command
/// (the framer drops NUL, new names with control characters get 553), and the harness uploads
/// other bytes, so seeing this on a data connection means the server read the sentinel.
pub const SENTINEL: &[u8] = b"\x00ferry-fuzz\x01sentinel outside the root\x02\n";

const SENTINEL_MODE: u32 = 0o644;
const ROOT_MODE: u32 = 0o755;

/// Most entries a snapshot records, and most bytes of a file it reads: a session cannot grow
/// the tree past what a few KiB of commands make, so these only bound a broken run.
const MAX_ENTRIES: usize = 10_000;
const MAX_FILE_BYTES: u64 = 1 << 20;

/// One entry of a snapshot: kind, permission bits, and content (a symlink's target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File { mode: u32, content: Vec<u8> },
    Folder { mode: u32 },
    Symlink { target: PathBuf },
    Other { mode: u32 },
}

/// Every entry under a root, by path relative to it.
pub type Snapshot = BTreeMap<PathBuf, Entry>;

/// `parent/` holding `root/` (the served folder) and `sentinel`.
#[derive(Debug)]
pub struct Fixture {
    pub parent: PathBuf,
    pub root: PathBuf,
    /// The root as [`Fixture::reset_root`] makes it.
    pub seed: Snapshot,
}

impl Fixture {
    /// Makes `parent` afresh with the sentinel and the seed tree.
    pub fn create(parent: &Path) -> io::Result<Fixture> {
        if parent.exists() {
            remove_tree(parent)?;
        }
        let root = parent.join("root");
        fs::create_dir_all(&root)?;
        fs::set_permissions(&root, fs::Permissions::from_mode(ROOT_MODE))?;
        let sentinel = parent.join("sentinel");
        fs::write(&sentinel, SENTINEL)?;
        fs::set_permissions(&sentinel, fs::Permissions::from_mode(SENTINEL_MODE))?;
        write_seed_tree(&root)?;
        let seed = snapshot(&root)?;
        Ok(Fixture {
            parent: parent.to_path_buf(),
            root,
            seed,
        })
    }

    /// What is wrong outside the root: the parent must hold exactly `root` (a folder, mode
    /// 0755) and `sentinel` (a plain file, mode 0644, unchanged).
    pub fn outside_problem(&self) -> Option<String> {
        let names = match list_names(&self.parent) {
            Ok(names) => names,
            Err(error) => return Some(format!("cannot list {}: {error}", self.parent.display())),
        };
        if names != ["root", "sentinel"] {
            return Some(format!("the parent folder holds {names:?}"));
        }
        match fs::symlink_metadata(&self.root) {
            Ok(meta) if meta.is_dir() && meta.permissions().mode() & 0o7777 == ROOT_MODE => {}
            Ok(meta) => return Some(format!("the root folder is now {meta:?}")),
            Err(error) => return Some(format!("the root folder: {error}")),
        }
        let sentinel = self.parent.join("sentinel");
        match (fs::symlink_metadata(&sentinel), fs::read(&sentinel)) {
            (Ok(meta), Ok(content))
                if meta.is_file()
                    && meta.permissions().mode() & 0o7777 == SENTINEL_MODE
                    && content == SENTINEL =>
            {
                None
            }
            (meta, content) => Some(format!("the sentinel changed: {meta:?}, {content:?}")),
        }
    }

    /// How the root differs from its seed state, or `None` when it does not.
    pub fn root_changes(&self) -> io::Result<Option<String>> {
        Ok(describe_changes(&self.seed, &snapshot(&self.root)?))
    }

    /// Puts the root back in its seed state (its contents; the folder itself stays, as the
    /// server holds it open).
    pub fn reset_root(&self) -> io::Result<()> {
        for name in list_names(&self.root)? {
            remove_tree(&self.root.join(name))?;
        }
        write_seed_tree(&self.root)
    }
}

/// The seed tree: text and binary files, a name with a space and UTF-8, nested folders, the
/// anonymous upload folder, and symlinks that lead outside the root (to the sentinel and to the
/// parent) or nowhere.
fn write_seed_tree(root: &Path) -> io::Result<()> {
    let readme = b"Ferry fuzz root.\nThis file has LF line ends.\nThird line.\n";
    write_file(&root.join("readme.txt"), readme)?;
    make_folder(&root.join("pub"))?;
    make_folder(&root.join("pub/sub"))?;
    make_folder(&root.join("incoming"))?;
    write_file(
        &root.join("pub/readme.txt"),
        b"line one\r\nline two\nno end",
    )?;
    write_file(
        &root.join("my file \u{fc}.txt"),
        "spaces and UTF-8\n".as_bytes(),
    )?;
    let binary: Vec<u8> = (0..300u32).map(|i| (i * 37 % 256) as u8).collect();
    write_file(&root.join("pub/data.bin"), &binary)?;
    symlink("../sentinel", root.join("outside-file"))?;
    symlink("..", root.join("outside-folder"))?;
    symlink("pub/readme.txt", root.join("inside-link"))?;
    symlink("nowhere", root.join("dangling"))?;
    Ok(())
}

fn write_file(path: &Path, content: &[u8]) -> io::Result<()> {
    fs::write(path, content)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}

fn make_folder(path: &Path) -> io::Result<()> {
    fs::create_dir(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

/// Every entry under `root`, without following symlinks.
pub fn snapshot(root: &Path) -> io::Result<Snapshot> {
    let mut entries = Snapshot::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        for name in list_names(&root.join(&folder))? {
            if entries.len() >= MAX_ENTRIES {
                return Err(io::Error::other("more entries than a session can make"));
            }
            let relative = folder.join(name);
            let entry = read_entry(&root.join(&relative))?;
            if matches!(entry, Entry::Folder { .. }) {
                folders.push(relative.clone());
            }
            entries.insert(relative, entry);
        }
    }
    Ok(entries)
}

fn read_entry(path: &Path) -> io::Result<Entry> {
    let meta = fs::symlink_metadata(path)?;
    let mode = meta.permissions().mode() & 0o7777;
    Ok(if meta.file_type().is_symlink() {
        Entry::Symlink {
            target: fs::read_link(path)?,
        }
    } else if meta.is_dir() {
        Entry::Folder { mode }
    } else if meta.is_file() {
        let mut content = Vec::new();
        io::Read::read_to_end(
            &mut io::Read::take(fs::File::open(path)?, MAX_FILE_BYTES),
            &mut content,
        )?;
        Entry::File { mode, content }
    } else {
        Entry::Other { mode }
    })
}

/// A short account of what was added, removed or changed, or `None` when nothing was.
pub fn describe_changes(before: &Snapshot, after: &Snapshot) -> Option<String> {
    let mut changes = Vec::new();
    for (path, entry) in after {
        match before.get(path) {
            None => changes.push(format!("added {path:?} ({})", kind(entry))),
            Some(old) if old != entry => {
                changes.push(format!("changed {path:?}: {old:?} -> {entry:?}"))
            }
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|path| !after.contains_key(*path)) {
        changes.push(format!("removed {path:?}"));
    }
    (!changes.is_empty()).then(|| changes.join("; "))
}

fn kind(entry: &Entry) -> &'static str {
    match entry {
        Entry::File { .. } => "file",
        Entry::Folder { .. } => "folder",
        Entry::Symlink { .. } => "symlink",
        Entry::Other { .. } => "other",
    }
}

/// The names in a folder, sorted.
fn list_names(folder: &Path) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(folder)? {
        names.push(entry?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Removes a file, symlink (not what it leads to) or folder tree, first giving folders whose
/// mode a session changed (SITE CHMOD) the permissions removal needs.
fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    for entry in fs::read_dir(path)? {
        remove_tree(&entry?.path())?;
    }
    fs::remove_dir(path)
}
