//! Quotas: the most bytes and files an account may keep under its root (or, for anonymous
//! users, under their upload folder).
//!
//! Usage is counted once, by walking the folder when the account's first session logs in
//! (logins that arrive during the walk wait for it instead of walking too), and then tracked:
//! uploads charge their bytes as they are written (so that a running upload stops at the
//! limit), and when a file operation ends its effect is settled from the sizes before and
//! after. Every session of one account shares one [`Usage`] (atomic counters), so
//! two uploads at once cannot both take the last bytes. Changes made outside Ferry are seen at
//! the next count: when the account has no session left, its usage is dropped, and the next
//! login counts again.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::storage::{FileKind, Storage, StorageError, VirtualPath};

/// Limits of an account; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub bytes: Option<u64>,
    pub files: Option<u64>,
}

impl Limits {
    pub fn is_limited(&self) -> bool {
        self.bytes.is_some() || self.files.is_some()
    }
}

/// Deepest folder nesting the count walks.
const MAX_DEPTH: usize = 64;

/// What an account uses, against its limits.
#[derive(Debug)]
pub struct Usage {
    limits: Limits,
    /// The folder counted (the account's root, or the anonymous upload folder).
    scope: VirtualPath,
    /// Signed: a settlement may briefly take them below zero.
    bytes: AtomicI64,
    files: AtomicI64,
}

impl Usage {
    /// Counts the files and bytes under `scope` (symlinks are not followed).
    pub fn count(
        storage: &dyn Storage,
        scope: VirtualPath,
        limits: Limits,
    ) -> Result<Usage, StorageError> {
        let (mut bytes, mut files) = (0u64, 0u64);
        let mut folders = vec![(scope.clone(), 0usize)];
        while let Some((folder, depth)) = folders.pop() {
            let entries = match storage.list(&folder) {
                Ok(entries) => entries,
                // The upload folder may not exist yet: nothing is used.
                Err(error)
                    if folder == scope
                        && error.kind == crate::storage::StorageErrorKind::NotFound =>
                {
                    Vec::new()
                }
                Err(error) => return Err(error),
            };
            for entry in entries {
                match entry.kind {
                    FileKind::File => {
                        bytes = bytes.saturating_add(entry.size);
                        files += 1;
                    }
                    FileKind::Directory if depth < MAX_DEPTH => {
                        folders.push((folder.join(&entry.name), depth + 1));
                    }
                    _ => {}
                }
            }
        }
        Ok(Usage {
            limits,
            scope,
            bytes: AtomicI64::new(i64::try_from(bytes).unwrap_or(i64::MAX)),
            files: AtomicI64::new(i64::try_from(files).unwrap_or(i64::MAX)),
        })
    }

    /// Whether `path` is counted.
    pub fn covers(&self, path: &VirtualPath) -> bool {
        path.as_str() == self.scope.as_str()
            || path
                .as_str()
                .strip_prefix(self.scope.as_str())
                .is_some_and(|rest| rest.starts_with('/') || self.scope.is_root())
    }

