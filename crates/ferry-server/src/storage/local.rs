//! The local file system back-end, jailed to one folder with `cap-std`.
//!
//! Every operation goes through a `cap_std::fs::Dir` opened on the user's root: paths are resolved
//! beneath it by the kernel-backed capability API, so neither `..`, an absolute path nor a symlink
//! (however it is built) can reach outside. A symlink inside the root that points inside works.
//!
//! Listings open the folder that way, then read its names (getdents) and look each one up
//! (fstatat, without following symlinks) relative to that open folder: a name read from a
//! folder is a single component, so these look-ups cannot leave it either. Big folders' names
//! are kept while the folder is unchanged (`names_cache`, one for the whole process).

use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use cap_std::ambient_authority;
use cap_std::fs::{
    Dir, Metadata, MetadataExt, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt,
};

use super::names_cache::{self, Stamp};
use super::{
    FileFacts, FileKind, Listing, ListingOf, Names, ReadBody, RenderEntry, Storage, StorageError,
    StorageErrorKind, VirtualPath, WriteBody, WriteMode,
};

/// Folders with at least this many entries are listed with several threads.
const PARALLEL_STAT_FROM: usize = 2048;

/// At most this many threads stat one folder's entries.
const MAX_STAT_THREADS: usize = 4;

/// Look-up threads that big listings run beside their own, across the whole process: at most
/// one per core, however many listings run at once. A listing that finds none free looks its
/// entries up alone.
static EXTRA_STAT_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Extra look-up threads one listing holds, given back when it ends.
struct ExtraThreads(usize);

impl ExtraThreads {
    /// Takes up to `wanted` threads of what is left under `cap`.
    fn take(wanted: usize, cap: usize) -> ExtraThreads {
        let mut got = 0;
        let _ = EXTRA_STAT_THREADS.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            got = wanted.min(cap.saturating_sub(used));
            Some(used + got)
        });
        ExtraThreads(got)
    }
}

impl Drop for ExtraThreads {
    fn drop(&mut self) {
        EXTRA_STAT_THREADS.fetch_sub(self.0, Ordering::SeqCst);
    }
}

/// A folder on the local disk, served as `/`.
#[derive(Debug)]
pub struct LocalFs {
    root: Dir,
}

impl LocalFs {
    /// Opens `root` as the jail.
    pub fn open(root: &Path) -> std::io::Result<LocalFs> {
        Ok(LocalFs {
            root: Dir::open_ambient_dir(root, ambient_authority())?,
        })
    }

    /// Facts from metadata; `folder`, for an entry of a listing, is where to read a symlink's
    /// target from.
    fn facts(&self, name: String, meta: &Metadata, folder: Option<&VirtualPath>) -> FileFacts {
        let kind = kind_of(meta.mode());
        let link_target = folder
            .filter(|_| kind == FileKind::Symlink)
            .and_then(|folder| {
                self.root
                    .read_link_contents(folder.join(&name).relative())
                    .ok()
            })
            .map(|target| target.to_string_lossy().into_owned())
            .filter(|target| folder.is_some_and(|folder| folder.keeps_inside(target)));
        FileFacts {
            name,
            kind,
            size: meta.len(),
            modified: meta.mtime(),
            mode: meta.mode() & 0o7777,
            links: meta.nlink(),
            owner: meta.uid().to_string(),
            group: meta.gid().to_string(),
            link_target,
        }
    }

    fn io<T>(path: &VirtualPath, result: std::io::Result<T>) -> Result<T, StorageError> {
        result.map_err(|e| StorageError::from_io(path, e))
    }

