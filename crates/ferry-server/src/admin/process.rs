//! The process's own figures for `process_*` metrics: CPU time, memory and file descriptors,
//! read from the clock and `/proc/self` at scrape time (a figure that cannot be read, under
//! Landlock say, is left out rather than made up).

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the process uses now.
#[derive(Debug, Clone, Default)]
pub struct Process {
    pub cpu_seconds: f64,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

/// When the process started, as near as ferryd can tell: the first call (made at start).
pub fn start_time() -> f64 {
    static START: OnceLock<f64> = OnceLock::new();
    *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    })
}

impl Process {
    /// Reads the figures now.
    pub fn now() -> Process {
        let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        Process {
            cpu_seconds: cpu.tv_sec as f64 + cpu.tv_nsec as f64 / 1e9,
            resident_bytes: status_kib(&status, "VmRSS:").map(|kib| kib * 1024),
            virtual_bytes: status_kib(&status, "VmSize:").map(|kib| kib * 1024),
            open_fds,
            max_fds: rustix::process::getrlimit(rustix::process::Resource::Nofile).current,
            start_time_seconds: start_time(),
        }
    }
}

/// A `/proc/self/status` line such as `VmRSS: 4512 kB` (a tab after the colon), in KiB.
fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_status_lines() {
        let status = "Name:\tferryd\nVmSize:\t  20000 kB\nVmRSS:\t    4512 kB\n";
        assert_eq!(super::status_kib(status, "VmRSS:"), Some(4512));
        assert_eq!(super::status_kib(status, "VmSize:"), Some(20000));
        assert_eq!(super::status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_memory_and_descriptors() {
        let now = super::Process::now();
        assert!(now.resident_bytes.is_some_and(|b| b > 1024 * 1024));
        assert!(now.open_fds.is_some_and(|n| n >= 3));
    }
}
