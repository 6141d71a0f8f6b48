//! Storage: the [`Storage`] trait the session works through, and its errors.
//!
//! Back-ends are blocking (the session calls them on tokio's blocking pool, or inline for the
//! quick lookups of a back-end that says it has them) and know nothing of
//! FTP: they take [`VirtualPath`]s and return facts, bodies and [`StorageError`]s. The session
//! maps errors to replies in one place (`session::reply_for_storage_error`).
//!
//! A back-end's bytes come in two shapes. A local folder hands out files ([`ReadBody::File`],
//! [`WriteBody::File`]), which keep the fast paths: sendfile(2) for downloads, the one-thread
//! upload loop, positioned reads. An object store streams ([`ReadBody::Stream`], a ranged GET
//! from the offset asked for) and stages uploads ([`WriteBody::Staged`]): nothing appears
//! under the name until [`StagedUpload::commit`], and an upload dropped without it (ABOR, a
//! broken or stalled connection, the session's or the server's end) is aborted.

mod local;
mod names;
pub mod object;

mod names_cache;
pub mod s3;
pub mod upload_memory;
pub mod uploads;
mod vpath;

use std::fmt;
use std::io;

pub use ferry_proto::listing::{FileFacts, FileKind};
pub use local::LocalFs;
pub use names::Names;
pub use vpath::VirtualPath;

/// A root on an object store: `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRoot {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the whole bucket.
    pub prefix: String,
}

