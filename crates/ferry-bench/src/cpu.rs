//! CPU time a server's process tree spent, read from `/proc/PID/stat` (Linux only), so the
//! workloads can report the server's CPU cost per operation beside its speed: a server that is
//! as fast on loopback but burns twice the CPU for it serves half as many clients on a busy
//! machine.
//!
//! A snapshot sums, for the given processes and all their current descendants, the time they
//! ran themselves (`utime` + `stime`, all threads) and the time of their children that exited
//! and were reaped (`cutime` + `cstime`). Forking servers (vsftpd, Pure-FTPd: one process per
//! session) need the second part: a session process that exits during the workload is gone
//! from `/proc`, and its time shows up only in its parent's `cutime` once the parent has
//! reaped it (wait). The kernel adds a reaped child's own `cutime` too, so a grandchild (vsftpd's
//! unprivileged session process below its privileged one) is counted when its parent is reaped
//! by the top. Time of a child that has exited but is not reaped yet by the second snapshot is
//! still in its zombie's `/proc/PID/stat` and counted there; a child auto-reaped because its
//! parent ignores SIGCHLD is lost (none of the servers compared does that).

use std::fs;

use crate::error::BenchError;
use crate::memory::tree_processes;

/// CPU seconds a process tree has used so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeCpu {
    pub seconds: f64,
}

impl TreeCpu {
    /// CPU seconds used between `earlier` and this snapshot (0 if the tree lost time, as when
    /// a process exited unreaped by a parent that ignores SIGCHLD).
    pub fn since(self, earlier: TreeCpu) -> f64 {
        (self.seconds - earlier.seconds).max(0.0)
    }
}

/// The CPU time of `roots` and every descendant, reaped children included.
pub fn tree_cpu(roots: &[u32]) -> Result<TreeCpu, BenchError> {
    let ticks: u64 = tree_processes(roots)?
        .into_iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| parse_stat_ticks(&stat))
        .sum();
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Ok(TreeCpu {
        seconds: ticks as f64 / per_second as f64,
    })
}

/// `utime + stime + cutime + cstime` (fields 14-17, in clock ticks) of a `/proc/PID/stat` line;
/// `comm` may hold spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state (3), ppid (4), ... utime is field 14, the 12th after the name.
    let fields: Vec<&str> = after_name.split_whitespace().skip(11).take(4).collect();
    if fields.len() < 4 {
        return None;
    }
    fields.iter().map(|field| field.parse::<u64>().ok()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_from_stat_with_odd_name() {
        let stat = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 20 5 20 0 1 0 99 0";
        assert_eq!(parse_stat_ticks(stat), Some(35));
        assert_eq!(parse_stat_ticks("42 (short) S 1 2"), None);
    }

    #[test]
    fn own_process_uses_cpu() {
        let start = tree_cpu(&[std::process::id()]).unwrap();
        let mut spin = 0u64;
        let until = std::time::Instant::now() + std::time::Duration::from_millis(100);
        while std::time::Instant::now() < until {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        assert!(tree_cpu(&[std::process::id()]).unwrap().since(start) > 0.0);
    }
}
