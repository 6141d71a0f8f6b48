//! The workloads and the results they report. Each workload logs in by itself, runs a loop
//! bounded by count and time, and returns one [`Report`], printed as one JSON line.

mod concurrent;
mod idle;
mod listing;
mod slow;
mod soak;
mod transfer;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

pub use concurrent::{logins, retr_small, Concurrency};
pub use idle::{idle, raise_file_limit};
pub use listing::list_big;
pub use slow::{slow_readers, SlowLoad};
pub use soak::{soak, Soak, SoakLoad};
pub use transfer::{ceiling, retr_big, stor_big};

/// The result of one workload.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "workload", rename_all = "kebab-case")]
pub enum Report {
    RetrBig(Throughput),
    /// `retr-big` in TYPE A.
    RetrBigAscii(Throughput),
    StorBig(Throughput),
    Ceiling(Throughput),
    Logins(Rate),
    RetrSmall(Rate),
    ListBig(Listing),
    Idle(Memory),
    SlowReaders(SlowReading),
    Soak(Box<Soak>),
}

impl Report {
    /// The report as one line of JSON; with `tls`, marked `"tls":true` (explicit FTPS); with
    /// `cpu_seconds` (the server's CPU time over the workload), `cpu_s` and that time per
    /// operation of the workload.
    pub fn to_json(&self, tls: bool, cpu_seconds: Option<f64>) -> String {
        let line = Line {
            report: self,
            tls,
            cpu: cpu_seconds.map(|seconds| self.cpu_use(seconds)),
        };
        serde_json::to_string(&line).unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }

    /// `seconds` of server CPU spread over what this workload did, in a unit that gives
    /// readable figures: per GiB moved, per login, per transfer, per listing (LIST, MLSD and
    /// NLST alike), per idle session (its login, and as much of its close at the end as the
    /// server did before the second reading).
    fn cpu_use(&self, seconds: f64) -> CpuUse {
        const GIB: f64 = (1u64 << 30) as f64;
        let per = |count: f64, scale: f64, key: &'static str| {
            (count > 0.0).then(|| (key, seconds * scale / count))
        };
        let per_operation = match self {
            Report::RetrBig(done) | Report::RetrBigAscii(done) | Report::StorBig(done) => per(
                done.bytes as f64 * f64::from(done.runs) / GIB,
                1.0,
                "cpu_s_per_gib",
            ),
            Report::Logins(done) => per(done.completed as f64, 1e6, "cpu_us_per_login"),
            Report::RetrSmall(done) => per(done.completed as f64, 1e6, "cpu_us_per_transfer"),
            Report::ListBig(done) => per(done.listings() as f64, 1e3, "cpu_ms_per_listing"),
            Report::Idle(done) => per(done.clients as f64, 1e6, "cpu_us_per_session"),
            Report::SlowReaders(done) => per(done.bytes as f64 / GIB, 1.0, "cpu_s_per_gib"),
            Report::Ceiling(_) | Report::Soak(_) => None,
        };
        CpuUse {
            seconds,
            per_operation,
        }
    }
}

/// One output line: the report's fields, then `tls` when it was used, then the server's CPU.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    report: &'a Report,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls: bool,
    #[serde(flatten)]
    cpu: Option<CpuUse>,
}

/// The server's CPU seconds over a workload, and per operation under a key naming the unit
/// (such as `cpu_us_per_login`), so each figure reads without a separate unit field.
#[derive(Debug, Clone, Copy)]
struct CpuUse {
    seconds: f64,
    per_operation: Option<(&'static str, f64)>,
}

impl Serialize for CpuUse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("cpu_s", &self.seconds)?;
        if let Some((key, value)) = self.per_operation {
            map.serialize_entry(key, &value)?;
        }
        map.end()
    }
}

/// One big transfer, repeated `runs` times.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Bytes moved by each run.
    pub bytes: u64,
    pub runs: u32,
    /// Median seconds per run.
    pub seconds: f64,
    /// Median throughput over the runs.
    pub mib_per_s: f64,
    pub best_mib_per_s: f64,
}

/// Many clients repeating a short operation.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub clients: usize,
    /// Wall-clock seconds the loop ran.
    pub seconds: f64,
    pub completed: u64,
    pub errors: u64,
    /// Completed operations per second.
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Data bytes moved in total (0 for logins).
    pub bytes: u64,
    pub first_error: Option<String>,
    /// Paced logins only: the operations per second the clients' schedule offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_per_second: Option<f64>,
}

/// Listing a big folder three ways.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The folder listed.
    pub path: String,
    pub runs: u32,
    pub list_ms: f64,
    pub list_lines: u64,
    /// `None` when the server's FEAT does not mention MLST.
    pub mlsd_ms: Option<f64>,
    pub mlsd_lines: Option<u64>,
    pub nlst_ms: f64,
    pub nlst_lines: u64,
}

impl Listing {
    /// How many listings were made: `runs` with each verb.
    fn listings(&self) -> u64 {
        let verbs = if self.mlsd_ms.is_some() { 3 } else { 2 };
        u64::from(self.runs) * verbs
    }
}

/// Resident memory of idle logged-in sessions.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub clients: usize,
    /// Seconds from the first connect until every session was logged in.
    pub connect_seconds: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub processes_before: usize,
    pub processes_after: usize,
    /// RSS gained per session, in KiB.
    pub kib_per_session: f64,
    /// PSS gained per session, in KiB (shared pages split between processes).
    pub pss_kib_per_session: f64,
}

/// Many clients reading a download slowly, and the server's memory meanwhile.
#[derive(Debug, Clone, Serialize)]
pub struct SlowReading {
    pub clients: usize,
    /// TYPE A downloads (`--ascii`) rather than TYPE I.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ascii: bool,
    /// Bytes per second each client reads at most.
    pub rate: u64,
    /// Seconds each client reads for.
    pub seconds: f64,
    /// Clients whose download started (the others are counted in `errors`).
    pub readers: usize,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Bytes read by all clients together.
    pub bytes: u64,
    /// All clients together: `bytes` over the reading time.
    pub mib_per_s: f64,
    /// Mean bytes per second of one reader.
    pub client_rate: f64,
    pub rss_before_kib: u64,
    /// Highest RSS read (once a second) while the clients were connected.
    pub rss_peak_kib: u64,
    /// RSS a second after every client left.
    pub rss_after_kib: u64,
    pub processes_peak: usize,
    /// Memory readings taken while the clients were connected.
    pub samples: u32,
    /// Peak RSS gain per client, in KiB.
    pub kib_per_client: f64,
    /// Peak PSS gain per client, in KiB (shared pages split between processes).
    pub pss_kib_per_client: f64,
    /// Kernel TCP buffer memory of the whole machine (this bench's sockets included) before,
    /// and its highest reading: what the server has sent but the clients have not read yet is
    /// there, not in its RSS.
    pub tcp_buffers_before_kib: u64,
    pub tcp_buffers_peak_kib: u64,
}
