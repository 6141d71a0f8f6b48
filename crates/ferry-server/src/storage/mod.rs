//! Storage: the [`Storage`] trait the session works through, and its errors.
//!
//! Back-ends are blocking (the session calls them on tokio's blocking pool, or inline for the
//! quick lookups of a back-end that says it has them) and know nothing of
//! FTP: they take [`VirtualPath`]s and return facts, files and [`StorageError`]s. The session maps
//! errors to replies in one place (`session::reply_for_storage_error`).

mod local;
mod names;
mod names_cache;
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
    /// The entries of a folder, symlinks shown as such; `.` and `..` are not included.
    fn list(&self, path: &VirtualPath) -> Result<Vec<FileFacts>, StorageError>;
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
    fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError>;
    /// SITE CHMOD: sets permission bits.
    fn set_mode(&self, path: &VirtualPath, mode: u32) -> Result<(), StorageError>;
    /// Whether lookups (`metadata`, `open_read`, `rename`, `create_dir`, `set_mode`) return in
    /// microseconds, so the session may make them on its async worker instead of the blocking
    /// pool. Listings, deletes and uploads' opens always go to the blocking pool.
    fn quick_lookups(&self) -> bool {
        false
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