    /// The sorted names in an open folder: kept from an earlier listing while the folder is
    /// unchanged, else read from getdents(2); and whether they are exactly the names on disk.
    /// A name that is not UTF-8 is shown with replacement characters (and cannot be looked up by
    /// that text: LIST then goes through cap-std); such folders are not kept.
    fn names_of(
        &self,
        path: &VirtualPath,
        folder: &Dir,
    ) -> Result<(Arc<Names>, bool), StorageError> {
        let started = std::time::SystemTime::now();
        let stamp = Self::io(path, Stamp::of(folder))?;
        if let Some(names) = names_cache::shared().get(&stamp) {
            return Ok((names, true));
        }
        // cap-std's handle may be O_PATH: the folder's `.` is opened again for reading.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let readable =
            rustix::fs::openat(folder, ".", flags, Mode::empty()).and_then(rustix::fs::Dir::new);
        let mut entries = Self::io(path, readable.map_err(Into::into))?;
        let mut names = Names::new();
        let mut exact = true;
        while let Some(entry) = entries.read() {
            let entry = Self::io(path, entry.map_err(Into::into))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            match std::str::from_utf8(name) {
                Ok(name) => names.push(name),
                Err(_) => {
                    exact = false;
                    names.push(&String::from_utf8_lossy(name));
                }
            }
        }
        names.sort();
        let names = Arc::new(names);
        // Kept only if nothing changed in the folder while it was read.
        if exact && Stamp::of(folder).is_ok_and(|after| after == stamp) {
            names_cache::shared().put(&stamp, Arc::clone(&names), started);
        }
        Ok((names, exact))
    }

    /// Lists a folder through cap-std's directory entries, one look-up each, sorted; names
    /// that are not UTF-8 are shown with replacement characters.
    fn list_by_entries(&self, path: &VirtualPath) -> Result<Vec<FileFacts>, StorageError> {
        let entries = Self::io(path, self.root.read_dir(path.relative()))?;
        let mut listing: Vec<FileFacts> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let meta = entry.metadata().ok()?;
                let name = entry.file_name().to_string_lossy().into_owned();
                Some(self.facts(name, &meta, Some(path)))
            })
            .collect();
        listing.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(listing)
    }
}

