//! What a server process holds, read from `/proc` (Linux only): resident memory, open file
//! descriptors, threads, and its sockets: established connections on its control port (its
//! sessions) and listening sockets on other ports (passive data ports waiting).

use std::collections::HashSet;
use std::fs;

use serde::Serialize;

use crate::error::BenchError;

/// One reading of a server process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Seconds since the soak started (negative: before it).
    pub second: i64,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
    /// Established TCP connections of the process on the control port.
    pub sessions: u64,
    /// Listening TCP sockets of the process other than the control port (passive ports).
    pub passive_listeners: u64,
}

/// Reads `pid`'s resources; `control_port` tells its sessions from its data connections.
pub fn probe(pid: u32, control_port: u16, second: i64) -> Result<Probe, BenchError> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|error| BenchError::Memory(format!("/proc/{pid}/status: {error}")))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let sockets = socket_inodes(pid)?;
    let (sessions, passive_listeners) = count_sockets(&sockets, control_port);
    Ok(Probe {
        second,
        rss_kib: field("VmRSS:"),
        fds: fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |fds| fds.count() as u64),
        threads: field("Threads:"),
        sessions,
        passive_listeners,
    })
}

/// The inodes of `pid`'s sockets (`/proc/PID/fd/N -> socket:[INODE]`).
fn socket_inodes(pid: u32) -> Result<HashSet<u64>, BenchError> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|error| BenchError::Memory(format!("/proc/{pid}/fd: {error}")))?;
    Ok(fds
        .filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect())
}

/// (established on `control_port`, listening on other ports) among `sockets`, from the TCP
/// tables of the process's network namespace.
fn count_sockets(sockets: &HashSet<u64>, control_port: u16) -> (u64, u64) {
    let mut counts = (0, 0);
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for entry in text.lines().skip(1).filter_map(parse_tcp_line) {
            if !sockets.contains(&entry.inode) {
                continue;
            }
            match entry.state {
                ESTABLISHED if entry.local_port == control_port => counts.0 += 1,
                LISTEN if entry.local_port != control_port => counts.1 += 1,
                _ => {}
            }
        }
    }
    counts
}

const ESTABLISHED: u8 = 0x01;
const LISTEN: u8 = 0x0A;

/// One socket of `/proc/net/tcp`.
#[derive(Debug, PartialEq, Eq)]
struct TcpEntry {
    local_port: u16,
    state: u8,
    inode: u64,
}

/// `  0: 0100007F:0885 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 ...`
fn parse_tcp_line(line: &str) -> Option<TcpEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let local_port = fields.get(1)?.rsplit_once(':')?.1;
    Some(TcpEntry {
        local_port: u16::from_str_radix(local_port, 16).ok()?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tcp_table_line() {
        let line = "   3: 0100007F:0885 0100007F:D2A6 01 00000000:00000000 00:00000000 00000000     0        0 912345 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(
            parse_tcp_line(line),
            Some(TcpEntry {
                local_port: 0x0885,
                state: ESTABLISHED,
                inode: 912345
            })
        );
        assert_eq!(parse_tcp_line("  sl  local_address rem_address   st"), None);
    }

    #[test]
    fn probes_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let probe = probe(std::process::id(), port, 0).unwrap();
        assert!(probe.rss_kib > 0 && probe.threads >= 1 && probe.fds >= 4);
        // The accepted end is on the "control" port; the client's end is not.
        assert_eq!(probe.sessions, 1);
        assert!(probe.passive_listeners >= 1);
        drop((client, other));
    }
}
