//! [`UploadMemory`]: the memory that uploads to object stores may hold at once, server-wide.
//!
//! An upload to an object store holds its data in memory until the store has it: the part
//! being filled, and the parts being sent. With many clients and a store slower than them,
//! that memory has no bound unless one is set here. Each upload reserves room before it
//! buffers: [`FIRST_ROOM`] for its first bytes (most uploads never need more), then a whole
//! part once its data passes that, and a whole part for each further part. A reservation goes
//! back when the part it covers is stored, or the upload ends. While there is no room an
//! upload waits (its data socket is not read, so its client is slowed by TCP); after
//! [`PATIENCE`] it fails.
//!
//! No wait can last for ever: a new upload is admitted only when a whole part stays free
//! after its first room, and an upload that grows never waits behind one being admitted
//! (admissions take room only when it is free and nobody waits for it). So the room an upload
//! needs to grow past its first bytes is free, or held by parts that need nothing more to
//! finish (a part with its whole room is filled and sent without further waits), and comes
//! back when those are stored.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The room a new upload reserves for its first bytes.
pub const FIRST_ROOM: usize = 1024 * 1024;

/// How long an upload waits for room before it fails.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// How often the upload next in line for admission looks for room.
const ADMISSION_POLL: Duration = Duration::from_millis(10);

/// Room is counted in KiB (tokio's semaphore takes at most `u32::MAX` permits at a time).
const UNIT: usize = 1024;

/// The room for upload data in memory, shared by every upload to every object store.
#[derive(Debug)]
pub struct UploadMemory {
    room: Arc<Semaphore>,
    /// New uploads wait here for their turn to look for room, one at a time and in order.
    admissions: Semaphore,
    /// All of it, in units.
    total: u32,
    /// A whole part, in units (at most `total`).
    part: u32,
}

/// Room reserved by one upload (or one part), in units; it goes back when dropped.
#[derive(Debug, Default)]
pub struct Room {
    permit: Option<OwnedSemaphorePermit>,
}

/// There was no room within [`PATIENCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server holds as much upload data for the object store as it may; try again later")]
pub struct NoRoom;

impl UploadMemory {
    /// Room for `total` bytes, in which parts take `part` bytes each. Needs `total` to be at
    /// least `part + FIRST_ROOM` (the configuration checks it); less is raised to that.
    pub fn new(total: u64, part: usize) -> UploadMemory {
        let part = units(part).max(1);
        let total = u32::try_from(total.div_ceil(UNIT as u64))
            .unwrap_or(u32::MAX)
            .max(part.saturating_add(units(FIRST_ROOM)));
        UploadMemory {
            room: Arc::new(Semaphore::new(total as usize)),
            admissions: Semaphore::new(1),
            total,
            part,
        }
    }

