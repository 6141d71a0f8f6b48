//! The names of big folders, kept while the folder is unchanged.
//!
//! Reading a 10,000-entry folder's names (getdents) is most of an NLST's time and a good part
//! of a LIST's. A folder's modification and change times move whenever an entry is created,
//! removed or renamed in it, so names read when a folder had given times are still its names
//! while it has them. The file system's clock is coarse (a tick of a few milliseconds), and a
//! change within the same tick as the one before would leave the times as they were: so a
//! folder is cached only once its modification time is [`SETTLED`] old, as git treats "racily
//! clean" files. Entries' own facts (size, date) are never cached: LIST and MLSD look each one up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Names;

/// Folders with fewer names are read every time (it is as quick as looking them up).
const MIN_NAMES: usize = 1024;

/// How old a folder's times must be before its names are kept.
const SETTLED: Duration = Duration::from_secs(2);

/// Bytes of names kept for all folders together; the least recently used go first.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// The process's cache. Folders are known by device and inode, so sessions on different roots
/// that reach the same folder share its entry, and the memory bound holds for the whole server.
pub fn shared() -> &'static NamesCache {
    static SHARED: std::sync::OnceLock<NamesCache> = std::sync::OnceLock::new();
    SHARED.get_or_init(NamesCache::default)
}

/// Which folder, and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Device and inode: the folder itself, whatever path reaches it.
    pub id: (u64, u64),
    /// Modification and change times, in nanoseconds since the epoch.
    pub times: (i128, i128),
}

impl Stamp {
    /// The stamp of an open folder.
    pub fn of(folder: impl std::os::fd::AsFd) -> std::io::Result<Stamp> {
        let stat = rustix::fs::fstat(folder)?;
        let nanos = |secs: i64, nsec: u64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        Ok(Stamp {
            id: (stat.st_dev, stat.st_ino),
            times: (
                nanos(stat.st_mtime, stat.st_mtime_nsec as u64),
                nanos(stat.st_ctime, stat.st_ctime_nsec as u64),
            ),
        })
    }

    /// Whether the modification time was more than [`SETTLED`] old when the reading `started`:
    /// a change of names during or after the reading cannot then fall in its clock tick (even a
    /// file system with 2-second times) and leave it as it is. (The change time is only
    /// compared: a chmod moves it without touching the names.)
    fn settled(&self, started: SystemTime) -> bool {
        let Ok(started) = started.duration_since(UNIX_EPOCH) else {
            return false;
        };
        self.times.0 < (started.as_nanos() as i128) - (SETTLED.as_nanos() as i128)
    }
}

#[derive(Debug)]
struct Entry {
    times: (i128, i128),
    names: Arc<Names>,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    folders: HashMap<(u64, u64), Entry>,
    bytes: usize,
    clock: u64,
}

/// Names of big, settled folders, by folder.
#[derive(Debug, Default)]
pub struct NamesCache {
    inner: Mutex<Inner>,
}

impl NamesCache {
    /// The folder's names, if they were read while it had the same times.
    pub fn get(&self, stamp: &Stamp) -> Option<Arc<Names>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.clock += 1;
        let clock = inner.clock;
        let entry = inner.folders.get_mut(&stamp.id)?;
        if entry.times != stamp.times {
            return None;
        }
        entry.last_used = clock;
        Some(Arc::clone(&entry.names))
    }

    /// Keeps names read from a folder that had `stamp` before and after the reading (which
    /// `started` at that time), if the folder is big and settled.
    pub fn put(&self, stamp: &Stamp, names: Arc<Names>, started: SystemTime) {
        if names.len() < MIN_NAMES || !stamp.settled(started) {
            return;
        }
        let size = names.bytes();
        if size > MAX_BYTES {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.clock += 1;
        let clock = inner.clock;
        if let Some(old) = inner.folders.remove(&stamp.id) {
            inner.bytes -= old.names.bytes();
        }
        while inner.bytes + size > MAX_BYTES {
            let Some(oldest) = inner
                .folders
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some(evicted) = inner.folders.remove(&oldest) {
                inner.bytes -= evicted.names.bytes();
            }
        }
        inner.bytes += size;
        inner.folders.insert(
            stamp.id,
            Entry {
                times: stamp.times,
                names,
                last_used: clock,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Arc<Names> {
        Arc::new((0..count).map(|i| format!("n{i}")).collect())
    }

    fn stamp(id: u64, age_secs: i128) -> Stamp {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        let time = now - age_secs * 1_000_000_000;
        Stamp {
            id: (1, id),
            times: (time, time),
        }
    }

    #[test]
    fn kept_only_while_unchanged_and_only_when_settled_and_big() {
        let cache = NamesCache::default();
        let settled = stamp(1, 60);
        cache.put(&settled, names(MIN_NAMES), SystemTime::now());
        assert_eq!(cache.get(&settled).map(|n| n.len()), Some(MIN_NAMES));
        let changed = Stamp {
            times: (settled.times.0 + 1, settled.times.1),
            ..settled
        };
        assert!(cache.get(&changed).is_none(), "a new mtime is a miss");

        let fresh = stamp(2, 0);
        cache.put(&fresh, names(MIN_NAMES), SystemTime::now());
        assert!(
            cache.get(&fresh).is_none(),
            "a folder changed just now is not kept"
        );

        let small = stamp(3, 60);
        cache.put(&small, names(MIN_NAMES - 1), SystemTime::now());
        assert!(
            cache.get(&small).is_none(),
            "small folders are read every time"
        );
    }

    #[test]
    fn the_least_recently_used_go_first() {
        let cache = NamesCache::default();
        let per_folder = names(100_000);
        let fit = MAX_BYTES / per_folder.bytes();
        assert!(fit >= 2, "the test needs room for two folders");
        let stamps: Vec<Stamp> = (0..=fit as u64).map(|id| stamp(id, 60)).collect();
        for stamp in &stamps[..fit] {
            cache.put(stamp, Arc::clone(&per_folder), SystemTime::now());
        }
        assert!(cache.get(&stamps[0]).is_some());
        cache.put(&stamps[fit], Arc::clone(&per_folder), SystemTime::now());
        assert!(cache.get(&stamps[0]).is_some(), "just used, so kept");
        assert!(
            cache.get(&stamps[1]).is_none(),
            "least recently used, so gone"
        );
        assert!(cache.get(&stamps[fit]).is_some());
        assert!(cache.inner.lock().unwrap().bytes <= MAX_BYTES);
    }
}