    pub fn bytes_used(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn files_used(&self) -> u64 {
        self.files.load(Ordering::Relaxed).max(0) as u64
    }

    /// Why an upload may not start: bytes used up, or (for a new file) the files.
    pub fn refuses_upload(&self, new_file: bool) -> Option<String> {
        if let Some(limit) = self.limits.bytes {
            if self.bytes_used() >= limit {
                return Some(format!(
                    "Quota exceeded: {} of {limit} bytes used.",
                    self.bytes_used()
                ));
            }
        }
        if let Some(limit) = self.limits.files {
            if new_file && self.files_used() >= limit {
                return Some(format!(
                    "Quota exceeded: {} of {limit} files used.",
                    self.files_used()
                ));
            }
        }
        None
    }

    /// The bytes the limit still allows (`None`: no byte limit).
    pub fn bytes_left(&self) -> Option<u64> {
        self.limits
            .bytes
            .map(|limit| limit.saturating_sub(self.bytes_used()))
    }

    /// Takes `bytes` of a running upload; an error (EDQUOT) once the limit would be passed.
    pub fn charge(&self, bytes: u64) -> io::Result<()> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let after = self
            .bytes
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        match self.limits.bytes {
            Some(limit) if after > i64::try_from(limit).unwrap_or(i64::MAX) => {
                self.bytes.fetch_sub(bytes, Ordering::Relaxed);
                Err(io::Error::from_raw_os_error(
                    rustix::io::Errno::DQUOT.raw_os_error(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Settles a change: `bytes` and `files` more (or fewer) than was counted or charged.
    pub fn adjust(&self, bytes: i64, files: i64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.files.fetch_add(files, Ordering::Relaxed);
    }

    /// SITE QUOTA's lines.
    pub fn report(&self, user: &str) -> Vec<String> {
        let limit = |limit: Option<u64>| limit.map_or("unlimited".to_string(), |l| l.to_string());
        vec![
            format!("Quota for {user} (under {}):", self.scope),
            format!(
                " Bytes: {} used of {}",
                self.bytes_used(),
                limit(self.limits.bytes)
            ),
            format!(
                " Files: {} used of {}",
                self.files_used(),
                limit(self.limits.files)
            ),
            "End of quota".to_string(),
        ]
    }
}

/// A writer that charges every byte to a [`Usage`] (when there is one) before writing it.
pub struct Charged<W> {
    pub inner: W,
    usage: Option<Arc<Usage>>,
    /// Bytes charged so far, read for the settlement when the upload ends (however it ends).
    charged: Arc<AtomicU64>,
}

impl<W> Charged<W> {
    pub fn new(inner: W, usage: Option<Arc<Usage>>, charged: Arc<AtomicU64>) -> Charged<W> {
        Charged {
            inner,
            usage,
            charged,
        }
    }
}

impl<W: io::Write> io::Write for Charged<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Some(usage) = &self.usage else {
            return self.inner.write(bytes);
        };
        usage.charge(bytes.len() as u64)?;
        match self.inner.write(bytes) {
            Ok(written) => {
                usage.adjust(-((bytes.len() - written) as i64), 0);
                self.charged.fetch_add(written as u64, Ordering::Relaxed);
                Ok(written)
            }
            Err(error) => {
                usage.adjust(-(bytes.len() as i64), 0);
                Err(error)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One account's turn to count: when the count that failed last ended, and its error, while
/// logins wait.
type Turn = Arc<Mutex<Option<(std::time::Instant, StorageError)>>>;

/// The same error again, for another login (an `io::Error` cannot be cloned).
fn retell(error: &StorageError) -> StorageError {
    StorageError {
        kind: error.kind,
        path: error.path.clone(),
        source: io::Error::new(error.source.kind(), error.source.to_string()),
    }
}

/// The usage of every account with a quota that has a session, shared by its sessions.
#[derive(Debug, Default)]
pub struct Ledger {
    accounts: Mutex<HashMap<String, Weak<Usage>>>,
    /// One count at a time per account: logins that arrive while one counts wait for it and
    /// share what it found, rather than walking the same folders side by side. A count that
    /// failed leaves its error for the logins that waited for it (the next login to come after
    /// them counts again). Every handle on an entry is taken and dropped under this lock.
    counting: Mutex<HashMap<String, Turn>>,
}

impl Ledger {
    /// The usage of the account `key`, counted now if no session of it holds one. Blocking:
    /// call it on the blocking pool.
    pub fn usage(
        &self,
        key: &str,
        storage: &dyn Storage,
        scope: VirtualPath,
        limits: Limits,
    ) -> Result<Arc<Usage>, StorageError> {
        if let Some(usage) = self.live(key, limits) {
            return Ok(usage);
        }
        let arrived = std::time::Instant::now();
        let turn = {
            let mut counting = self.counting.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(counting.entry(key.to_string()).or_default())
        };
        let mut held = turn.lock().unwrap_or_else(|p| p.into_inner());
        // The count this login waited for, or its failure (only one that ended after this login
        // arrived: a later login counts again); else this login counts.
        let result = match (self.live(key, limits), &*held) {
            (Some(usage), _) => Ok(usage),
            (None, Some((ended, failed))) if *ended >= arrived => Err(retell(failed)),
            (None, _) => {
                let counted = self.count(key, storage, scope, limits);
                *held = match &counted {
                    Ok(_) => None,
                    Err(error) => Some((std::time::Instant::now(), retell(error))),
                };
                counted
            }
        };
        drop(held);
        let mut counting = self.counting.lock().unwrap_or_else(|p| p.into_inner());
        drop(turn);
        // Only the map holds the turn: nobody waits on it.
        if counting
            .get(key)
            .is_some_and(|turn| Arc::strong_count(turn) == 1)
        {
            counting.remove(key);
        }
        result
    }

    fn count(
        &self,
        key: &str,
        storage: &dyn Storage,
        scope: VirtualPath,
        limits: Limits,
    ) -> Result<Arc<Usage>, StorageError> {
        let counted = Arc::new(Usage::count(storage, scope, limits)?);
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        // Another session may have counted meanwhile: one usage per account.
        if let Some(usage) = accounts.get(key).and_then(Weak::upgrade) {
            if usage.limits == limits {
                return Ok(usage);
            }
        }
        accounts.retain(|_, usage| usage.strong_count() > 0);
        accounts.insert(key.to_string(), Arc::downgrade(&counted));
        Ok(counted)
    }

    fn live(&self, key: &str, limits: Limits) -> Option<Arc<Usage>> {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        accounts
            .get(key)
            .and_then(Weak::upgrade)
            .filter(|usage| usage.limits == limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn usage(limits: Limits) -> (tempfile::TempDir, Arc<dyn Storage>, Arc<Usage>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("one"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("a/b/two"), [0u8; 50]).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("a/etc")).unwrap();
        let storage: Arc<dyn Storage> =
            Arc::new(crate::storage::LocalFs::open(dir.path()).unwrap());
        let usage = Usage::count(storage.as_ref(), VirtualPath::root(), limits).unwrap();
        (dir, storage, Arc::new(usage))
    }

    #[test]
    fn counts_files_and_bytes_without_following_links() {
        let (_dir, _storage, usage) = usage(Limits::default());
        assert_eq!((usage.bytes_used(), usage.files_used()), (150, 2));
    }

    #[test]
    fn charges_stop_at_the_limit_and_give_back_what_failed() {
        let (_dir, _storage, usage) = usage(Limits {
            bytes: Some(200),
            files: Some(3),
        });
        assert_eq!(usage.bytes_left(), Some(50));
        let charged = Arc::new(AtomicU64::new(0));
        let mut writer = Charged::new(Vec::new(), Some(Arc::clone(&usage)), Arc::clone(&charged));
        writer.write_all(&[1; 40]).unwrap();
        let error = writer.write_all(&[1; 20]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::QuotaExceeded);
        assert_eq!(usage.bytes_used(), 190);
        assert_eq!(charged.load(Ordering::Relaxed), 40);
        assert!(usage.refuses_upload(false).is_none());
        usage.adjust(10, 1);
        assert!(usage.refuses_upload(false).unwrap().contains("200 bytes"));
        usage.adjust(-100, 0);
        assert!(usage.refuses_upload(true).unwrap().contains("files"));
        assert!(usage.refuses_upload(false).is_none());
    }

    #[test]
    fn the_ledger_shares_one_usage_while_sessions_hold_it() {
        let (_dir, storage, _) = usage(Limits::default());
        let ledger = Ledger::default();
        let limits = BYTES_1000;
        let first = ledger
            .usage("alice", storage.as_ref(), VirtualPath::root(), limits)
            .unwrap();
        let second = ledger
            .usage("alice", storage.as_ref(), VirtualPath::root(), limits)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        first.adjust(500, 0);
        drop((first, second));
        // Counted afresh once no session holds it.
        let third = ledger
            .usage("alice", storage.as_ref(), VirtualPath::root(), limits)
            .unwrap();
        assert_eq!(third.bytes_used(), 150);
    }

    /// A folder on disk whose listings take a while and are counted.
    #[derive(Debug)]
    struct SlowListing {
        inner: crate::storage::LocalFs,
        lists: std::sync::atomic::AtomicUsize,
        /// Every listing fails (after its wait).
        fails: bool,
    }

    impl SlowListing {
        fn over(dir: &std::path::Path, fails: bool) -> SlowListing {
            SlowListing {
                inner: crate::storage::LocalFs::open(dir).unwrap(),
                lists: std::sync::atomic::AtomicUsize::new(0),
                fails,
            }
        }
    }

    /// A byte quota, for the ledger tests.
    const BYTES_1000: Limits = Limits {
        bytes: Some(1000),
        files: None,
    };

    impl Storage for SlowListing {
        fn metadata(&self, path: &VirtualPath) -> Result<crate::storage::FileFacts, StorageError> {
            self.inner.metadata(path)
        }
        fn open_listing(
            &self,
            path: &VirtualPath,
        ) -> Result<Box<dyn crate::storage::Listing>, StorageError> {
            self.inner.open_listing(path)
        }
        fn list(&self, path: &VirtualPath) -> Result<Vec<crate::storage::FileFacts>, StorageError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            if self.fails {
                return Err(StorageError::new(
                    crate::storage::StorageErrorKind::Other,
                    path,
                    "the store does not answer",
                ));
            }
            self.inner.list(path)
        }
        fn open_read(
            &self,
            path: &VirtualPath,
            offset: u64,
        ) -> Result<(crate::storage::ReadBody, u64), StorageError> {
            self.inner.open_read(path, offset)
        }
        fn open_write(
            &self,
            path: &VirtualPath,
            mode: crate::storage::WriteMode,
        ) -> Result<crate::storage::WriteBody, StorageError> {
            self.inner.open_write(path, mode)
        }
        fn create_dir(&self, path: &VirtualPath) -> Result<(), StorageError> {
            self.inner.create_dir(path)
        }
        fn remove_dir(&self, path: &VirtualPath) -> Result<(), StorageError> {
            self.inner.remove_dir(path)
        }
        fn remove_file(&self, path: &VirtualPath) -> Result<(), StorageError> {
            self.inner.remove_file(path)
        }
        fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError> {
            self.inner.rename(from, to)
        }
        fn rename_new(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError> {
            self.inner.rename_new(from, to)
        }
        fn set_mode(&self, path: &VirtualPath, mode: u32) -> Result<(), StorageError> {
            self.inner.set_mode(path, mode)
        }
    }

    /// Logins of one account that arrive while its usage is counted wait for that count: the
    /// folders are walked once, and all of them share its result.
    #[test]
    fn logins_at_once_share_one_count() {
        let (dir, _, _) = usage(Limits::default());
        let storage = SlowListing::over(dir.path(), false);
        let ledger = Ledger::default();
        let limits = BYTES_1000;
        let usages: Vec<Arc<Usage>> = std::thread::scope(|scope| {
            let logins: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        ledger
                            .usage("alice", &storage, VirtualPath::root(), limits)
                            .unwrap()
                    })
                })
                .collect();
            logins.into_iter().map(|l| l.join().unwrap()).collect()
        });
        // The root, a and a/b: one walk.
        assert_eq!(storage.lists.load(Ordering::SeqCst), 3);
        assert!(usages.iter().all(|u| Arc::ptr_eq(u, &usages[0])));
        assert_eq!(usages[0].bytes_used(), 150);
        assert!(
            ledger.counting.lock().unwrap().is_empty(),
            "no turn left behind"
        );
    }

    /// Logins that waited for a count that failed fail with it at once, instead of each
    /// counting again in turn (the last would wait for all the failures before it); the next
    /// login after them counts again.
    #[test]
    fn logins_that_waited_for_a_failed_count_share_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SlowListing::over(dir.path(), true);
        let ledger = Ledger::default();
        let limits = BYTES_1000;
        let failures = std::thread::scope(|scope| {
            let logins: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        ledger
                            .usage("alice", &storage, VirtualPath::root(), limits)
                            .unwrap_err()
                    })
                })
                .collect();
            logins
                .into_iter()
                .map(|l| l.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert!(failures
            .iter()
            .all(|error| error.to_string().contains("the store does not answer")));
        // At most a few counts (a login may come after the others have left), not one each.
        let counts = storage.lists.load(Ordering::SeqCst);
        assert!(counts < 8, "{counts} counts for 8 logins");
        assert!(
            ledger.counting.lock().unwrap().is_empty(),
            "no turn left behind"
        );
        ledger
            .usage("alice", &storage, VirtualPath::root(), limits)
            .unwrap_err();
        assert_eq!(storage.lists.load(Ordering::SeqCst), counts + 1);
    }

    /// A failure recorded before a login arrived is not that login's: it counts again (a
    /// stream of logins holding the turn must not keep one old failure alive).
    #[test]
    fn a_failure_from_before_a_login_is_not_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SlowListing::over(dir.path(), false);
        let ledger = Ledger::default();
        let limits = BYTES_1000;
        let old_failure = StorageError::new(
            crate::storage::StorageErrorKind::Other,
            &VirtualPath::root(),
            "an old failure",
        );
        let turn: Turn = Arc::new(Mutex::new(Some((std::time::Instant::now(), old_failure))));
        ledger
            .counting
            .lock()
            .unwrap()
            .insert("alice".into(), Arc::clone(&turn));
        std::thread::sleep(std::time::Duration::from_millis(5));
        let usage = ledger
            .usage("alice", &storage, VirtualPath::root(), limits)
            .unwrap();
        assert_eq!(usage.bytes_used(), 0);
        assert_eq!(storage.lists.load(Ordering::SeqCst), 1, "counted again");
        assert!(turn.lock().unwrap().is_none(), "the old failure is gone");
    }

    #[test]
    fn scope_covers_its_folder_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("incoming")).unwrap();
        let storage = crate::storage::LocalFs::open(dir.path()).unwrap();
        let scope = VirtualPath::root().join("incoming");
        let usage = Usage::count(&storage, scope, Limits::default()).unwrap();
        assert!(usage.covers(&VirtualPath::root().join("incoming/x")));
        assert!(!usage.covers(&VirtualPath::root().join("incomingx")));
        assert!(!usage.covers(&VirtualPath::root().join("x")));
    }
}
