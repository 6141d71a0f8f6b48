//! Many clients at once repeating a short operation: logging in, or fetching a small file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::{Rate, Report};
use crate::control::{Control, Target};
use crate::data::{close, drain};
use crate::error::BenchError;
use crate::limits::{Budget, Limits};
use crate::stats::percentile_ms;

/// How many clients, for how long.
#[derive(Debug, Clone, Copy)]
pub struct Concurrency {
    pub clients: usize,
    pub duration: Duration,
}

/// What one client loop measured.
#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    bytes: u64,
    first_error: Option<String>,
}

impl Tally {
    fn record_error(&mut self, error: BenchError) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| error.to_string());
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.bytes += other.bytes;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Pause after a failed iteration, so a refusing server is not hammered in a tight loop.
const ERROR_PAUSE: Duration = Duration::from_millis(20);

/// Each retr-small client's read buffer, allocated once.
const SMALL_BUFFER: usize = 64 * 1024;

/// `clients` clients connect, log in and QUIT, over and over: each as soon as its last login
/// ended (closed loop), or, with `offered` logins per second in all, each on a fixed schedule
/// (client i of N starts its k-th login at (k·N + i) / offered seconds). A login that starts
/// behind schedule, because the client's last one took longer than its interval, counts its
/// latency from when it was due: the time spent waiting for a slow server is part of it.
pub async fn logins(
    target: &Target,
    limits: &Limits,
    load: Concurrency,
    offered: Option<f64>,
) -> Result<Report, BenchError> {
    let tally = match offered {
        None => {
            run_clients(target, limits, load, |target, limits, budget, _| {
                login_loop(target, limits, budget)
            })
            .await
        }
        Some(offered) => {
            let start = Instant::now() + PACING_LEAD;
            let clients = load.clients as f64;
            run_clients(
                target,
                limits,
                load,
                move |target, limits, budget, client| {
                    let schedule = Schedule {
                        first: start + Duration::from_secs_f64(client as f64 / offered),
                        interval: Duration::from_secs_f64(clients / offered),
                    };
                    paced_login_loop(target, limits, budget, schedule)
                },
            )
            .await
        }
    };
    let mut rate = rate(load.clients, tally);
    rate.offered_per_second = offered;
    Ok(Report::Logins(rate))
}

/// Time given to spawning the clients before the first paced login is due.
const PACING_LEAD: Duration = Duration::from_millis(50);

/// When one paced client's logins are due.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    first: Instant,
    interval: Duration,
}

/// `clients` logged-in clients fetch `path` over and over, each time over a new PASV connection.
pub async fn retr_small(
    target: &Target,
    limits: &Limits,
    load: Concurrency,
    path: &str,
) -> Result<Report, BenchError> {
    let path: Arc<str> = Arc::from(path);
    let tally = run_clients(target, limits, load, move |target, limits, budget, _| {
        retr_loop(target, limits, budget, path.clone())
    })
    .await;
    Ok(Report::RetrSmall(rate(load.clients, tally)))
}

/// Spawns one task per client running `client_loop` (given the client's index), and merges
/// what they measured.
async fn run_clients<F, Fut>(
    target: &Target,
    limits: &Limits,
    load: Concurrency,
    client_loop: F,
) -> (Duration, Tally)
where
    F: Fn(Target, Limits, Budget, usize) -> Fut,
    Fut: std::future::Future<Output = Tally> + Send + 'static,
{
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for client in 0..load.clients {
        let budget = Budget::new(limits.max_iterations, load.duration);
        tasks.spawn(client_loop(target.clone(), *limits, budget, client));
    }
    let mut total = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => total.merge(tally),
            Err(error) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("client task failed: {error}"));
            }
        }
    }
    (started.elapsed(), total)
}

async fn login_loop(target: Target, limits: Limits, mut budget: Budget) -> Tally {
    let mut tally = Tally::default();
    while budget.take() {
        let started = Instant::now();
        match login_once(&target, &limits).await {
            Ok(()) => tally.latencies.push(started.elapsed()),
            Err(error) => {
                tally.record_error(error);
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
    tally
}

async fn paced_login_loop(
    target: Target,
    limits: Limits,
    mut budget: Budget,
    schedule: Schedule,
) -> Tally {
    let mut tally = Tally::default();
    let mut due = schedule.first;
    while budget.take() {
        // On schedule, the login starts when the timer fires (tokio's timer is late by up to a
        // millisecond, which is the client's doing). Behind schedule, because the last login
        // took longer than the interval, the latency counts from when this one was due.
        let started = if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
            Instant::now()
        } else {
            due
        };
        match login_once(&target, &limits).await {
            Ok(()) => tally.latencies.push(started.elapsed()),
            Err(error) => tally.record_error(error),
        }
        due += schedule.interval;
    }
    tally
}

/// One login: connect, (AUTH TLS and a full TLS handshake,) USER, PASS, QUIT. No PBSZ/PROT:
/// the session moves no data.
async fn login_once(target: &Target, limits: &Limits) -> Result<(), BenchError> {
    Control::sign_in_only(target, limits).await?.quit().await
}

async fn retr_loop(target: Target, limits: Limits, mut budget: Budget, path: Arc<str>) -> Tally {
    let mut tally = Tally::default();
    let mut control = None;
    let mut buffer = vec![0u8; SMALL_BUFFER];
    while budget.take() {
        if control.is_none() {
            match binary_login(&target, &limits).await {
                Ok(connected) => control = Some(connected),
                Err(error) => {
                    tally.record_error(error);
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(connected) = control.as_mut() else {
            continue;
        };
        let started = Instant::now();
        match retr_once(connected, &mut buffer, &limits, &path).await {
            Ok(bytes) => {
                tally.latencies.push(started.elapsed());
                tally.bytes += bytes;
            }
            Err(error) => {
                tally.record_error(error);
                control = None;
            }
        }
    }
    if let Some(connected) = control {
        let _ = connected.quit().await;
    }
    tally
}

async fn binary_login(target: &Target, limits: &Limits) -> Result<Control, BenchError> {
    let mut control = Control::login(target, limits).await?;
    control.expect("TYPE I", 2).await?;
    Ok(control)
}

async fn retr_once(
    control: &mut Control,
    buffer: &mut [u8],
    limits: &Limits,
    path: &str,
) -> Result<u64, BenchError> {
    let passive = control.open_passive().await?;
    let mut data = control
        .start_transfer(&format!("RETR {path}"), passive)
        .await?;
    let bytes = drain(&mut data, buffer, control.addr(), limits).await?;
    close(data, limits).await;
    control.finish_transfer("RETR").await?;
    Ok(bytes)
}

fn rate(clients: usize, (elapsed, mut tally): (Duration, Tally)) -> Rate {
    let completed = tally.latencies.len() as u64;
    let seconds = elapsed.as_secs_f64().max(1e-9);
    Rate {
        clients,
        seconds,
        completed,
        errors: tally.errors,
        per_second: completed as f64 / seconds,
        p50_ms: percentile_ms(&mut tally.latencies, 50.0),
        p99_ms: percentile_ms(&mut tally.latencies, 99.0),
        bytes: tally.bytes,
        first_error: tally.first_error,
        offered_per_second: None,
    }
}
