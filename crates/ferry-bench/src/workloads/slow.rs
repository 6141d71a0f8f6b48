//! Slow readers: many clients download a big file, each reading its data connection at a
//! limited rate through a small receive buffer, while the server's resident memory (its whole
//! process tree) is sampled every second. A server that reads files faster than its clients
//! take them must keep what it buffers per transfer bounded; this shows whether it does.

use std::sync::Arc;
use std::time::Duration;

use ferry_proto::command::TransferType;
use tokio::io::AsyncReadExt;
use tokio::sync::{Barrier, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{raise_file_limit, Report, SlowReading};
use crate::control::{connect_tcp_with_receive_buffer, Control, Target};
use crate::error::BenchError;
use crate::limits::Limits;
use crate::memory::{tcp_buffer_kib, tree_memory, TreeMemory};
use crate::stats::mib_per_second;
use crate::stream::Stream;

/// Bytes asked for by one read of a data connection.
pub const READ_CHUNK: usize = 16 * 1024;
/// SO_RCVBUF of each data connection (Linux doubles it), so the server is really held back.
pub const RECEIVE_BUFFER: u32 = 64 * 1024;
/// Downloads being set up at once.
const CONNECTING_AT_ONCE: usize = 32;
/// How often the server's memory is read.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for the replies to ABOR, and the pause before the last memory reading.
const SETTLE: Duration = Duration::from_secs(1);
/// Operations one client may wait `io_timeout` for, besides reading: connect, greeting, USER,
/// PASS, TYPE, PASV, data connect, RETR, ABOR and QUIT, with room to spare.
const CLIENT_OPERATIONS: u32 = 16;

/// How many slow clients, how fast each reads, for how long.
#[derive(Debug, Clone, Copy)]
pub struct SlowLoad {
    pub clients: usize,
    /// Bytes per second each client reads at most.
    pub rate: u64,
    /// How long each client reads once every download has started.
    pub duration: Duration,
    /// TYPE I, or TYPE A (which servers cannot send with sendfile).
    pub transfer_type: TransferType,
}

/// What one client read, or why it could not.
#[derive(Debug, Default)]
struct Tally {
    bytes: u64,
    /// Time spent reading (`None` when the download never started).
    reading: Option<Duration>,
    error: Option<String>,
}

/// `load.clients` clients log in, switch to TYPE I (or A), and RETR `path` over passive data
/// connections; once every download has started, each reads at `load.rate` bytes per second
/// for `load.duration`, then drops its data connection and sends ABOR. The RSS of
/// `server_pids` and their descendants is read before, every second during, and after.
pub async fn slow_readers(
    target: &Target,
    limits: &Limits,
    load: SlowLoad,
    path: &str,
    server_pids: &[u32],
) -> Result<Report, BenchError> {
    // A control and a data connection per client, and spares.
    raise_file_limit(load.clients as u64 * 2 + 1024)?;
    let mut peak = Peak::new(tree_memory(server_pids)?, tcp_buffer_kib()?);
    let mut tasks = spawn_clients(target, limits, load, path);
    let give_up = Instant::now() + load.duration + limits.io_timeout * CLIENT_OPERATIONS;
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    let mut tallies = Vec::with_capacity(load.clients);
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(tally)) => tallies.push(tally),
                Some(Err(error)) => tallies.push(Tally::failed(format!("client task failed: {error}"))),
                None => break,
            },
            _ = tick.tick() => peak.record(tree_memory(server_pids)?, tcp_buffer_kib()?),
            () = tokio::time::sleep_until(give_up) => {
                tasks.abort_all();
                tallies.push(Tally::failed("clients still running at the time limit".into()));
                break;
            }
        }
    }
    tokio::time::sleep(SETTLE).await;
    let after = tree_memory(server_pids)?;
    Ok(Report::SlowReaders(report(load, &tallies, &peak, after)))
}

/// One task per client; they wait for one another before reading.
fn spawn_clients(target: &Target, limits: &Limits, load: SlowLoad, path: &str) -> JoinSet<Tally> {
    let permits = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let barrier = Arc::new(Barrier::new(load.clients));
    let path: Arc<str> = Arc::from(path);
    let mut tasks = JoinSet::new();
    for _ in 0..load.clients {
        let (target, limits, path) = (target.clone(), *limits, path.clone());
        let (permits, barrier) = (permits.clone(), barrier.clone());
        tasks.spawn(async move {
            let permit = permits.acquire_owned().await;
            let started = start_download(&target, &limits, &path, load.transfer_type).await;
            drop(permit);
            barrier.wait().await;
            match started {
                Ok((control, data)) => read_then_abort(control, data, &limits, load).await,
                Err(error) => Tally::failed(error.to_string()),
            }
        });
    }
    tasks
}