/// The kind of file a `st_mode` describes.
fn kind_of(mode: u32) -> FileKind {
    match FileType::from_raw_mode(mode) {
        FileType::Directory => FileKind::Directory,
        FileType::RegularFile => FileKind::File,
        FileType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// The facts of an entry of an open folder (`path`, as the user sees it), from its lstat; a
/// symlink's target is read there, and shown only when its text stays inside the root (a link
/// to `/etc` does not tell the user where the server keeps things).
fn facts_of_entry(
    folder: &Dir,
    path: &VirtualPath,
    name: &str,
    stat: &rustix::fs::Stat,
) -> FileFacts {
    let kind = kind_of(stat.st_mode);
    let link_target = (kind == FileKind::Symlink)
        .then(|| rustix::fs::readlinkat(folder, name, Vec::new()).ok())
        .flatten()
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| path.keeps_inside(target));
    FileFacts {
        name: name.to_string(),
        kind,
        size: u64::try_from(stat.st_size).unwrap_or(0),
        modified: stat.st_mtime,
        mode: stat.st_mode & 0o7777,
        links: stat.st_nlink,
        owner: stat.st_uid.to_string(),
        group: stat.st_gid.to_string(),
        link_target,
    }
}

/// A local folder being listed: its sorted names (often shared with other listings), looked up
/// a batch at a time in the open folder.
struct LocalListing {
    folder: Dir,
    /// The folder as the user sees it.
    path: VirtualPath,
    names: Arc<Names>,
    /// The index of the next name to look at.
    next: usize,
    /// A big folder: batches are looked up by several threads when there are cores to spare.
    big: bool,
}

impl LocalListing {
    /// Hands the next names `keep` accepts (up to `max`) to `look_up`, which returns how many
    /// of them it found, until it finds some or the names run out. Entries removed since their
    /// names were read are left out; a batch that lost all of them must not look like the end.
    fn next_found(
        &mut self,
        max: usize,
        keep: &dyn Fn(&str) -> bool,
        mut look_up: impl FnMut(&Dir, &VirtualPath, &[&str], bool) -> usize,
    ) -> usize {
        let names = Arc::clone(&self.names);
        while self.next < names.len() {
            let mut batch = Vec::new();
            let mut seen = 0;
            for name in names.iter_from(self.next) {
                if batch.len() == max {
                    break;
                }
                seen += 1;
                if keep(name) {
                    batch.push(name);
                }
            }
            self.next += seen;
            let found = look_up(&self.folder, &self.path, &batch, self.big);
            if found > 0 {
                return found;
            }
        }
        0
    }
}

impl Listing for LocalListing {
    fn next_batch(
        &mut self,
        max: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<FileFacts>, StorageError> {
        let mut facts = Vec::new();
        self.next_found(max, keep, |folder, path, names, parallel| {
            let parts = on_threads(names, parallel, |chunk| {
                chunk
                    .iter()
                    .filter_map(|name| look_up(folder, path, name))
                    .collect::<Vec<_>>()
            });
            facts = parts.into_iter().flatten().collect();
            facts.len()
        });
        Ok(facts)
    }

    /// Each thread writes the lines of the entries it looked up into its own text, joined in
    /// order here: formatting is a good part of a line's cost, and so shares the cores too.
    fn next_rendered(
        &mut self,
        max: usize,
        keep: &dyn Fn(&str) -> bool,
        render: RenderEntry<'_>,
        out: &mut String,
    ) -> Result<usize, StorageError> {
        Ok(self.next_found(max, keep, |folder, path, names, parallel| {
            let parts = on_threads(names, parallel, |chunk| {
                let mut text = String::with_capacity(chunk.len() * 96);
                let mut count = 0;
                for facts in chunk.iter().filter_map(|name| look_up(folder, path, name)) {
                    render(&mut text, &facts);
                    count += 1;
                }
                (text, count)
            });
            let mut found = 0;
            for (text, count) in parts {
                out.push_str(&text);
                found += count;
            }
            found
        }))
    }
}

/// The facts of the entry `name` of an open folder, without following symlinks: a name from
/// getdents is one component, so nothing outside is reached. `None` if it is gone.
fn look_up(folder: &Dir, path: &VirtualPath, name: &str) -> Option<FileFacts> {
    let stat = rustix::fs::statat(folder, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    Some(facts_of_entry(folder, path, name, &stat))
}

/// Names a thread takes at a time when several share a batch.
const PIECE: usize = 256;

/// Runs `work` on `names` in order, a piece of [`PIECE`] names at a time, on this thread and,
/// when `parallel` and there are spare cores, a few more: a look-up per entry is most of a big
/// listing's time. Threads take the next piece as they finish one, so a thread that starts
/// late (on a busy machine) or runs slowly does less of the work rather than holding the
/// others up. Returns each piece's result, in the names' order.
fn on_threads<T: Send>(
    names: &[&str],
    parallel: bool,
    work: impl Fn(&[&str]) -> T + Sync,
) -> Vec<T> {
    let pieces: Vec<&[&str]> = names.chunks(PIECE).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let extra = match (parallel, pieces.len()) {
        (true, 2..) => ExtraThreads::take(cores.min(MAX_STAT_THREADS) - 1, cores),
        _ => ExtraThreads(0),
    };
    let next = AtomicUsize::new(0);
    let take_pieces = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(piece) = pieces.get(index) else {
                return done;
            };
            done.push((index, work(piece)));
        }
    };
    let mut parts: Vec<Option<T>> = std::iter::repeat_with(|| None).take(pieces.len()).collect();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (0..extra.0)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, take_pieces)
                    .ok()
            })
            .collect();
        let mine = take_pieces();
        // A helper that failed loses its pieces' results: they are done again below.
        let theirs = helpers.into_iter().filter_map(|helper| helper.join().ok());
        for (index, part) in theirs.flatten().chain(mine) {
            parts[index] = Some(part);
        }
    });
    parts
        .into_iter()
        .zip(&pieces)
        .map(|(part, piece)| part.unwrap_or_else(|| work(piece)))
        .collect()
}

impl Storage for LocalFs {
    fn metadata(&self, path: &VirtualPath) -> Result<FileFacts, StorageError> {
        let meta = Self::io(path, self.root.metadata(path.relative()))?;
        Ok(self.facts(path.file_name().to_string(), &meta, None))
    }

