//! Soak: many clients at once doing a realistic mix for minutes, every byte they get back
//! checked, while the server's memory, descriptors, threads and sockets are sampled; then
//! whether they come back to where they started once the load stops.
//!
//! Each client runs sessions one after the other until the time is up:
//! - a work session (most): anonymous login, a folder of its own, then a dozen operations
//!   drawn at random: STOR of generated content then RETR of it compared byte for byte, RETR of
//!   an earlier file, RETR after REST (the tail compared), LIST/MLSD/NLST, PASV or EPSV or PORT
//!   or EPRT data connections, ABOR in the middle of a download, DELE;
//! - some over explicit FTPS (every `tls_every`th session);
//! - some that only log in and out (anonymous, or the account with a password);
//! - some that log in and stay idle for a while;
//! - some that vanish in the middle of a download (a reset on both connections).
//!
//! Errors the soak provokes (its own resets, the 426 of an ABOR) are counted apart from
//! unexpected ones; a byte that differs is a mismatch.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Report;
use crate::control::{Control, Target};
use crate::error::BenchError;
use crate::limits::{Budget, Limits};
use crate::probe::{probe, Probe};
use crate::stats::percentile_ms;
use crate::stream::Stream;

/// What the soak runs.
#[derive(Debug, Clone)]
pub struct SoakLoad {
    /// Clients at once.
    pub sessions: usize,
    pub duration: Duration,
    /// The server's process, to sample (none: no samples).
    pub pid: Option<u32>,
    /// Every this many sessions of a client, one is over FTPS (0: none).
    pub tls_every: u64,
    /// The server's host name, for TLS.
    pub host: String,
}

/// How often the server is sampled during the load.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// How long the server has, after the load, to give back descriptors and threads.
const RECOVERY: Duration = Duration::from_secs(30);
/// Operations in one work session.
const OPERATIONS_PER_SESSION: u64 = 12;
/// Files a client keeps on the server at most (older ones are deleted).
const FILES_PER_CLIENT: usize = 6;
/// Distinct error messages kept for the report.
const FIRST_ERRORS: usize = 20;
/// The file a client downloads partly and aborts, or vanishes during: big enough to be
/// running when it does.
const BIG_FILE: u64 = 4 << 20;

/// The soak's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    pub sessions: usize,
    pub seconds: f64,
    /// Count and latency of each kind of operation.
    pub operations: BTreeMap<String, Operation>,
    /// Errors nobody asked for, by kind.
    pub unexpected_errors: u64,
    pub errors: BTreeMap<String, u64>,
    /// Errors the soak provoked (its resets, ABOR), by kind.
    pub provoked: BTreeMap<String, u64>,
    /// Downloads whose bytes differed from what was uploaded.
    pub mismatches: u64,
    pub first_errors: Vec<String>,
    /// The server before the load, every 10 s during it, and when it had recovered (or the
    /// recovery time ran out).
    pub samples: Vec<Probe>,
    pub baseline: Option<Probe>,
    pub after: Option<Probe>,
    /// Seconds after the load until descriptors and threads were back at the baseline.
    pub recovered_after_seconds: Option<f64>,
    /// RSS after the first minute (the first sample past 60 s, or the last one) and at the end
    /// of the load, and how much the second is above the first.
    pub rss_after_first_minute_kib: Option<u64>,
    pub rss_at_end_kib: Option<u64>,
    pub rss_growth_percent: Option<f64>,
}

/// One kind of operation.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What one client saw.
#[derive(Debug, Default)]
struct Tally {
    latencies: HashMap<&'static str, Vec<Duration>>,
    errors: BTreeMap<String, u64>,
    provoked: BTreeMap<String, u64>,
    mismatches: u64,
    first_errors: Vec<String>,
}

impl Tally {
    fn timed(&mut self, kind: &'static str, started: Instant) {
        self.latencies
            .entry(kind)
            .or_default()
            .push(started.elapsed());
    }

    fn error(&mut self, during: &str, error: &BenchError) {
        *self
            .errors
            .entry(format!("{during}: {}", kind_of(error)))
            .or_default() += 1;
        if self.first_errors.len() < FIRST_ERRORS {
            self.first_errors.push(format!("{during}: {error}"));
        }
    }

