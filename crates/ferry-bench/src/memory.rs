//! Resident (RSS) and proportional (PSS) memory of a server's process tree, read from `/proc` (Linux only): the given
//! processes and all their descendants, so forking servers (one process per session) are
//! counted whole. Also the kernel's TCP buffer memory, which is no process's RSS: what a server
//! has written but a slow client has not read yet sits there.

use std::collections::{BTreeSet, HashMap};
use std::fs;

use crate::error::BenchError;

/// The memory of a process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeMemory {
    /// Sum of `VmRSS` (shared pages count once per process that maps them).
    pub rss_kib: u64,
    /// Sum of `Pss` from `smaps_rollup` (shared pages split between the processes mapping them).
    pub pss_kib: u64,
    pub processes: usize,
}

/// The memory of `roots` and every descendant.
pub fn tree_memory(roots: &[u32]) -> Result<TreeMemory, BenchError> {
    let processes = tree_processes(roots)?;
    Ok(TreeMemory {
        rss_kib: processes
            .iter()
            .map(|&pid| process_kib(pid, "status", "VmRSS:"))
            .sum(),
        pss_kib: processes
            .iter()
            .map(|&pid| process_kib(pid, "smaps_rollup", "Pss:"))
            .sum(),
        processes: processes.len(),
    })
}

/// Memory the kernel holds in TCP socket buffers, system-wide (every process's sockets, this
/// one's included), in KiB: the `mem` pages of the `TCP:` line of `/proc/net/sockstat`.
pub fn tcp_buffer_kib() -> Result<u64, BenchError> {
    let sockstat = fs::read_to_string("/proc/net/sockstat")
        .map_err(|error| BenchError::Memory(format!("/proc/net/sockstat: {error}")))?;
    let pages = parse_sockstat_tcp_pages(&sockstat)
        .ok_or_else(|| BenchError::Memory("no TCP mem in /proc/net/sockstat".into()))?;
    Ok(pages * rustix::param::page_size() as u64 / 1024)
}

/// The `mem` figure (pages) of `TCP: inuse 4 orphan 0 tw 2 alloc 4 mem 276`.
fn parse_sockstat_tcp_pages(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|line| line.starts_with("TCP:"))?;
    let mut fields = line.split_whitespace();
    fields.find(|&field| field == "mem")?;
    fields.next()?.parse().ok()
}

/// `roots` and all their current descendants.
pub fn tree_processes(roots: &[u32]) -> Result<BTreeSet<u32>, BenchError> {
    Ok(descendants(roots, &parent_map()?))
}

/// `roots` and all processes below them in `parents` (child → parent).
fn descendants(roots: &[u32], parents: &HashMap<u32, u32>) -> BTreeSet<u32> {
    let mut found: BTreeSet<u32> = roots.iter().copied().collect();
    // Each pass adds the children of what was found; the tree is at most as deep as it is big.
    for _ in 0..=parents.len() {
        let before = found.len();
        let children: Vec<u32> = parents
            .iter()
            .filter(|(_, parent)| found.contains(parent))
            .map(|(&child, _)| child)
            .collect();
        found.extend(children);
        if found.len() == before {
            break;
        }
    }
    found
}

/// Every process's parent, from `/proc/*/stat`.
fn parent_map() -> Result<HashMap<u32, u32>, BenchError> {
    let entries =
        fs::read_dir("/proc").map_err(|error| BenchError::Memory(format!("/proc: {error}")))?;
    let mut parents = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(parent) = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| parse_stat_parent(&stat))
        {
            parents.insert(pid, parent);
        }
    }
    Ok(parents)
}

/// The parent pid in a `/proc/PID/stat` line: `pid (comm) state ppid ...`; `comm` may hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_parent(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// The `label` figure of `/proc/PID/file` in KiB; 0 for a process that is gone or has no memory
/// of its own.
fn process_kib(pid: u32, file: &str, label: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|text| parse_kib_line(&text, label))
        .unwrap_or(0)
}

/// The `LABEL   1234 kB` line of `/proc/PID/status` or `smaps_rollup`.
fn parse_kib_line(text: &str, label: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(label))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_from_stat_with_odd_name() {
        assert_eq!(parse_stat_parent("42 (a) b (c)) S 7 42 42 0"), Some(7));
        assert_eq!(parse_stat_parent("garbage"), None);
    }

    #[test]
    fn rss_from_status() {
        let status = "Name:\tferryd\nVmPeak:\t 9 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_kib_line(status, "VmRSS:"), Some(5120));
        assert_eq!(parse_kib_line(status, "Pss:"), None);
    }

    #[test]
    fn tcp_pages_from_sockstat() {
        let sockstat = "sockets: used 90\nTCP: inuse 804 orphan 0 tw 400 alloc 804 mem 180205\nUDP: inuse 0 mem 2\n";
        assert_eq!(parse_sockstat_tcp_pages(sockstat), Some(180_205));
        assert_eq!(parse_sockstat_tcp_pages("UDP: inuse 0 mem 2\n"), None);
        assert!(tcp_buffer_kib().is_ok());
    }

    #[test]
    fn descendants_walk_grandchildren() {
        let parents = HashMap::from([(2, 1), (3, 2), (4, 99), (5, 3)]);
        let found = descendants(&[1], &parents);
        assert_eq!(found.into_iter().collect::<Vec<_>>(), vec![1, 2, 3, 5]);
    }

    #[test]
    fn own_process_has_memory() {
        let memory = tree_memory(&[std::process::id()]).unwrap();
        assert!(memory.rss_kib > 0 && memory.pss_kib > 0 && memory.processes >= 1);
    }
}