    fn open_listing(&self, path: &VirtualPath) -> Result<Box<dyn Listing>, StorageError> {
        let folder = Self::io(path, self.root.open_dir(path.relative()))?;
        let (names, exact) = self.names_of(path, &folder)?;
        if !exact {
            // Names that are not UTF-8 cannot be looked up by their text: read whole, the
            // rare way.
            let all = self.list_by_entries(path)?;
            return Ok(Box::new(ListingOf(all.into_iter())));
        }
        Ok(Box::new(LocalListing {
            big: names.len() >= PARALLEL_STAT_FROM,
            path: path.clone(),
            folder,
            names,
            next: 0,
        }))
    }

    fn list_names(&self, path: &VirtualPath) -> Result<Arc<Names>, StorageError> {
        let folder = Self::io(path, self.root.open_dir(path.relative()))?;
        Ok(self.names_of(path, &folder)?.0)
    }

    fn open_read(&self, path: &VirtualPath, _offset: u64) -> Result<(ReadBody, u64), StorageError> {
        // O_NONBLOCK: opening a FIFO (or some devices) would otherwise wait for a writer, and
        // this runs on an async worker; the flag changes nothing for a regular file.
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32);
        let file = Self::io(path, self.root.open_with(path.relative(), &options))?;
        let meta = Self::io(path, file.metadata())?;
        if !meta.is_file() {
            return Err(StorageError::new(
                StorageErrorKind::NotAFile,
                path,
                "not a plain file",
            ));
        }
        Ok((ReadBody::File(file.into_std()), meta.len()))
    }

    fn set_modified(&self, path: &VirtualPath, unix_secs: i64) -> Result<(), StorageError> {
        let time = if unix_secs >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs.unsigned_abs())
        } else {
            std::time::UNIX_EPOCH - std::time::Duration::from_secs(unix_secs.unsigned_abs())
        };
        // A read-only open is enough: futimens(2) with explicit times asks for ownership, not
        // write access to the bytes. NONBLOCK, as in open_read, for FIFOs.
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32);
        let file = Self::io(path, self.root.open_with(path.relative(), &options))?;
        let file = file.into_std();
        Self::io(path, file.set_modified(time))?;
        Ok(())
    }

    fn available_space(&self, path: &VirtualPath) -> Result<Option<u64>, StorageError> {
        let folder = Self::io(path, self.root.open_dir(path.relative()))?;
        let stats = Self::io(
            path,
            rustix::fs::fstatvfs(&folder).map_err(std::io::Error::from),
        )?;
        Ok(Some(stats.f_bavail.saturating_mul(stats.f_frsize)))
    }

    fn real_path(&self, path: &VirtualPath) -> VirtualPath {
        // cap-std resolves beneath the root: a link that leads outside gives an error, and the
        // operation on it fails anyway.
        let canonical = |path: &VirtualPath| {
            let real = self.root.canonicalize(path.relative()).ok()?;
            Some(VirtualPath::root().join(real.to_str()?))
        };
        canonical(path)
            .or_else(|| {
                let folder = canonical(&path.parent())?;
                Some(folder.join(path.file_name()))
            })
            .unwrap_or_else(|| path.clone())
    }

    /// A local disk answers a stat or an open in microseconds (a network file system mounted
    /// under the root may not; it is the administrator's choice to serve one).
    fn quick_lookups(&self) -> bool {
        true
    }

    fn open_write(&self, path: &VirtualPath, mode: WriteMode) -> Result<WriteBody, StorageError> {
        if path.is_root() {
            return Err(StorageError::new(
                StorageErrorKind::NotAFile,
                path,
                "not a plain file",
            ));
        }
        let not_a_file = || StorageError::new(StorageErrorKind::NotAFile, path, "not a plain file");
        // Only regular files take uploads: a FIFO would hold the session (and a thread) until
        // something read it, and a device is no place for one. Checked before the open, so
        // nothing is truncated, and after it, on what was opened.
        if self
            .root
            .metadata(path.relative())
            .is_ok_and(|meta| !meta.is_file())
        {
            return Err(not_a_file());
        }
        let mut options = OpenOptions::new();
        // O_NONBLOCK: opening a FIFO for writing then fails at once (ENXIO) instead of waiting
        // for a reader; the flag changes nothing for a regular file.
        options
            .write(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32);
        match mode {
            WriteMode::Truncate => options.create(true).truncate(true),
            WriteMode::Resume(_) => options.create(true),
            WriteMode::Append => options.create(true).append(true),
            WriteMode::CreateNew => options.create_new(true),
        };
        let file = match self.root.open_with(path.relative(), &options) {
            Ok(file) => file.into_std(),
            Err(error) if error.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
                return Err(not_a_file())
            }
            Err(error) => return Err(StorageError::from_io(path, error)),
        };
        if !Self::io(path, file.metadata())?.is_file() {
            return Err(not_a_file());
        }
        if let WriteMode::Resume(offset) = mode {
            Self::io(path, file.set_len(offset))?;
            Self::io(path, (&file).seek(SeekFrom::Start(offset)))?;
        }
        Ok(WriteBody::File(file))
    }

    fn create_dir(&self, path: &VirtualPath) -> Result<(), StorageError> {
        Self::io(path, self.root.create_dir(path.relative()))
    }

    fn remove_dir(&self, path: &VirtualPath) -> Result<(), StorageError> {
        if path.is_root() {
            return Err(StorageError::new(
                StorageErrorKind::PermissionDenied,
                path,
                "the root stays",
            ));
        }
        Self::io(path, self.root.remove_dir(path.relative()))
    }

    fn remove_file(&self, path: &VirtualPath) -> Result<(), StorageError> {
        Self::io(path, self.root.remove_file(path.relative()))
    }

    fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError> {
        if from.is_root() || to.is_root() {
            return Err(StorageError::new(
                StorageErrorKind::PermissionDenied,
                from,
                "the root stays",
            ));
        }
        Self::io(
            from,
            self.root.rename(from.relative(), &self.root, to.relative()),
        )
    }

    /// Only the permission bits (and the sticky bit on a folder): never setuid or setgid,
    /// which would let an uploaded program run as the server's user. The root keeps its mode,
    /// however it is named (a symlink to it included).
    fn rename_new(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError> {
        use rustix::fs::RenameFlags;
        if from.is_root() || to.is_root() {
            return Err(StorageError::new(
                StorageErrorKind::PermissionDenied,
                from,
                "the root stays",
            ));
        }
        // Both folders are opened in the jail; the names are single components in them.
        let from_folder = Self::io(from, self.root.open_dir(from.parent().relative()))?;
        let to_folder = Self::io(to, self.root.open_dir(to.parent().relative()))?;
        let (from_name, to_name) = (from.file_name(), to.file_name());
        let renamed = rustix::fs::renameat_with(
            &from_folder,
            from_name,
            &to_folder,
            to_name,
            RenameFlags::NOREPLACE,
        );
        let result = match renamed {
            // A file system without RENAME_NOREPLACE: a hard link fails the same way if the
            // name is taken (files only; folders then keep their name).
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => rustix::fs::linkat(
                &from_folder,
                from_name,
                &to_folder,
                to_name,
                AtFlags::empty(),
            )
            .and_then(|()| rustix::fs::unlinkat(&from_folder, from_name, AtFlags::empty())),
            other => other,
        };
        Self::io(to, result.map_err(Into::into))
    }

    fn set_mode(&self, path: &VirtualPath, mode: u32) -> Result<(), StorageError> {
        let refuse = |why: &str| {
            Err(StorageError::new(
                StorageErrorKind::PermissionDenied,
                path,
                why,
            ))
        };
        let meta = Self::io(path, self.root.metadata(path.relative()))?;
        let root = Self::io(path, self.root.dir_metadata())?;
        if path.is_root() || (meta.dev(), meta.ino()) == (root.dev(), root.ino()) {
            return refuse("the root keeps its mode");
        }
        let allowed = if meta.is_dir() { 0o1777 } else { 0o777 };
        if mode & !allowed != 0 {
            return refuse("only permission bits (and a folder's sticky bit) may be set");
        }
        let permissions = Permissions::from_mode(mode);
        Self::io(
            path,
            self.root.set_permissions(path.relative(), permissions),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Jail {
        outside: tempfile::TempDir,
        fs: LocalFs,
        root: std::path::PathBuf,
    }

    fn jail() -> Jail {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
        let root = outside.path().join("root");
        std::fs::create_dir_all(root.join("pub")).unwrap();
        std::fs::write(root.join("pub/readme.txt"), "hello\n").unwrap();
        symlink("../secret.txt", root.join("escape")).unwrap();
        symlink(outside.path().join("secret.txt"), root.join("absolute")).unwrap();
        symlink("..", root.join("pub/up")).unwrap();
        symlink("..", root.join("pub/outside"))
            .and_then(|_| std::fs::rename(root.join("pub/outside"), root.join("uplink")))
            .unwrap();
        symlink("pub/readme.txt", root.join("inside")).unwrap();
        let fs = LocalFs::open(&root).unwrap();
        Jail { outside, fs, root }
    }

    fn at(path: &str) -> VirtualPath {
        VirtualPath::root().join(path)
    }

    #[test]
    fn reads_inside_the_root() {
        let jail = jail();
        let facts = jail.fs.metadata(&at("pub/readme.txt")).unwrap();
        assert_eq!((facts.kind, facts.size), (FileKind::File, 6));
        assert!(jail.fs.open_read(&at("inside"), 0).is_ok());
    }

    #[test]
    fn symlinks_cannot_escape() {
        let jail = jail();
        for path in ["escape", "absolute", "uplink/secret.txt", "pub/up/escape"] {
            let err = jail.fs.open_read(&at(path), 0).unwrap_err();
            assert_eq!(
                err.kind,
                StorageErrorKind::PermissionDenied,
                "{path}: {err}"
            );
        }
        assert!(
            jail.fs.open_read(&at("pub/up/inside"), 0).is_ok(),
            "links inside the root work"
        );
        assert!(jail.fs.list(&at("uplink")).is_err());
        assert!(jail.fs.metadata(&at("escape")).is_err());
        assert!(jail
            .fs
            .open_write(&at("escape"), WriteMode::Truncate)
            .is_err());
        assert_eq!(
            std::fs::read_to_string(jail.outside.path().join("secret.txt")).unwrap(),
            "top secret"
        );
    }

    #[test]
    fn real_paths_follow_links_inside_the_root() {
        let jail = jail();
        std::fs::create_dir_all(jail.root.join("projects/secret")).unwrap();
        symlink("../projects/secret", jail.root.join("pub/shortcut")).unwrap();
        let real = |path: &str| jail.fs.real_path(&at(path)).to_string();
        assert_eq!(real("pub/shortcut"), "/projects/secret");
        assert_eq!(real("pub/shortcut/new.txt"), "/projects/secret/new.txt");
        assert_eq!(real("inside"), "/pub/readme.txt");
        assert_eq!(real("pub/readme.txt"), "/pub/readme.txt");
        assert_eq!(real("nowhere/at/all"), "/nowhere/at/all");
        assert_eq!(real("/"), "/");
        assert_eq!(
            real("escape"),
            "/escape",
            "a link out of the root stays as named"
        );
    }

    #[test]
    fn dot_dot_is_resolved_lexically_at_the_root() {
        let jail = jail();
        // "/../secret.txt" is "/secret.txt" inside the jail, which does not exist.
        let err = jail.fs.open_read(&at("../secret.txt"), 0).unwrap_err();
        assert_eq!(err.kind, StorageErrorKind::NotFound);
    }

    #[test]
    fn listing_shows_symlinks_as_links() {
        let jail = jail();
        let listing = jail.fs.list(&VirtualPath::root()).unwrap();
        let names: Vec<&str> = listing.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["absolute", "escape", "inside", "pub", "uplink"]);
        let inside = &listing[2];
        assert_eq!(inside.kind, FileKind::Symlink);
        assert_eq!(inside.link_target.as_deref(), Some("pub/readme.txt"));
        for outside in [&listing[0], &listing[1], &listing[4]] {
            assert_eq!(
                (outside.kind, outside.link_target.as_deref()),
                (FileKind::Symlink, None),
                "a link out of the root does not show where it leads: {}",
                outside.name
            );
        }
    }

    #[test]
    fn write_modes() {
        let jail = jail();
        let path = at("pub/new.bin");
        std::io::Write::write_all(
            &mut jail.fs.open_write(&path, WriteMode::Truncate).unwrap(),
            b"0123456789",
        )
        .unwrap();
        std::io::Write::write_all(
            &mut jail.fs.open_write(&path, WriteMode::Resume(4)).unwrap(),
            b"ab",
        )
        .unwrap();
        std::io::Write::write_all(
            &mut jail.fs.open_write(&path, WriteMode::Append).unwrap(),
            b"Z",
        )
        .unwrap();
        assert_eq!(
            std::fs::read(jail.root.join("pub/new.bin")).unwrap(),
            b"0123abZ"
        );
        let err = jail.fs.open_write(&path, WriteMode::CreateNew).unwrap_err();
        assert_eq!(err.kind, StorageErrorKind::AlreadyExists);
    }

    #[test]
    fn directory_operations_and_errors() {
        let jail = jail();
        jail.fs.create_dir(&at("new dir")).unwrap();
        assert_eq!(
            jail.fs.create_dir(&at("new dir")).unwrap_err().kind,
            StorageErrorKind::AlreadyExists
        );
        assert_eq!(
            jail.fs.remove_dir(&at("pub")).unwrap_err().kind,
            StorageErrorKind::DirectoryNotEmpty
        );
        assert_eq!(
            jail.fs.open_read(&at("pub"), 0).unwrap_err().kind,
            StorageErrorKind::NotAFile
        );
        jail.fs.rename(&at("new dir"), &at("pub/moved")).unwrap();
        assert_eq!(
            jail.fs
                .rename_new(&at("inside"), &at("pub/readme.txt"))
                .unwrap_err()
                .kind,
            StorageErrorKind::AlreadyExists,
            "rename_new never replaces"
        );
        jail.fs.rename_new(&at("inside"), &at("pub/link")).unwrap();
        assert!(jail.root.join("pub/link").symlink_metadata().is_ok());
        jail.fs.remove_dir(&at("pub/moved")).unwrap();
        assert_eq!(
            jail.fs.remove_file(&at("nope")).unwrap_err().kind,
            StorageErrorKind::NotFound
        );
        jail.fs.set_mode(&at("pub/readme.txt"), 0o600).unwrap();
        assert_eq!(jail.fs.metadata(&at("pub/readme.txt")).unwrap().mode, 0o600);
    }

    /// Folders past PARALLEL_STAT_FROM entries are looked up by several threads: nothing may be
    /// lost or duplicated, and the order stays sorted; NLST's names agree.
    #[test]
    fn big_folders_list_every_entry_once_in_order() {
        let jail = jail();
        let count = PARALLEL_STAT_FROM + 517;
        let folder = jail.root.join("big");
        std::fs::create_dir(&folder).unwrap();
        for i in (0..count).rev() {
            std::fs::write(folder.join(format!("f{i:05}")), vec![b'x'; i % 7]).unwrap();
        }
        std::fs::create_dir(folder.join("sub")).unwrap();
        let listing = jail.fs.list(&at("big")).unwrap();
        assert_eq!(listing.len(), count + 1);
        let names: Vec<&str> = listing.iter().map(|f| f.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted, no duplicates");
        for (i, facts) in listing.iter().take(count).enumerate() {
            assert_eq!(facts.name, format!("f{i:05}"));
            assert_eq!((facts.kind, facts.size), (FileKind::File, (i % 7) as u64));
        }
        assert_eq!(listing[count].kind, FileKind::Directory);
        let only_names = jail.fs.list_names(&at("big")).unwrap();
        assert_eq!(only_names.iter().collect::<Vec<_>>(), names);
    }

    /// A listing read a batch at a time gives every kept entry once, in order, and entries
    /// removed after their names were read do not end it early.
    #[test]
    fn listings_come_in_batches_to_the_end() {
        let jail = jail();
        let folder = jail.root.join("batches");
        std::fs::create_dir(&folder).unwrap();
        for i in 0..10 {
            std::fs::write(folder.join(format!("f{i}")), b"").unwrap();
        }
        let mut listing = jail.fs.open_listing(&at("batches")).unwrap();
        for i in 1..7 {
            std::fs::remove_file(folder.join(format!("f{i}"))).unwrap();
        }
        let mut names = Vec::new();
        for _ in 0..20 {
            let batch = listing.next_batch(2, &|name| name != "f8").unwrap();
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= 2);
            names.extend(batch.into_iter().map(|f| f.name));
        }
        assert_eq!(names, ["f0", "f7", "f9"]);
    }

    /// A big folder's names are kept between listings, and every change to the folder shows
    /// at the next one.
    #[test]
    fn kept_names_follow_every_change() {
        let jail = jail();
        let folder = jail.root.join("kept");
        std::fs::create_dir(&folder).unwrap();
        for i in 0..1500 {
            std::fs::write(folder.join(format!("f{i:04}")), b"").unwrap();
        }
        // Settled: changed long enough ago for its names to be kept.
        let settle = |folder: &std::path::Path| {
            let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
            std::fs::File::open(folder)
                .unwrap()
                .set_times(std::fs::FileTimes::new().set_modified(long_ago))
                .unwrap();
        };
        settle(&folder);
        let names = |fs: &LocalFs| fs.list_names(&at("kept")).unwrap();
        assert_eq!(names(&jail.fs).len(), 1500);
        let stamp = Stamp::of(jail.fs.root.open_dir("kept").unwrap()).unwrap();
        assert!(
            names_cache::shared().get(&stamp).is_some(),
            "a settled big folder is kept"
        );

        std::fs::write(folder.join("added"), b"").unwrap();
        assert!(names(&jail.fs).iter().any(|n| n == "added"));
        assert_eq!(jail.fs.list(&at("kept")).unwrap().len(), 1501);
        settle(&folder);
        assert_eq!(names(&jail.fs).len(), 1501);
        std::fs::remove_file(folder.join("f0000")).unwrap();
        assert!(!names(&jail.fs).iter().any(|n| n == "f0000"));
        settle(&folder);
        std::fs::rename(folder.join("f0001"), folder.join("renamed")).unwrap();
        let after = names(&jail.fs);
        assert!(after.iter().any(|n| n == "renamed") && !after.iter().any(|n| n == "f0001"));
        assert_eq!(after.len(), 1500);
    }

    /// A FIFO is refused at once: opening it must not wait for a writer (RETR opens files on
    /// an async worker).
    #[test]
    fn a_fifo_is_not_a_file_and_does_not_block() {
        let jail = jail();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            jail.root.join("pipe"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let err = jail.fs.open_read(&at("pipe"), 0).unwrap_err();
        assert_eq!(err.kind, StorageErrorKind::NotAFile);
    }

    /// A name that is not UTF-8 is listed by NLST (with a replacement character) and by LIST.
    #[test]
    fn names_that_are_not_utf8_are_listed() {
        use std::os::unix::ffi::OsStrExt;
        let jail = jail();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        std::fs::write(jail.root.join("pub").join(name), b"x").unwrap();
        let names = jail.fs.list_names(&at("pub")).unwrap();
        assert!(names.iter().any(|n| n == "caf\u{fffd}.txt"), "{names:?}");
        let listing = jail.fs.list(&at("pub")).unwrap();
        let entry = listing.iter().find(|f| f.name == "caf\u{fffd}.txt");
        assert_eq!(entry.map(|f| (f.kind, f.size)), Some((FileKind::File, 1)));
    }
}