    /// A download whose bytes or length differed from what was stored.
    fn mismatch(&mut self, what: String) {
        self.mismatches += 1;
        if self.first_errors.len() < FIRST_ERRORS {
            self.first_errors.push(format!("mismatch: {what}"));
        }
    }

    fn provoked(&mut self, what: &str) {
        *self.provoked.entry(what.to_string()).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        for (kind, samples) in other.latencies {
            self.latencies.entry(kind).or_default().extend(samples);
        }
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, count) in other.provoked {
            *self.provoked.entry(kind).or_default() += count;
        }
        self.mismatches += other.mismatches;
        let room = FIRST_ERRORS.saturating_sub(self.first_errors.len());
        self.first_errors
            .extend(other.first_errors.into_iter().take(room));
    }
}

/// An error's kind, for counting: what failed, without addresses or texts that vary.
fn kind_of(error: &BenchError) -> String {
    match error {
        BenchError::Unexpected { command, reply, .. } => format!("{command} got {}", reply.code),
        BenchError::Timeout { what, .. } => format!("timeout {what}"),
        BenchError::Io { what, source, .. } => format!("{what}: {:?}", source.kind()),
        BenchError::Connect { source, .. } => format!("connect: {:?}", source.kind()),
        BenchError::Closed { .. } => "control connection closed".into(),
        BenchError::ShortTransfer { .. } => "short transfer".into(),
        other => format!("{other:?}").chars().take(40).collect(),
    }
}