impl ObjectRoot {
    /// `None` for a local folder; for an `s3://` root, the root or what is wrong with it.
    pub fn parse(root: &std::path::Path) -> Option<Result<ObjectRoot, String>> {
        let text = root.to_str()?.strip_prefix("s3://")?;
        let (bucket, prefix) = text.split_once('/').unwrap_or((text, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Some(Err(format!(
                "{bucket:?} is not a bucket name (3 to 63 of a-z, 0-9, '-', '.')"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..")
            || prefix.contains("//")
            || prefix.chars().any(char::is_control)
        {
            return Some(Err(format!("{prefix:?} is not a key prefix")));
        }
        Some(Ok(ObjectRoot {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }
}

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
    /// The size of the regular file at `path`; `None` when there is none (nothing there, or
    /// a folder). Back-ends where telling a folder from nothing costs more than finding a
    /// file (an object store's listing) answer without it.
    fn file_size(&self, path: &VirtualPath) -> Result<Option<u64>, StorageError> {
        match self.metadata(path) {
            Ok(facts) => Ok((facts.kind == FileKind::File).then_some(facts.size)),
            Err(e) if e.kind == StorageErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
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
    /// Opens a regular file for reading; returns its body with the file's whole size. A
    /// [`ReadBody::Stream`] starts at `offset` (and is empty when `offset` is not below the
    /// size); a [`ReadBody::File`] is the whole file, read from `offset` by its reader.
    fn open_read(&self, path: &VirtualPath, offset: u64) -> Result<(ReadBody, u64), StorageError>;
    /// Opens a file for an upload.
    fn open_write(&self, path: &VirtualPath, mode: WriteMode) -> Result<WriteBody, StorageError>;
    /// Whether uploads are staged ([`WriteBody::Staged`]): then an upload is invisible until
    /// it completes, and the session needs no private name to keep it so.
    fn staged_uploads(&self) -> bool {
        false
    }
    /// Whether SITE CHMOD means anything here (an object store has no permission bits).
    fn has_modes(&self) -> bool {
        true
    }
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
    /// MFMT: sets a file's (or folder's) modification time, in seconds since the epoch (UTC).
    fn set_modified(&self, path: &VirtualPath, _unix_secs: i64) -> Result<(), StorageError> {
        Err(StorageError::new(
            StorageErrorKind::Unsupported,
            path,
            "modification times cannot be set here",
        ))
    }
    /// The bytes free for uploads at `path` (AVBL), when the back-end knows them.
    fn available_space(&self, _path: &VirtualPath) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
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

/// What [`Storage::open_read`] hands out.
pub enum ReadBody {
    /// A local file, read with positioned reads or sent with sendfile(2).
    File(std::fs::File),
    /// Bytes streamed from the offset asked for; read on the blocking pool.
    Stream(Box<dyn io::Read + Send>),
}

impl fmt::Debug for ReadBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadBody::File(file) => f.debug_tuple("File").field(file).finish(),
            ReadBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// What [`Storage::open_write`] hands out.
pub enum WriteBody {
    /// A local file, written in place.
    File(std::fs::File),
    /// An upload that appears only when committed.
    Staged(Box<dyn StagedUpload>),
}

impl fmt::Debug for WriteBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteBody::File(file) => f.debug_tuple("File").field(file).finish(),
            WriteBody::Staged(_) => f.write_str("Staged"),
        }
    }
}

impl io::Write for WriteBody {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            WriteBody::File(file) => file.write(bytes),
            WriteBody::Staged(upload) => upload.write_all(bytes).map(|()| bytes.len()),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            WriteBody::File(file) => file.write_all(bytes),
            WriteBody::Staged(upload) => upload.write_all(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An upload that is invisible until committed, and aborted when dropped without a commit.
/// Runs on the blocking pool.
pub trait StagedUpload: Send {
    /// Takes the next bytes; blocks while the back-end's budget of bytes in flight is used,
    /// so a fast client is slowed by TCP, never buffered without bound. Stops blocking, with
    /// an error, once [`StagedUpload::abandon`]'s signal is given.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The signal that tells this upload nobody will commit it (ABOR, a broken connection,
    /// the session's end), given from another thread while `write_all` may be blocked.
    fn abandon(&self) -> Abandon;
    /// Makes the upload appear under its name; replaces a file there only if `replace`
    /// (`AlreadyExists` otherwise, and the upload is aborted).
    fn commit(self: Box<Self>, replace: bool) -> Result<(), StorageError>;
}

/// A signal, given once, that a staged upload will not be committed: what it waits for (room
/// in memory, its parts in flight) it stops waiting for.
#[derive(Debug, Clone)]
pub struct Abandon(std::sync::Arc<tokio::sync::Semaphore>);

impl Default for Abandon {
    fn default() -> Self {
        Abandon(std::sync::Arc::new(tokio::sync::Semaphore::new(0)))
    }
}

impl Abandon {
    /// Gives the signal (again is harmless).
    pub fn give(&self) {
        // A semaphore with no permits: closing it wakes every waiter at once.
        self.0.close();
    }

    /// Resolves once the signal is given.
    pub async fn given(&self) {
        let _ = self.0.acquire().await;
    }
}

/// Writes one entry's line of a listing; shared by the threads that look entries up.
pub type RenderEntry<'a> = &'a (dyn Fn(&mut String, &FileFacts) + Sync);

/// A folder being listed, a batch of entries at a time (from [`Storage::open_listing`]).
pub trait Listing: Send {
    /// Up to `max` more entries whose names `keep` accepts, in name order; none at the end.
    /// Names that `keep` refuses cost no look-up.
    fn next_batch(
        &mut self,
        max: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<FileFacts>, StorageError>;

    /// The next batch of [`Listing::next_batch`], each entry written to `out` by `render`;
    /// returns how many were written (none at the end). A back-end that looks entries up on
    /// several threads renders them there too, so that the lines of a big folder are not all
    /// written by one thread after the look-ups.
    fn next_rendered(
        &mut self,
        max: usize,
        keep: &dyn Fn(&str) -> bool,
        render: RenderEntry<'_>,
        out: &mut String,
    ) -> Result<usize, StorageError> {
        let batch = self.next_batch(max, keep)?;
        for entry in &batch {
            render(out, entry);
        }
        Ok(batch.len())
    }
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
    /// A name the storage does not take (too long; a folder moved into itself).
    BadName,
    /// Something this back-end cannot do (an object store: permission bits, renaming a
    /// folder that has files).
    Unsupported,
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
        Some(30) => return K::PermissionDenied, // EROFS: a read-only file system
        Some(36) => return K::BadName,          // ENAMETOOLONG
        Some(22) => return K::BadName,          // EINVAL: a folder renamed into itself
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
        io::ErrorKind::InvalidFilename => K::BadName,
        io::ErrorKind::ReadOnlyFilesystem => K::PermissionDenied,
        _ => K::Other,
    }
}
