//! `ferry-bench`: a load generator that speaks FTP to any server and reports one JSON line per
//! workload.
//!
//! - [`control`]: a small, fast FTP client (bounded control lines, passive data connections).
//! - [`data`]: draining downloads and feeding uploads over data connections.
//! - [`limits`]: how long and how often every loop may run.
//! - [`stats`]: latency percentiles and medians.
//! - [`memory`]: a process tree's resident memory, read from `/proc`.
//! - [`workloads`]: the workloads themselves and the [`Report`] each one returns.

pub mod control;
pub mod data;
pub mod error;
pub mod limits;
pub mod memory;
pub mod stats;
pub mod workloads;

pub use control::{Control, Target};
pub use error::BenchError;
pub use limits::Limits;
pub use workloads::Report;