/// Logs in, TYPE I or A, PASV, connects with a small receive buffer, RETR.
async fn start_download(
    target: &Target,
    limits: &Limits,
    path: &str,
    transfer_type: TransferType,
) -> Result<(Control, Stream), BenchError> {
    let mut control = Control::login(target, limits).await?;
    control.set_type(transfer_type).await?;
    let addr = control.passive_addr().await?;
    let passive = connect_tcp_with_receive_buffer(addr, RECEIVE_BUFFER, limits.io_timeout).await?;
    let data = control
        .start_transfer(&format!("RETR {path}"), passive)
        .await?;
    Ok((control, data))
}

/// Reads slowly for the load's duration, then drops the data connection and aborts the
/// transfer (best effort: what the server answers does not change what was read).
async fn read_then_abort(
    mut control: Control,
    mut data: Stream,
    limits: &Limits,
    load: SlowLoad,
) -> Tally {
    let started = Instant::now();
    let result = read_slowly(&mut data, &control, limits, load).await;
    let reading = Some(started.elapsed());
    drop(data);
    let _ = control.abort(SETTLE).await;
    let _ = control.quit().await;
    match result {
        Ok(bytes) => Tally {
            bytes,
            reading,
            error: None,
        },
        Err((bytes, error)) => Tally {
            bytes,
            reading,
            error: Some(error.to_string()),
        },
    }
}

/// Reads `data` in [`READ_CHUNK`] reads paced by a token bucket (`load.rate` bytes a second,
/// one chunk of burst) until `load.duration` has passed or the file ended. On failure, also
/// returns the bytes read before it.
async fn read_slowly(
    data: &mut Stream,
    control: &Control,
    limits: &Limits,
    load: SlowLoad,
) -> Result<u64, (u64, BenchError)> {
    let mut bucket = Bucket::new(load.rate, Instant::now());
    let deadline = Instant::now() + load.duration;
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut bytes = 0u64;
    for _ in 0..limits.max_iterations {
        let ready = bucket.ready_at(Instant::now(), READ_CHUNK);
        if ready >= deadline {
            tokio::time::sleep_until(deadline).await;
            return Ok(bytes);
        }
        tokio::time::sleep_until(ready).await;
        let read_deadline = deadline.min(Instant::now() + limits.io_timeout);
        match tokio::time::timeout_at(read_deadline, data.read(&mut buffer)).await {
            Ok(Ok(0)) => return Ok(bytes),
            Ok(Ok(read)) => {
                bucket.take(Instant::now(), read);
                bytes += read as u64;
            }
            Ok(Err(source)) => return Err((bytes, io_error(control, source))),
            Err(_) if read_deadline == deadline => return Ok(bytes),
            Err(_) => return Err((bytes, timeout_error(control))),
        }
    }
    Ok(bytes)
}

fn io_error(control: &Control, source: std::io::Error) -> BenchError {
    BenchError::Io {
        what: "receiving data slowly",
        addr: control.addr(),
        source,
    }
}

fn timeout_error(control: &Control) -> BenchError {
    BenchError::Timeout {
        what: "receiving data slowly",
        addr: control.addr(),
    }
}

/// A token bucket: `rate` bytes a second flow in, at most one chunk's worth is held, so a
/// client that fell behind (a late wake-up, a slow server) does not make up for it in a burst.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// A full bucket: the first chunk may be read at once.
    fn new(rate: u64, now: Instant) -> Bucket {
        Bucket {
            rate: rate.max(1) as f64,
            tokens: READ_CHUNK as f64,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(READ_CHUNK as f64);
        self.updated = now;
    }

    /// When `wanted` bytes (at most a chunk) may be read.
    fn ready_at(&mut self, now: Instant, wanted: usize) -> Instant {
        self.refill(now);
        let missing = (wanted as f64 - self.tokens).max(0.0);
        now + Duration::from_secs_f64(missing / self.rate)
    }

    /// Takes out `read` bytes' worth (the balance may go below zero after a late wake-up's
    /// refill is capped; it is paid back before the next read).
    fn take(&mut self, now: Instant, read: usize) {
        self.refill(now);
        self.tokens -= read as f64;
    }
}

/// The highest memory readings seen: the server's, and the kernel's TCP buffers'.
#[derive(Debug)]
struct Peak {
    before: TreeMemory,
    highest: TreeMemory,
    tcp_before_kib: u64,
    tcp_highest_kib: u64,
    samples: u32,
}

