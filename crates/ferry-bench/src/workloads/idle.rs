//! Idle sessions: how much resident memory a server's process tree gains per logged-in session,
//! and how long the sessions took to establish.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Memory, Report};
use crate::control::{Control, Target};
use crate::error::BenchError;
use crate::limits::Limits;
use crate::memory::{tree_memory, TreeMemory};

/// Logins in flight at once while opening the idle sessions: few enough that the server's
/// accept backlog never overflows (an overflow drops SYNs, and the retried connect then waits
/// a second or more), enough to keep a fast server busy.
const CONNECTING_AT_ONCE: usize = 32;
/// Pause after the last login, so the server settles before its memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// Sessions opened from one loopback source address: each has only the ephemeral port range
/// (32768-60999 by default, about 28,000 ports) to connect from.
const SESSIONS_PER_SOURCE: usize = 20_000;
/// Descriptors this process needs besides one per session (runtime, standard streams).
const SPARE_FILES: u64 = 1024;

/// Opens `clients` logged-in sessions, then reads the RSS of `server_pids` and their children.
/// Against an IPv4 loopback server, more than [`SESSIONS_PER_SOURCE`] sessions are spread over
/// the source addresses 127.0.0.1, 127.0.0.2, ...
pub async fn idle(
    target: &Target,
    limits: &Limits,
    clients: usize,
    server_pids: &[u32],
) -> Result<Report, BenchError> {
    raise_file_limit(clients as u64 + SPARE_FILES)?;
    let before = tree_memory(server_pids)?;
    let started = Instant::now();
    let sessions = open_sessions(target, limits, clients).await?;
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let after = tree_memory(server_pids)?;
    drop(sessions);
    let mut memory = memory_report(clients, before, after);
    memory.connect_seconds = connect_seconds;
    Ok(Report::Idle(memory))
}

fn memory_report(clients: usize, before: TreeMemory, after: TreeMemory) -> Memory {
    let per_session =
        |before: u64, after: u64| (after as f64 - before as f64) / clients.max(1) as f64;
    Memory {
        clients,
        connect_seconds: 0.0,
        rss_before_kib: before.rss_kib,
        rss_after_kib: after.rss_kib,
        processes_before: before.processes,
        processes_after: after.processes,
        kib_per_session: per_session(before.rss_kib, after.rss_kib),
        pss_kib_per_session: per_session(before.pss_kib, after.pss_kib),
    }
}

/// Logs `clients` sessions in, [`CONNECTING_AT_ONCE`] at a time; all must succeed.
async fn open_sessions(
    target: &Target,
    limits: &Limits,
    clients: usize,
) -> Result<Vec<Control>, BenchError> {
    let permits = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for index in 0..clients {
        let source = source_address(target, index, clients)?;
        let (target, limits, permits) = (target.clone(), *limits, permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            Control::login_from(&target, &limits, source).await
        });
    }
    let mut sessions = Vec::with_capacity(clients);
    while let Some(joined) = tasks.join_next().await {
        if let Ok(session) = joined {
            sessions.push(session?);
        }
    }
    Ok(sessions)
}

/// The local address session `index` of `clients` connects from: the system's choice for a
/// few sessions or a server not on IPv4 loopback, else 127.0.0.(1 + index / 20,000).
fn source_address(
    target: &Target,
    index: usize,
    clients: usize,
) -> Result<Option<IpAddr>, BenchError> {
    let loopback = matches!(target.addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
    if !loopback || clients <= SESSIONS_PER_SOURCE {
        return Ok(None);
    }
    let last_octet = u8::try_from(1 + index / SESSIONS_PER_SOURCE)
        .ok()
        .filter(|&octet| octet < 255)
        .ok_or(BenchError::TooManyClients(clients))?;
    Ok(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet))))
}

/// Raises this process's open-file limit (each session is a socket) to at least `wanted`: the
/// soft limit up to the hard one, and both beyond it when the hard limit is lower, which only
/// root may do (up to `fs.nr_open`). With `wanted` 0, just the soft limit up to the hard one.
pub fn raise_file_limit(wanted: u64) -> Result<(), BenchError> {
    let hard = getrlimit(Resource::Nofile).maximum;
    let raised = match hard {
        Some(hard) if hard < wanted => Some(wanted),
        other => other,
    };
    let limit = Rlimit {
        current: raised,
        maximum: raised,
    };
    setrlimit(Resource::Nofile, limit).map_err(|errno| BenchError::FileLimit {
        wanted,
        hard: hard.unwrap_or(u64::MAX),
        errno: errno.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(ip: [u8; 4]) -> Target {
        Target {
            addr: (Ipv4Addr::from(ip), 21).into(),
            user: "anonymous".into(),
            password: "x".into(),
            tls: None,
        }
    }

    #[test]
    fn sources_spread_only_when_needed() {
        let local = target([127, 0, 0, 1]);
        assert_eq!(source_address(&local, 5, 100).unwrap(), None);
        let second = source_address(&local, 20_000, 50_000).unwrap();
        assert_eq!(second, Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(
            source_address(&target([10, 0, 0, 1]), 30_000, 50_000).unwrap(),
            None
        );
        assert!(source_address(&local, 6_000_000, 6_000_001).is_err());
    }

    #[test]
    fn file_limit_reaches_the_hard_limit() {
        raise_file_limit(0).unwrap();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
    }
}
