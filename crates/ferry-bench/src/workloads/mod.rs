//! The workloads and the results they report. Each workload logs in by itself, runs a loop
//! bounded by count and time, and returns one [`Report`], printed as one JSON line.

mod concurrent;
mod idle;
mod listing;
mod slow;
mod soak;
mod transfer;

use serde::Serialize;

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
    /// The report as one line of JSON; with `tls`, marked `"tls":true` (explicit FTPS).
    pub fn to_json(&self, tls: bool) -> String {
        let line = Line { report: self, tls };
        serde_json::to_string(&line).unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }
}

/// One output line: the report's fields, then `tls` when it was used.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    report: &'a Report,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls: bool,
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
    pub runs: u32,
    pub list_ms: f64,
    pub list_lines: u64,
    /// `None` when the server's FEAT does not mention MLST.
    pub mlsd_ms: Option<f64>,
    pub mlsd_lines: Option<u64>,
    pub nlst_ms: f64,
    pub nlst_lines: u64,
}

/// Resident memory of idle logged-in sessions.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub clients: usize,
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