/// A small reproducible random generator (xorshift), one per client.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// The content of generated file `seed`: byte `position` is a hash of the seed and its 8-byte
/// block, so any range can be made again to check a download (REST included).
fn content(seed: u64, start: u64, out: &mut [u8]) {
    for (index, byte) in out.iter_mut().enumerate() {
        let position = start + index as u64;
        let block = splitmix(seed ^ (position / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        *byte = (block >> ((position % 8) * 8)) as u8;
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A file a client put on the server.
#[derive(Debug, Clone, Copy)]
struct Stored {
    seed: u64,
    size: u64,
}

/// One client's state across its sessions.
struct Client {
    index: usize,
    random: Random,
    files: Vec<(String, Stored)>,
    next_file: u64,
    sessions: u64,
    tally: Tally,
    /// Whether its folder and big file exist on the server yet.
    prepared: bool,
}

/// How a data connection is made.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

/// The data connection of one transfer, before the transfer command.
enum Data {
    Passive(tokio::net::TcpStream),
    Active(TcpListener),
}

/// Runs the soak: `load.sessions` clients for `load.duration`, as `target` (anonymous) and,
/// for some password logins, as `account`.
pub async fn soak(
    target: &Target,
    account: Option<&Target>,
    limits: &Limits,
    load: SoakLoad,
) -> Result<Report, BenchError> {
    let control_port = target.addr.port();
    let started = Instant::now();
    let sample = |second: i64| {
        load.pid
            .and_then(|pid| probe(pid, control_port, second).ok())
    };
    let baseline = sample(-1);
    let tls = match load.tls_every {
        0 => None,
        _ => Some(crate::tls::TlsClient::accept_any_certificate(&load.host)?),
    };
    let mut clients = tokio::task::JoinSet::new();
    for index in 0..load.sessions {
        let target = target.clone();
        let account = account.cloned();
        let tls_target = tls.clone().map(|tls| Target {
            tls: Some(tls),
            ..target.clone()
        });
        let limits = *limits;
        let tls_every = load.tls_every;
        let deadline = started + load.duration;
        clients.spawn(async move {
            let client = Client {
                index,
                random: Random(splitmix(index as u64 + 1) | 1),
                files: Vec::new(),
                next_file: 0,
                sessions: 0,
                tally: Tally::default(),
                prepared: false,
            };
            let targets = Targets {
                plain: target,
                tls: tls_target,
                account,
                tls_every,
            };
            run_client(client, &targets, &limits, deadline).await
        });
    }
    let mut samples: Vec<Probe> = baseline.into_iter().collect();
    let mut total = Tally::default();
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.tick().await;
    let sampling_deadline = started + load.duration + limits.io_timeout * 4;
    while !clients.is_empty() {
        tokio::select! {
            joined = clients.join_next() => {
                if let Some(Ok(tally)) = joined {
                    total.merge(tally);
                }
            }
            _ = ticker.tick() => {
                samples.extend(sample(started.elapsed().as_secs() as i64));
                if Instant::now() > sampling_deadline {
                    clients.abort_all();
                }
            }
        }
    }
    let load_end = samples.last().copied();
    let (after, recovered) = recover(&sample, baseline, started).await;
    Ok(Report::Soak(Box::new(report(
        &load, started, total, samples, baseline, load_end, after, recovered,
    ))))
}

/// The targets of a client's sessions.
struct Targets {
    plain: Target,
    tls: Option<Target>,
    account: Option<Target>,
    tls_every: u64,
}

/// Waits up to [`RECOVERY`] for descriptors and threads to be back at the baseline.
async fn recover(
    sample: &impl Fn(i64) -> Option<Probe>,
    baseline: Option<Probe>,
    started: Instant,
) -> (Option<Probe>, Option<f64>) {
    let Some(baseline) = baseline else {
        return (None, None);
    };
    let load_over = Instant::now();
    let mut last = None;
    for _ in 0..RECOVERY.as_secs() * 2 {
        let now = sample(started.elapsed().as_secs() as i64);
        if now.is_some_and(|n| n.fds <= baseline.fds && n.threads <= baseline.threads) {
            return (now, Some(load_over.elapsed().as_secs_f64()));
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (last, None)
}

#[allow(clippy::too_many_arguments)]
fn report(
    load: &SoakLoad,
    started: Instant,
    total: Tally,
    samples: Vec<Probe>,
    baseline: Option<Probe>,
    load_end: Option<Probe>,
    after: Option<Probe>,
    recovered: Option<f64>,
) -> Soak {
    let operations = total
        .latencies
        .into_iter()
        .map(|(kind, mut samples)| {
            let operation = Operation {
                count: samples.len() as u64,
                p50_ms: percentile_ms(&mut samples, 50.0),
                p99_ms: percentile_ms(&mut samples, 99.0),
            };
            (kind.to_string(), operation)
        })
        .collect();
    let during: Vec<&Probe> = samples.iter().filter(|s| s.second >= 0).collect();
    let first_minute = during
        .iter()
        .find(|s| s.second >= 60)
        .or(during.last())
        .map(|s| s.rss_kib);
    let at_end = load_end.filter(|s| s.second >= 0).map(|s| s.rss_kib);
    let growth = match (first_minute, at_end) {
        (Some(first), Some(end)) if first > 0 => {
            Some((end as f64 - first as f64) * 100.0 / first as f64)
        }
        _ => None,
    };
    Soak {
        sessions: load.sessions,
        seconds: started.elapsed().as_secs_f64(),
        operations,
        unexpected_errors: total.errors.values().sum(),
        errors: total.errors,
        provoked: total.provoked,
        mismatches: total.mismatches,
        first_errors: total.first_errors,
        samples,
        baseline,
        after,
        recovered_after_seconds: recovered,
        rss_after_first_minute_kib: first_minute,
        rss_at_end_kib: at_end,
        rss_growth_percent: growth,
    }
}

/// One client: sessions one after the other until the deadline (and a bounded count).
async fn run_client(
    mut client: Client,
    targets: &Targets,
    limits: &Limits,
    deadline: Instant,
) -> Tally {
    // Clients start spread over the first second, not all at the same instant.
    let spread = Duration::from_millis(client.random.below(1000));
    tokio::time::sleep(spread).await;
    let mut budget = Budget::new(
        limits.max_iterations,
        deadline.saturating_duration_since(Instant::now()),
    );
    while budget.take() {
        client.sessions += 1;
        let tls = targets.tls_every > 0 && client.sessions % targets.tls_every == 0;
        let roll = client.random.below(100);
        let result = match roll {
            _ if tls => match &targets.tls {
                Some(target) => work_session(&mut client, target, limits, deadline, 3).await,
                None => Ok(()),
            },
            0..=7 => login_churn(&mut client, targets, limits).await,
            8..=10 => idle_session(&mut client, &targets.plain, limits, deadline).await,
            11..=12 => vanish(&mut client, &targets.plain, limits).await,
            _ => {
                let operations = OPERATIONS_PER_SESSION;
                work_session(&mut client, &targets.plain, limits, deadline, operations).await
            }
        };
        if let Err((during, error)) = result {
            client.tally.error(during, &error);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    client.tally
}

type Outcome = Result<(), (&'static str, BenchError)>;

/// Tags an error with the operation it happened in.
fn during(what: &'static str) -> impl Fn(BenchError) -> (&'static str, BenchError) {
    move |error| (what, error)
}

/// Connect, log in (anonymous, or the account with a password), QUIT.
async fn login_churn(client: &mut Client, targets: &Targets, limits: &Limits) -> Outcome {
    let target = match (&targets.account, client.random.below(2)) {
        (Some(account), 0) => account,
        _ => &targets.plain,
    };
    let kind = if std::ptr::eq(target, &targets.plain) {
        "login anonymous"
    } else {
        "login password"
    };
    let started = Instant::now();
    let control = Control::login(target, limits).await.map_err(during(kind))?;
    client.tally.timed(kind, started);
    let started = Instant::now();
    control.quit().await.map_err(during("quit"))?;
    client.tally.timed("quit", started);
    Ok(())
}

/// Log in and stay idle for 5 to 15 s (or until the deadline), then NOOP and QUIT.
async fn idle_session(
    client: &mut Client,
    target: &Target,
    limits: &Limits,
    deadline: Instant,
) -> Outcome {
    let mut control = Control::login(target, limits)
        .await
        .map_err(during("login anonymous"))?;
    let pause = Duration::from_secs(5 + client.random.below(11));
    let until = (Instant::now() + pause).min(deadline);
    tokio::time::sleep_until(until.into()).await;
    let started = Instant::now();
    control.expect("NOOP", 2).await.map_err(during("noop"))?;
    client.tally.timed("noop after idle", started);
    control.quit().await.map_err(during("quit"))
}

/// Start downloading the big file and vanish: both connections reset, no QUIT.
async fn vanish(client: &mut Client, target: &Target, limits: &Limits) -> Outcome {
    let mut control = Control::login(target, limits)
        .await
        .map_err(during("login anonymous"))?;
    prepare(client, &mut control, limits).await?;
    let data = control.open_passive().await.map_err(during("pasv"))?;
    let path = big_file(client.index);
    let mut data = control
        .start_transfer(&format!("RETR {path}"), data)
        .await
        .map_err(during("retr big"))?;
    let mut buffer = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(limits.io_timeout, data.read(&mut buffer)).await;
    data.reset();
    control.reset();
    client.tally.provoked("vanished mid-download (reset)");
    Ok(())
}

/// TYPE I; and the client's folder and big file, made in its first session.
async fn prepare(client: &mut Client, control: &mut Control, limits: &Limits) -> Outcome {
    control
        .set_type(ferry_proto::command::TransferType::Image)
        .await
        .map_err(during("type"))?;
    if client.prepared {
        return Ok(());
    }
    let folder = folder(client.index);
    let made = control
        .command(&format!("MKD {folder}"))
        .await
        .map_err(during("mkd"))?;
    if made.class() != 2 && made.code != 550 {
        return Err(("mkd", unexpected(control, "MKD", made)));
    }
    let started = Instant::now();
    let stored = big_stored(client.index);
    store(control, &big_file(client.index), stored, Mode::Pasv, limits).await?;
    client.tally.timed("stor", started);
    client.prepared = true;
    Ok(())
}

fn unexpected(control: &Control, command: &str, reply: ferry_proto::Reply) -> BenchError {
    BenchError::Unexpected {
        addr: control.addr(),
        command: command.to_string(),
        reply,
    }
}

fn folder(index: usize) -> String {
    format!("soak-{index}")
}

fn big_file(index: usize) -> String {
    format!("soak-{index}/big.bin")
}

/// A work session: log in, then `operations` operations drawn at random, then QUIT.
async fn work_session(
    client: &mut Client,
    target: &Target,
    limits: &Limits,
    deadline: Instant,
    operations: u64,
) -> Outcome {
    let kind = if target.tls.is_some() {
        "login tls"
    } else {
        "login anonymous"
    };
    let started = Instant::now();
    let mut control = Control::login(target, limits).await.map_err(during(kind))?;
    client.tally.timed(kind, started);
    prepare(client, &mut control, limits).await?;
    let started = Instant::now();
    control
        .expect(&format!("CWD /{}", folder(client.index)), 2)
        .await
        .map_err(during("cwd"))?;
    control.expect("CWD /", 2).await.map_err(during("cwd"))?;
    client.tally.timed("cwd", started);
    // Over TLS, few data connections: rustls resumes each with a ticket used once.
    let tls = target.tls.is_some();
    for _ in 0..operations {
        if Instant::now() >= deadline {
            break;
        }
        let mode = match (tls, client.random.below(4)) {
            (true, _) | (_, 0) => Mode::Pasv,
            (_, 1) => Mode::Epsv,
            (_, 2) => Mode::Port,
            _ => Mode::Eprt,
        };
        match client.random.below(if tls { 3 } else { 10 }) {
            0 => put_and_check(client, &mut control, mode, limits).await?,
            1 => get_and_check(client, &mut control, mode, limits, false).await?,
            2 => listing(client, &mut control, mode, limits).await?,
            3 | 4 => get_and_check(client, &mut control, mode, limits, true).await?,
            5 => abort_download(client, &mut control, limits).await?,
            6 => delete_oldest(client, &mut control).await?,
            _ => put_and_check(client, &mut control, mode, limits).await?,
        }
    }
    let started = Instant::now();
    control.quit().await.map_err(during("quit"))?;
    client.tally.timed("quit", started);
    Ok(())
}

/// STOR a new file of generated content (1 KiB to 1 MiB, now and then 8 MiB), then RETR it and
/// compare; keeps at most [`FILES_PER_CLIENT`] files.
async fn put_and_check(
    client: &mut Client,
    control: &mut Control,
    mode: Mode,
    limits: &Limits,
) -> Outcome {
    if client.files.len() >= FILES_PER_CLIENT {
        delete_oldest(client, control).await?;
    }
    let size = match client.random.below(20) {
        0 => 8 << 20,
        _ => 1024 + client.random.below(1 << 20),
    };
    let stored = Stored {
        seed: client.random.next(),
        size,
    };
    client.next_file += 1;
    let name = format!("{}/f{}.bin", folder(client.index), client.next_file);
    let started = Instant::now();
    store(control, &name, stored, mode, limits).await?;
    client.tally.timed("stor", started);
    client.files.push((name.clone(), stored));
    check_download(client, control, (&name, stored, 0), mode, limits, "retr").await
}

/// RETR one of the client's files (or its big file), whole or from a random REST offset, and
/// compare.
async fn get_and_check(
    client: &mut Client,
    control: &mut Control,
    mode: Mode,
    limits: &Limits,
    with_rest: bool,
) -> Outcome {
    let (name, stored) = match client.files.len() {
        0 => (big_file(client.index), big_stored(client.index)),
        count => client.files[client.random.below(count as u64) as usize].clone(),
    };
    let offset = if with_rest {
        client.random.below(stored.size)
    } else {
        0
    };
    let kind = if with_rest { "retr rest" } else { "retr" };
    check_download(client, control, (&name, stored, offset), mode, limits, kind).await
}

/// RETR a file from an offset, timed as `kind`, and count a mismatch if it differed.
async fn check_download(
    client: &mut Client,
    control: &mut Control,
    (name, stored, offset): (&str, Stored, u64),
    mode: Mode,
    limits: &Limits,
    kind: &'static str,
) -> Outcome {
    let started = Instant::now();
    let differed = retrieve(control, name, stored, offset, mode, limits).await?;
    client.tally.timed(kind, started);
    if let Some(what) = differed {
        client.tally.mismatch(what);
    }
    Ok(())
}

/// The content of a client's big file.
fn big_stored(index: usize) -> Stored {
    Stored {
        seed: splitmix(index as u64 ^ 0xB16),
        size: BIG_FILE,
    }
}

/// LIST, MLSD or NLST of the client's folder.
async fn listing(
    client: &mut Client,
    control: &mut Control,
    mode: Mode,
    limits: &Limits,
) -> Outcome {
    let (verb, kind) = match client.random.below(3) {
        0 => ("LIST", "list"),
        1 => ("MLSD", "mlsd"),
        _ => ("NLST", "nlst"),
    };
    let started = Instant::now();
    let data = open_data(control, mode).await.map_err(during(kind))?;
    let command = format!("{verb} /{}", folder(client.index));
    let mut stream = start(control, &command, data, limits)
        .await
        .map_err(during(kind))?;
    let lines = crate::data::count_lines(&mut stream, control.addr(), limits)
        .await
        .map_err(during(kind))?;
    crate::data::close(stream, limits).await;
    control.finish_transfer(verb).await.map_err(during(kind))?;
    client.tally.timed(kind, started);
    // The big file at least, and every file the client keeps.
    if lines < 1 + client.files.len() as u64 {
        let files = 1 + client.files.len();
        let what = format!(
            "{verb} of {} gave {lines} lines for {files} files",
            folder(client.index)
        );
        client.tally.mismatch(what);
    }
    Ok(())
}

/// Start downloading the big file, read a little, ABOR: the server answers 426 and 226 (or 226
/// alone), and the session goes on.
async fn abort_download(client: &mut Client, control: &mut Control, limits: &Limits) -> Outcome {
    let started = Instant::now();
    let data = control.open_passive().await.map_err(during("abor"))?;
    let mut stream = control
        .start_transfer(&format!("RETR /{}", big_file(client.index)), data)
        .await
        .map_err(during("abor"))?;
    let mut buffer = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(limits.io_timeout, stream.read(&mut buffer)).await;
    drop(stream);
    control
        .abort(limits.io_timeout)
        .await
        .map_err(during("abor"))?;
    control
        .expect("NOOP", 2)
        .await
        .map_err(during("noop after abor"))?;
    client.tally.timed("abor", started);
    client.tally.provoked("download aborted (426)");
    Ok(())
}

/// DELE the client's oldest file.
async fn delete_oldest(client: &mut Client, control: &mut Control) -> Outcome {
    if client.files.is_empty() {
        return Ok(());
    }
    let (name, _) = client.files.remove(0);
    let started = Instant::now();
    control
        .expect(&format!("DELE /{name}"), 2)
        .await
        .map_err(during("dele"))?;
    client.tally.timed("dele", started);
    Ok(())
}

/// Prepares the data connection: passive (connected now) or active (listening for the server).
async fn open_data(control: &mut Control, mode: Mode) -> Result<Data, BenchError> {
    match mode {
        Mode::Pasv => control.open_passive().await.map(Data::Passive),
        Mode::Epsv => {
            let reply = control.expect("EPSV", 2).await?;
            let port = ferry_proto::hostport::parse_epsv_reply(&reply.text()).map_err(|_| {
                BenchError::PassiveReply {
                    addr: control.addr(),
                    reply,
                }
            })?;
            let addr = SocketAddr::new(control.addr().ip(), port);
            crate::control::connect_tcp(addr, Duration::from_secs(30), false)
                .await
                .map(Data::Passive)
        }
        Mode::Port | Mode::Eprt => {
            let listener = TcpListener::bind(SocketAddr::new(control.addr().ip(), 0))
                .await
                .map_err(|source| BenchError::Io {
                    what: "listening for an active data connection",
                    addr: control.addr(),
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| BenchError::Io {
                what: "listening for an active data connection",
                addr: control.addr(),
                source,
            })?;
            let command = match (mode, local) {
                (Mode::Port, SocketAddr::V4(v4)) => {
                    let [a, b, c, d] = v4.ip().octets();
                    let port = v4.port();
                    format!("PORT {a},{b},{c},{d},{},{}", port >> 8, port & 0xff)
                }
                (_, local) => {
                    let family = if local.is_ipv4() { 1 } else { 2 };
                    format!("EPRT |{family}|{}|{}|", local.ip(), local.port())
                }
            };
            control.expect(&command, 2).await?;
            Ok(Data::Active(listener))
        }
    }
}

/// Sends a transfer command and gets its data connection, as [`Control::start_transfer`];
/// for active mode the server's connection is accepted while the 150 is read.
async fn start(
    control: &mut Control,
    command: &str,
    data: Data,
    limits: &Limits,
) -> Result<Stream, BenchError> {
    match data {
        Data::Passive(tcp) => control.start_transfer(command, tcp).await,
        Data::Active(listener) => {
            control.send(command).await?;
            let addr = control.addr();
            let accept = tokio::time::timeout(limits.io_timeout, listener.accept());
            let (reply, accepted) = tokio::join!(control.reply(), accept);
            let reply = reply?;
            control.check(&reply, command, 1)?;
            match accepted {
                Ok(Ok((tcp, _))) => Ok(Stream::Plain(tcp)),
                Ok(Err(source)) => Err(BenchError::Io {
                    what: "accepting an active data connection",
                    addr,
                    source,
                }),
                Err(_) => Err(BenchError::Timeout {
                    what: "accepting an active data connection",
                    addr,
                }),
            }
        }
    }
}

/// STOR `stored`'s content as `name`.
async fn store(
    control: &mut Control,
    name: &str,
    stored: Stored,
    mode: Mode,
    limits: &Limits,
) -> Outcome {
    let data = open_data(control, mode).await.map_err(during("stor"))?;
    let mut stream = start(control, &format!("STOR /{name}"), data, limits)
        .await
        .map_err(during("stor"))?;
    let addr = control.addr();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut offset = 0;
    while offset < stored.size {
        let length = (stored.size - offset).min(chunk.len() as u64) as usize;
        content(stored.seed, offset, &mut chunk[..length]);
        crate::control::timed(
            "sending data",
            addr,
            limits.io_timeout,
            stream.write_all(&chunk[..length]),
        )
        .await
        .map_err(during("stor"))?;
        offset += length as u64;
    }
    crate::control::timed(
        "closing the data connection",
        addr,
        limits.io_timeout,
        stream.shutdown(),
    )
    .await
    .map_err(during("stor"))?;
    // Wait for the server's close (over TLS, its close_notify), so nothing is reset.
    let _ = tokio::time::timeout(limits.io_timeout, stream.read(&mut chunk)).await;
    control
        .finish_transfer("STOR")
        .await
        .map_err(during("stor"))
}

/// RETR `name` from `offset` (REST when not 0) and compare every byte with `stored`'s content.
/// Returns what differed, if anything (the length, or the first byte that differs).
async fn retrieve(
    control: &mut Control,
    name: &str,
    stored: Stored,
    offset: u64,
    mode: Mode,
    limits: &Limits,
) -> Result<Option<String>, (&'static str, BenchError)> {
    if offset > 0 {
        control
            .expect(&format!("REST {offset}"), 3)
            .await
            .map_err(during("rest"))?;
    }
    let data = open_data(control, mode).await.map_err(during("retr"))?;
    let mut stream = start(control, &format!("RETR /{name}"), data, limits)
        .await
        .map_err(during("retr"))?;
    let addr = control.addr();
    let mut received = vec![0u8; 64 * 1024];
    let mut expected = vec![0u8; 64 * 1024];
    let mut position = offset;
    let mut first_difference = None;
    for _ in 0..limits.max_iterations {
        let read = crate::control::timed(
            "receiving data",
            addr,
            limits.io_timeout,
            stream.read(&mut received),
        )
        .await
        .map_err(during("retr"))?;
        if read == 0 {
            break;
        }
        content(stored.seed, position, &mut expected[..read]);
        if first_difference.is_none() {
            let mut differs = received[..read].iter().zip(&expected[..read]);
            first_difference = differs
                .position(|(a, b)| a != b)
                .map(|i| position + i as u64);
        }
        position += read as u64;
    }
    crate::data::close(stream, limits).await;
    control
        .finish_transfer("RETR")
        .await
        .map_err(during("retr"))?;
    let size = stored.size;
    Ok(match first_difference {
        Some(at) => Some(format!(
            "{name} from {offset}: byte {at} of {size} differs ({mode:?})"
        )),
        None if position != size => Some(format!(
            "{name} from {offset}: {position} of {size} bytes ({mode:?})"
        )),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_the_same_for_any_range() {
        let mut whole = vec![0u8; 1000];
        content(7, 0, &mut whole);
        let mut tail = vec![0u8; 333];
        content(7, 667, &mut tail);
        assert_eq!(&whole[667..], &tail[..]);
        let mut other = vec![0u8; 1000];
        content(8, 0, &mut other);
        assert_ne!(whole, other);
    }

    #[test]
    fn random_numbers_stay_below_their_bound() {
        let mut random = Random(12345);
        assert!((0..1000).all(|_| random.below(7) < 7));
    }
}