    /// The room a new upload starts with ([`FIRST_ROOM`]), reserved when a whole part stays
    /// free besides it.
    pub async fn admit(&self) -> Result<Room, NoRoom> {
        let deadline = Instant::now() + PATIENCE;
        let first = units(FIRST_ROOM).min(self.total);
        let wanted = first.saturating_add(self.part).min(self.total) as usize;
        let _turn = match tokio::time::timeout_at(deadline, self.admissions.acquire()).await {
            Ok(Ok(turn)) => turn,
            Ok(Err(_)) | Err(_) => return Err(NoRoom),
        };
        // Never queued on `room`, where it would hold up the uploads that grow behind it: room
        // freed goes to those first, and what is left shows as available.
        loop {
            if self.room.available_permits() >= wanted {
                if let Ok(permit) = Arc::clone(&self.room).try_acquire_many_owned(first) {
                    return Ok(Room {
                        permit: Some(permit),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(NoRoom);
            }
            tokio::time::sleep(ADMISSION_POLL).await;
        }
    }

    /// Makes `room` cover `bytes` (at most a whole part: the biggest parts, past 2,000 of them,
    /// are counted as one).
    pub async fn grow(&self, room: &mut Room, bytes: usize) -> Result<(), NoRoom> {
        let wanted = units(bytes).min(self.part);
        let held = room.units();
        if wanted <= held {
            return Ok(());
        }
        let more = self.acquire(wanted - held).await?;
        match &mut room.permit {
            Some(permit) => permit.merge(more),
            None => room.permit = Some(more),
        }
        Ok(())
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        let free = self.room.available_permits() as u64;
        (u64::from(self.total) - free.min(u64::from(self.total))) * UNIT as u64
    }

    async fn acquire(&self, units: u32) -> Result<OwnedSemaphorePermit, NoRoom> {
        let units = units.min(self.total);
        let room = Arc::clone(&self.room);
        match tokio::time::timeout(PATIENCE, room.acquire_many_owned(units)).await {
            Ok(Ok(permit)) => Ok(permit),
            // Never closed; a timeout is the only way here.
            Ok(Err(_)) | Err(_) => Err(NoRoom),
        }
    }
}

impl Room {
    /// The units held.
    fn units(&self) -> u32 {
        self.permit
            .as_ref()
            .map_or(0, |p| u32::try_from(p.num_permits()).unwrap_or(u32::MAX))
    }

    /// Bytes this room covers.
    pub fn bytes(&self) -> usize {
        self.units() as usize * UNIT
    }
}

/// Bytes in units, rounded up.
fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn rooms_are_counted_and_come_back() {
        run(async {
            let memory = UploadMemory::new(32 * MIB as u64, 8 * MIB);
            let mut a = memory.admit().await.unwrap();
            assert_eq!(a.bytes(), FIRST_ROOM);
            assert_eq!(memory.in_use(), FIRST_ROOM as u64);
            memory.grow(&mut a, 3 * MIB).await.unwrap();
            assert_eq!(a.bytes(), 3 * MIB);
            // Never more than a part.
            memory.grow(&mut a, 100 * MIB).await.unwrap();
            assert_eq!(a.bytes(), 8 * MIB);
            let mut part = Room::default();
            memory.grow(&mut part, 8 * MIB).await.unwrap();
            assert_eq!(memory.in_use(), 16 * MIB as u64);
            drop(a);
            drop(part);
            assert_eq!(memory.in_use(), 0);
        });
    }

    #[test]
    fn a_new_upload_waits_while_less_than_a_part_would_stay_free() {
        run(async {
            // 11 MiB: three uploads of 1 MiB leave 8 free, a whole part; a fourth would leave
            // less.
            let memory = Arc::new(UploadMemory::new(11 * MIB as u64, 8 * MIB));
            let _a = memory.admit().await.unwrap();
            let _b = memory.admit().await.unwrap();
            let _c = memory.admit().await.unwrap();
            let started = tokio::time::Instant::now();
            assert_eq!(memory.admit().await.unwrap_err(), NoRoom);
            assert!(started.elapsed() >= PATIENCE);
            assert_eq!(memory.in_use(), 3 * MIB as u64);
        });
    }

    #[test]
    fn uploads_that_hold_their_first_room_can_always_grow_in_turn() {
        run(async {
            // Every admission it allows, then growing each upload to a whole part and letting
            // it go (its part stored): none waits out its patience.
            let memory = Arc::new(UploadMemory::new(20 * MIB as u64, 8 * MIB));
            let mut uploads = Vec::new();
            while let Ok(Ok(room)) =
                tokio::time::timeout(Duration::from_secs(1), memory.admit()).await
            {
                uploads.push(room);
            }
            assert_eq!(uploads.len(), 12, "20 MiB less a part, 1 MiB each");
            let mut growing = tokio::task::JoinSet::new();
            for mut room in uploads {
                let memory = Arc::clone(&memory);
                growing.spawn(async move {
                    memory.grow(&mut room, 8 * MIB).await?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    drop(room);
                    Ok::<_, NoRoom>(())
                });
            }
            while let Some(grown) = growing.join_next().await {
                grown.unwrap().unwrap();
            }
            assert_eq!(memory.in_use(), 0);
        });
    }

    #[test]
    fn an_upload_that_grows_never_waits_behind_one_being_admitted() {
        run(async {
            // 6 MiB: the first upload leaves 5 free, too little for a second to be admitted;
            // while that one waits, the first must still grow to its whole part.
            let memory = Arc::new(UploadMemory::new(6 * MIB as u64, 5 * MIB));
            let mut first = memory.admit().await.unwrap();
            let waiting = {
                let memory = Arc::clone(&memory);
                tokio::spawn(async move { memory.admit().await })
            };
            tokio::time::sleep(Duration::from_secs(1)).await;
            let started = tokio::time::Instant::now();
            memory.grow(&mut first, 5 * MIB).await.unwrap();
            assert!(started.elapsed() < Duration::from_secs(1));
            // Its part stored, the second upload gets in.
            drop(first);
            let second = waiting.await.unwrap().unwrap();
            assert_eq!(second.bytes(), FIRST_ROOM);
        });
    }

    #[test]
    fn a_part_bigger_than_the_whole_room_takes_all_of_it() {
        run(async {
            let memory = UploadMemory::new(0, 8 * MIB);
            let mut room = memory.admit().await.unwrap();
            memory.grow(&mut room, 8 * MIB).await.unwrap();
            assert_eq!(room.bytes(), 8 * MIB);
        });
    }
}
