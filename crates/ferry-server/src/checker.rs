//! Password checks on a few long-lived threads of their own.
//!
//! An argon2 check is CPU-heavy (about 15 ms of a core) and takes 19 MiB of memory for its
//! time. Run on tokio's blocking pool, each check could land on another of hundreds of threads,
//! and the allocator keeps each thread's freed 19 MiB for that thread's next use: a stream of
//! password logins grew a server by some 800 MiB (the soak showed it). Here at most half the
//! cores check at once, always on the same threads, so the memory held is bounded by their
//! number, and a flood of attempts leaves the other cores to everyone else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A job for a checker thread.
type Job = Box<dyn FnOnce() + Send>;

/// The checker threads, fed through one queue (each session has at most one check waiting,
/// so the queue is bounded by the session limit). They start at the first check, not when the
/// checker is made: `ferryd` makes it before it drops root and confines itself, which changes
/// only the threads running then and the ones they start later.
#[derive(Debug)]
pub struct Checker {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Until the threads start: how many, and the queue they will share.
    waiting: Mutex<Option<(usize, Queue)>>,
    started: AtomicBool,
}

/// The jobs, taken by the checker threads in turn.
type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

impl Checker {
    /// A checker of `threads` threads (at least one), started at the first check.
    pub fn new(threads: usize) -> std::io::Result<Checker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        Ok(Checker {
            jobs: Mutex::new(jobs),
            waiting: Mutex::new(Some((threads.max(1), Arc::new(Mutex::new(queue))))),
            started: AtomicBool::new(false),
        })
    }

    /// Starts the threads, once; when none could start, the next check tries again (jobs wait
    /// in the queue meanwhile).
    fn start(&self) -> std::io::Result<()> {
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let Some((threads, queue)) = waiting.as_ref() else {
            return Ok(());
        };
        let mut started = 0;
        let mut failed = None;
        for index in 0..*threads {
            let queue = Arc::clone(queue);
            let spawned = std::thread::Builder::new()
                .name(format!("ferryd-password-{index}"))
                .spawn(move || loop {
                    // The lock is held only to take a job, not while it runs.
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        if started > 0 {
            *waiting = None;
            self.started.store(true, Ordering::Release);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Runs `check` on a checker thread and waits for its result (`None` if the threads are
    /// gone). The check runs to its end even if the caller stops waiting.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        if let Err(error) = self.start() {
            tracing::error!(%error, "cannot start (all) the password-check threads");
        }
        let (result, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = result.send(check());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_run_on_the_checker_threads_only() {
        let checker = Checker::new(2).unwrap();
        let mut names = std::collections::HashSet::new();
        for _ in 0..20 {
            let name = checker
                .run(|| std::thread::current().name().map(str::to_string))
                .await
                .flatten()
                .unwrap();
            assert!(name.starts_with("ferryd-password-"), "{name}");
            names.insert(name);
        }
        assert!(names.len() <= 2);
    }
}
