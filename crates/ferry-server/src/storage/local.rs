//! The local file system back-end, jailed to one folder with `cap-std`.
//!
//! Every operation goes through a `cap_std::fs::Dir` opened on the user's root: paths are resolved
//! beneath it by the kernel-backed capability API, so neither `..`, an absolute path nor a symlink
//! (however it is built) can reach outside. A symlink inside the root that points inside works.

use std::io::{Seek, SeekFrom};
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions, Permissions, PermissionsExt};

use super::{
    FileFacts, FileKind, Names, Storage, StorageError, StorageErrorKind, VirtualPath, WriteMode,
};

/// Folders with at least this many entries are listed with several threads.
const PARALLEL_STAT_FROM: usize = 2048;

/// At most this many threads stat one folder's entries.
const MAX_STAT_THREADS: usize = 4;

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
        let kind = if meta.is_dir() {
            FileKind::Directory
        } else if meta.is_file() {
            FileKind::File
        } else if meta.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Other
        };
        let link_target = folder
            .filter(|_| kind == FileKind::Symlink)
            .and_then(|folder| {
                self.root
                    .read_link_contents(folder.join(&name).relative())
                    .ok()
            })
            .map(|target| target.to_string_lossy().into_owned());
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
}

impl Storage for LocalFs {
    fn metadata(&self, path: &VirtualPath) -> Result<FileFacts, StorageError> {
        let meta = Self::io(path, self.root.metadata(path.relative()))?;
        Ok(self.facts(path.file_name().to_string(), &meta, None))
    }

    fn list(&self, path: &VirtualPath) -> Result<Vec<FileFacts>, StorageError> {
        let entries: Vec<_> = Self::io(path, self.root.read_dir(path.relative()))?
            .filter_map(Result::ok)
            .collect();
        // A stat per entry is most of a big listing's time; with spare cores, several threads
        // share them (each entry is looked up in the folder the listing holds open).
        let threads = match entries.len() {
            0..PARALLEL_STAT_FROM => 1,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_STAT_THREADS)),
        };
        let per_thread = entries.len().div_ceil(threads.max(1)).max(1);
        let stat_all = |chunk: &[cap_std::fs::DirEntry]| -> Vec<FileFacts> {
            chunk
                .iter()
                .filter_map(|entry| {
                    let meta = entry.metadata().ok()?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    Some(self.facts(name, &meta, Some(path)))
                })
                .collect()
        };
        let mut listing = if threads > 1 {
            std::thread::scope(|scope| {
                let workers: Vec<_> = entries
                    .chunks(per_thread)
                    .skip(1)
                    .map(|chunk| scope.spawn(move || stat_all(chunk)))
                    .collect();
                let mut listing = stat_all(entries.chunks(per_thread).next().unwrap_or(&[]));
                for worker in workers {
                    listing.extend(worker.join().unwrap_or_default());
                }
                listing
            })
        } else {
            stat_all(&entries)
        };
        listing.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(listing)
    }

    fn list_names(&self, path: &VirtualPath) -> Result<Names, StorageError> {
        // The folder is opened beneath the root by cap-std; its names are then read straight
        // from getdents(2), one allocation each.
        // cap-std's handle may be O_PATH: its `.` is opened again for reading.
        use rustix::fs::{Mode, OFlags};
        let folder = Self::io(path, self.root.open_dir(path.relative()))?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let readable =
            rustix::fs::openat(&folder, ".", flags, Mode::empty()).and_then(rustix::fs::Dir::new);
        let mut entries = Self::io(path, readable.map_err(Into::into))?;
        let mut names = Names::new();
        while let Some(entry) = entries.read() {
            let entry = Self::io(path, entry.map_err(Into::into))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            names.push(&String::from_utf8_lossy(name));
        }
        names.sort();
        Ok(names)
    }

    fn open_read(&self, path: &VirtualPath) -> Result<(std::fs::File, u64), StorageError> {
        let file = Self::io(path, self.root.open(path.relative()))?;
        let meta = Self::io(path, file.metadata())?;
        if !meta.is_file() {
            return Err(StorageError::new(
                StorageErrorKind::NotAFile,
                path,
                "not a plain file",
            ));
        }
        Ok((file.into_std(), meta.len()))
    }

    /// A local disk answers a stat or an open in microseconds (a network file system mounted
    /// under the root may not; it is the administrator's choice to serve one).
    fn quick_lookups(&self) -> bool {
        true
    }

    fn open_write(
        &self,
        path: &VirtualPath,
        mode: WriteMode,
    ) -> Result<std::fs::File, StorageError> {
        if path.is_root() {
            return Err(StorageError::new(
                StorageErrorKind::NotAFile,
                path,
                "not a plain file",
            ));
        }
        let mut options = OpenOptions::new();
        options.write(true);
        match mode {
            WriteMode::Truncate => options.create(true).truncate(true),
            WriteMode::Resume(_) => options.create(true),
            WriteMode::Append => options.create(true).append(true),
            WriteMode::CreateNew => options.create_new(true),
        };
        let file = Self::io(path, self.root.open_with(path.relative(), &options))?.into_std();
        if let WriteMode::Resume(offset) = mode {
            Self::io(path, file.set_len(offset))?;
            Self::io(path, (&file).seek(SeekFrom::Start(offset)))?;
        }
        Ok(file)
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

    fn set_mode(&self, path: &VirtualPath, mode: u32) -> Result<(), StorageError> {
        let permissions = Permissions::from_mode(mode & 0o7777);
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
        assert!(jail.fs.open_read(&at("inside")).is_ok());
    }

    #[test]
    fn symlinks_cannot_escape() {
        let jail = jail();
        for path in ["escape", "absolute", "uplink/secret.txt", "pub/up/escape"] {
            let err = jail.fs.open_read(&at(path)).unwrap_err();
            assert_eq!(
                err.kind,
                StorageErrorKind::PermissionDenied,
                "{path}: {err}"
            );
        }
        assert!(
            jail.fs.open_read(&at("pub/up/inside")).is_ok(),
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
    fn dot_dot_is_resolved_lexically_at_the_root() {
        let jail = jail();
        // "/../secret.txt" is "/secret.txt" inside the jail, which does not exist.
        let err = jail.fs.open_read(&at("../secret.txt")).unwrap_err();
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
            jail.fs.open_read(&at("pub")).unwrap_err().kind,
            StorageErrorKind::NotAFile
        );
        jail.fs.rename(&at("new dir"), &at("pub/moved")).unwrap();
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
}
