//! Idle sessions: how much resident memory a server's process tree gains per logged-in session.

use std::sync::Arc;
use std::time::Duration;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Memory, Report};
use crate::control::{Control, Target};
use crate::error::BenchError;
use crate::limits::Limits;
use crate::memory::{tree_memory, TreeMemory};

/// Logins in flight at once while opening the idle sessions.
const CONNECTING_AT_ONCE: usize = 32;
/// Pause after the last login, so the server settles before its memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// Opens `clients` logged-in sessions, then reads the RSS of `server_pids` and their children.
pub async fn idle(
    target: &Target,
    limits: &Limits,
    clients: usize,
    server_pids: &[u32],
) -> Result<Report, BenchError> {
    raise_file_limit()?;
    let before = tree_memory(server_pids)?;
    let sessions = open_sessions(target, limits, clients).await?;
    tokio::time::sleep(SETTLE).await;
    let after = tree_memory(server_pids)?;
    drop(sessions);
    Ok(Report::Idle(memory_report(clients, before, after)))
}

fn memory_report(clients: usize, before: TreeMemory, after: TreeMemory) -> Memory {
    let per_session =
        |before: u64, after: u64| (after as f64 - before as f64) / clients.max(1) as f64;
    Memory {
        clients,
        rss_before_kib: before.rss_kib,
        rss_after_kib: after.rss_kib,
        processes_before: before.processes,
        processes_after: after.processes,
        kib_per_session: per_session(before.rss_kib, after.rss_kib),
        pss_kib_per_session: per_session(before.pss_kib, after.pss_kib),
    }
}

/// Logs `clients` sessions in, a few at a time; all must succeed.
async fn open_sessions(
    target: &Target,
    limits: &Limits,
    clients: usize,
) -> Result<Vec<Control>, BenchError> {
    let permits = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let (target, limits, permits) = (target.clone(), *limits, permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            Control::login(&target, &limits).await
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

/// Raises this process's soft open-file limit to its hard limit (each session is a socket).
pub fn raise_file_limit() -> Result<(), BenchError> {
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).map_err(|errno| BenchError::FileLimit(errno.into()))
}
