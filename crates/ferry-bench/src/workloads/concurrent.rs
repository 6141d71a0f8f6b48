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

/// `clients` clients connect, log in and QUIT, over and over.
pub async fn logins(
    target: &Target,
    limits: &Limits,
    load: Concurrency,
) -> Result<Report, BenchError> {
    let tally = run_clients(target, limits, load, login_loop).await;
    Ok(Report::Logins(rate(load.clients, tally)))
}

/// `clients` logged-in clients fetch `path` over and over, each time over a new PASV connection.
pub async fn retr_small(
    target: &Target,
    limits: &Limits,
    load: Concurrency,
    path: &str,
) -> Result<Report, BenchError> {
    let path: Arc<str> = Arc::from(path);
    let tally = run_clients(target, limits, load, move |target, limits, budget| {
        retr_loop(target, limits, budget, path.clone())
    })
    .await;
    Ok(Report::RetrSmall(rate(load.clients, tally)))
}

/// Spawns one task per client running `client_loop`, and merges what they measured.
async fn run_clients<F, Fut>(
    target: &Target,
    limits: &Limits,
    load: Concurrency,
    client_loop: F,
) -> (Duration, Tally)
where
    F: Fn(Target, Limits, Budget) -> Fut,
    Fut: std::future::Future<Output = Tally> + Send + 'static,
{
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..load.clients {
        let budget = Budget::new(limits.max_iterations, load.duration);
        tasks.spawn(client_loop(target.clone(), *limits, budget));
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

async fn login_once(target: &Target, limits: &Limits) -> Result<(), BenchError> {
    Control::login(target, limits).await?.quit().await
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
    }
}
