//! Storage: the [`Storage`] trait the session works through, and its errors.
//!
//! Back-ends are blocking (the session calls them on tokio's blocking pool, or inline for the
//! quick lookups of a back-end that says it has them) and know nothing of
//! FTP: they take [`VirtualPath`]s and return facts, files and [`StorageError`]s. The session maps
//! errors to replies in one place (`session::reply_for_storage_error`).

mod local;
mod names;
mod names_cache;
pub mod s3;
pub mod uploads;
mod vpath;

use std::fmt;
use std::io;

pub use ferry_proto::listing::{FileFacts, FileKind};
pub use local::LocalFs;
pub use names::Names;
pub use vpath::VirtualPath;

/// How an upload opens its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// STOR: create or truncate.
    Truncate,
    /// STOR after REST: keep the first `offset` bytes, write from there.
    Resume(u64),
    /// APPE: create or append.
    Append,
    /// STOU: create, fail if it exists.
    CreateNew,
}

/// A file system a session is jailed to.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Facts about a path, following symlinks (RETR, SIZE, MDTM, CWD, MLST).
    fn metadata(&self, path: &VirtualPath) -> Result<FileFacts, StorageError>;
    /// A folder's entries a batch at a time, sorted by name, symlinks shown as such; `.` and
    /// `..` are not included. A listing is sent as it is read, so what a session holds does
    /// not grow with the folder.
    fn open_listing(&self, path: &VirtualPath) -> Result<Box<dyn Listing>, StorageError>;
    /// All the entries of a folder at once (see [`Storage::open_listing`]).
    fn list(&self, path: &VirtualPath) -> Result<Vec<FileFacts>, StorageError> {
        let mut listing = self.open_listing(path)?;
        let mut all = Vec::new();
        loop {
            let batch = listing.next_batch(4096, &|_| true)?;
            if batch.is_empty() {
                return Ok(all);
            }
            all.extend(batch);
        }
    }
    /// The names in a folder, sorted, without looking at each entry (NLST). Shared: a back-end
    /// may hand out the same names to many listings.
    fn list_names(&self, path: &VirtualPath) -> Result<std::sync::Arc<Names>, StorageError> {
        let mut names: Names = self.list(path)?.iter().map(|facts| &facts.name).collect();
        names.sort();
        Ok(std::sync::Arc::new(names))
    }
    /// Opens a regular file for reading; returns it with its size.
    fn open_read(&self, path: &VirtualPath) -> Result<(std::fs::File, u64), StorageError>;
    /// Opens a file for an upload.
    fn open_write(
        &self,
        path: &VirtualPath,
        mode: WriteMode,
    ) -> Result<std::fs::File, StorageError>;
    fn create_dir(&self, path: &VirtualPath) -> Result<(), StorageError>;
    fn remove_dir(&self, path: &VirtualPath) -> Result<(), StorageError>;
    fn remove_file(&self, path: &VirtualPath) -> Result<(), StorageError>;
    /// Renames, replacing what is at `to`.
    fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError>;
    /// Renames only if nothing is at `to`, in one step (`AlreadyExists` otherwise): how an
    /// upload is published, or RNTO done, for a user who may not replace what is there.
    fn rename_new(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError>;
    /// SITE CHMOD: sets permission bits (`0o777`, and the sticky bit on a folder); refuses
    /// setuid and setgid bits, and the root.
    fn set_mode(&self, path: &VirtualPath, mode: u32) -> Result<(), StorageError>;
    /// Where `path` really leads once symlinks are followed, as far as it exists (a name that
    /// does not exist yet is placed in its folder's real location); the path itself when it
    /// cannot be resolved. Permissions that differ by folder are decided on this. Back-ends
    /// without links keep the default.
    fn real_path(&self, path: &VirtualPath) -> VirtualPath {
        path.clone()
    }
    /// Whether lookups (`metadata`, `open_read`, `rename`, `create_dir`, `set_mode`) return in
    /// microseconds, so the session may make them on its async worker instead of the blocking
    /// pool. Listings, deletes and uploads' opens always go to the blocking pool.
    fn quick_lookups(&self) -> bool {
        false
    }
}

/// A folder being listed, a batch of entries at a time (from [`Storage::open_listing`]).
pub trait Listing: Send {
    /// Up to `max` more entries whose names `keep` accepts, in name order; none at the end.
    /// Names that `keep` refuses cost no look-up.
    fn next_batch(
        &mut self,
        max: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<FileFacts>, StorageError>;
}

/// A listing already read whole (for a back-end, or a folder, that cannot be read in parts).
#[derive(Debug)]
pub struct ListingOf(pub std::vec::IntoIter<FileFacts>);

impl Listing for ListingOf {
    fn next_batch(
        &mut self,
        max: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<FileFacts>, StorageError> {
        Ok(self
            .0
            .by_ref()
            .filter(|f| keep(&f.name))
            .take(max)
            .collect())
    }
}

/// What went wrong, in the terms the reply codes need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    NotFound,
    PermissionDenied,
    AlreadyExists,
    NotADirectory,
    NotAFile,
    DirectoryNotEmpty,
    NoSpace,
    /// Anything else: an I/O error the client cannot fix.
    Other,
}

/// A failed storage operation, with the virtual path it was about.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {kind:?}: {source}")]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub path: String,
    pub source: io::Error,
}

impl StorageError {
    /// Classifies an I/O error about `path`.
    pub fn from_io(path: &VirtualPath, source: io::Error) -> Self {
        StorageError {
            kind: classify(&source),
            path: path.to_string(),
            source,
        }
    }

    /// An error of a given kind, when the back-end finds the problem itself.
    pub fn new(kind: StorageErrorKind, path: &VirtualPath, message: &str) -> Self {
        StorageError {
            kind,
            path: path.to_string(),
            source: io::Error::other(message.to_string()),
        }
    }
}

fn classify(error: &io::Error) -> StorageErrorKind {
    use StorageErrorKind as K;
    match error.raw_os_error() {
        Some(libc_enospc) if libc_enospc == 28 || libc_enospc == 122 => return K::NoSpace,
        Some(20) => return K::NotADirectory,
        Some(21) => return K::NotAFile,
        Some(39) => return K::DirectoryNotEmpty,
        Some(40) => return K::PermissionDenied, // ELOOP: a symlink we will not follow
        _ => {}
    }
    match error.kind() {
        io::ErrorKind::NotFound => K::NotFound,
        io::ErrorKind::PermissionDenied => K::PermissionDenied,
        io::ErrorKind::AlreadyExists => K::AlreadyExists,
        io::ErrorKind::NotADirectory => K::NotADirectory,
        io::ErrorKind::IsADirectory => K::NotAFile,
        io::ErrorKind::DirectoryNotEmpty => K::DirectoryNotEmpty,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => K::NoSpace,
        _ => K::Other,
    }
}