impl Peak {
    fn new(before: TreeMemory, tcp_kib: u64) -> Peak {
        Peak {
            before,
            highest: before,
            tcp_before_kib: tcp_kib,
            tcp_highest_kib: tcp_kib,
            samples: 0,
        }
    }

    fn record(&mut self, sample: TreeMemory, tcp_kib: u64) {
        self.highest.rss_kib = self.highest.rss_kib.max(sample.rss_kib);
        self.highest.pss_kib = self.highest.pss_kib.max(sample.pss_kib);
        self.highest.processes = self.highest.processes.max(sample.processes);
        self.tcp_highest_kib = self.tcp_highest_kib.max(tcp_kib);
        self.samples += 1;
    }
}

impl Tally {
    fn failed(error: String) -> Tally {
        Tally {
            error: Some(error),
            ..Tally::default()
        }
    }
}

fn report(load: SlowLoad, tallies: &[Tally], peak: &Peak, after: TreeMemory) -> SlowReading {
    let readers: Vec<&Tally> = tallies.iter().filter(|t| t.reading.is_some()).collect();
    let bytes = tallies.iter().map(|t| t.bytes).sum();
    let longest = readers.iter().filter_map(|t| t.reading).max();
    let client_rates: f64 = readers
        .iter()
        .filter_map(|t| Some(t.bytes as f64 / t.reading?.as_secs_f64().max(1e-9)))
        .sum();
    let per_client =
        |before: u64, highest: u64| (highest as f64 - before as f64) / load.clients.max(1) as f64;
    SlowReading {
        clients: load.clients,
        ascii: load.transfer_type == TransferType::Ascii,
        rate: load.rate,
        seconds: load.duration.as_secs_f64(),
        readers: readers.len(),
        errors: tallies.iter().filter(|t| t.error.is_some()).count() as u64,
        first_error: tallies.iter().find_map(|t| t.error.clone()),
        bytes,
        mib_per_s: longest.map_or(0.0, |longest| mib_per_second(bytes, longest)),
        client_rate: client_rates / readers.len().max(1) as f64,
        rss_before_kib: peak.before.rss_kib,
        rss_peak_kib: peak.highest.rss_kib,
        rss_after_kib: after.rss_kib,
        processes_peak: peak.highest.processes,
        samples: peak.samples,
        kib_per_client: per_client(peak.before.rss_kib, peak.highest.rss_kib),
        pss_kib_per_client: per_client(peak.before.pss_kib, peak.highest.pss_kib),
        tcp_buffers_before_kib: peak.tcp_before_kib,
        tcp_buffers_peak_kib: peak.tcp_highest_kib,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_chunk_is_free_and_later_ones_wait_for_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(65_536, start);
        assert_eq!(bucket.ready_at(start, READ_CHUNK), start);
        bucket.take(start, READ_CHUNK);
        let quarter = Duration::from_millis(250);
        assert_eq!(bucket.ready_at(start, READ_CHUNK), start + quarter);
        assert_eq!(
            bucket.ready_at(start + quarter, READ_CHUNK),
            start + quarter
        );
    }

    #[test]
    fn a_late_reader_gets_one_chunk_not_the_time_it_lost() {
        let start = Instant::now();
        let mut bucket = Bucket::new(65_536, start);
        bucket.take(start, READ_CHUNK);
        let late = start + Duration::from_secs(10);
        assert_eq!(bucket.ready_at(late, READ_CHUNK), late);
        bucket.take(late, READ_CHUNK);
        let next = bucket.ready_at(late, READ_CHUNK);
        assert_eq!(next - late, Duration::from_millis(250));
    }

    #[test]
    fn peak_gain_is_per_client() {
        let memory = |rss_kib| TreeMemory {
            rss_kib,
            pss_kib: rss_kib,
            processes: 1,
        };
        let mut peak = Peak::new(memory(1000), 10);
        peak.record(memory(3000), 40);
        peak.record(memory(2000), 20);
        let load = SlowLoad {
            clients: 10,
            rate: 1,
            duration: Duration::from_secs(1),
            transfer_type: TransferType::Image,
        };
        let reading = report(load, &[], &peak, memory(1500));
        assert_eq!(reading.rss_peak_kib, 3000);
        assert_eq!(reading.kib_per_client, 200.0);
        assert_eq!(reading.samples, 2);
        assert_eq!(reading.tcp_buffers_peak_kib, 40);
    }
}
