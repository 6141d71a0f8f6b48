//! `ferry-bench`: a load generator that speaks FTP to any server and reports one JSON line per
//! workload.
//!
//! - [`control`]: a small, fast FTP client (bounded control lines, passive data connections,
//!   explicit FTPS).
//! - [`tls`]: the client TLS configuration for `--tls` (benchmarking only: any certificate).
//! - [`stream`]: a connection that is plain TCP or TLS.
//! - [`data`]: draining downloads and feeding uploads over data connections.
//! - [`limits`]: how long and how often every loop may run.
//! - [`stats`]: latency percentiles and medians.
//! - [`cpu`]: the CPU time a process tree used, read from `/proc`.
//! - [`memory`]: a process tree's resident memory, read from `/proc`.
//! - [`probe`]: a server process's memory, descriptors, threads and sockets, from `/proc`.
//! - [`workloads`]: the workloads themselves and the [`Report`] each one returns.

pub mod control;
pub mod cpu;
pub mod data;
pub mod error;
pub mod limits;
pub mod memory;
pub mod probe;
pub mod stats;
pub mod stream;
pub mod tls;
pub mod workloads;

pub use control::{Control, Target};
pub use error::BenchError;
pub use limits::Limits;
pub use tls::TlsClient;
pub use workloads::Report;
