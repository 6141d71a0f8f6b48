//! `ferryd doctor`: checks a configuration and the machine it runs on, then connects to the
//! server as a client would, and prints one line per check (ok, warn or fail) with one line of
//! advice for what is not ok.
//!
//! It connects only to the configured addresses: the listen address (loopback for a wildcard
//! one, or a local configured passive address), and the addresses PASV advertises, which must
//! be the configured ones or the control connection's own.

mod account;
mod certificate;
mod client;
mod local;
mod probe;
mod tls;

use std::fmt;
use std::io::Write;

use crate::config::Config;
use crate::server::Context;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        })
    }
}

/// One check's result: what was checked, what was found, and what to do about it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub status: Status,
    pub check: String,
    pub detail: String,
    /// One line; empty for most `ok` findings.
    pub advice: String,
}

impl Finding {
    pub fn ok(check: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding::new(Status::Ok, check, detail, "")
    }

    pub fn warn(check: impl Into<String>, detail: impl Into<String>, advice: &str) -> Finding {
        Finding::new(Status::Warn, check, detail, advice)
    }

    pub fn fail(check: impl Into<String>, detail: impl Into<String>, advice: &str) -> Finding {
        Finding::new(Status::Fail, check, detail, advice)
    }

    fn new(
        status: Status,
        check: impl Into<String>,
        detail: impl Into<String>,
        advice: &str,
    ) -> Finding {
        Finding {
            status,
            check: check.into(),
            detail: detail.into(),
            advice: advice.to_string(),
        }
    }
}

/// The findings so far, printed as they come.
pub struct Report<W: Write> {
    out: W,
    worst: Status,
    pub findings: Vec<Finding>,
}

impl<W: Write> Report<W> {
    pub fn new(out: W) -> Report<W> {
        Report {
            out,
            worst: Status::Ok,
            findings: Vec::new(),
        }
    }

    pub fn add(&mut self, finding: Finding) {
        let _ = writeln!(
            self.out,
            "{:<4}  {}: {}",
            finding.status, finding.check, finding.detail
        );
        if !finding.advice.is_empty() {
            let _ = writeln!(self.out, "      advice: {}", finding.advice);
        }
        let _ = self.out.flush();
        self.worst = self.worst.max(finding.status);
        self.findings.push(finding);
    }

    /// The worst status of all findings.
    pub fn worst(&self) -> Status {
        self.worst
    }
}

/// Runs every check on `config` (or reports why there is none), printing to `out`; returns the
/// worst status (the exit code is non-zero on `Fail`).
pub fn run(config: Result<Config, String>, out: impl Write) -> Status {
    let mut report = Report::new(out);
    // First, as a certificate that does not go with its key makes the configuration invalid.
    if let Ok(config) = &config {
        certificate::check(config, &config.server_name(), &mut report);
    }
    let context = match config.and_then(|config| Context::new(config).map_err(|e| e.to_string())) {
        Ok(context) => context,
        Err(error) => {
            report.add(Finding::fail(
                "configuration",
                error,
                "fix the file or flag named above; `ferryd --check-config` says the same",
            ));
            return report.worst();
        }
    };
    report.add(Finding::ok("configuration", "valid"));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report.add(Finding::fail(
                "runtime",
                error.to_string(),
                "the machine is out of threads or memory",
            ));
            return report.worst();
        }
    };
    runtime.block_on(async {
        local::object_stores(&context, &mut report).await;
        let listeners = local::listen_ports(&context, &mut report);
        local::passive_ports(&context, &mut report);
        local::passive_addresses(&context, &mut report);
        probe::run(context, listeners, &mut report).await;
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    report.worst()
}
