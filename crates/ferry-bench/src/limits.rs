//! Bounds on every loop: each one stops after a number of iterations or at a deadline,
//! whichever comes first, so a workload always ends by itself.

use std::time::{Duration, Instant};

/// Timeouts for single network operations and bounds for repeated ones.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest wait for one connect, read, write or reply.
    pub io_timeout: Duration,
    /// Most iterations any one client loop runs.
    pub max_iterations: u64,
    /// Longest a whole transfer (one big RETR or STOR) may take.
    pub transfer_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            io_timeout: Duration::from_secs(30),
            max_iterations: 10_000_000,
            transfer_timeout: Duration::from_secs(600),
        }
    }
}

/// A loop budget: a count and a deadline.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    remaining: u64,
    deadline: Instant,
}

impl Budget {
    /// At most `count` iterations, none starting after `duration` from now.
    pub fn new(count: u64, duration: Duration) -> Self {
        Budget {
            remaining: count,
            deadline: Instant::now() + duration,
        }
    }

    /// Takes one iteration from the budget; false once it is spent or the deadline passed.
    pub fn take(&mut self) -> bool {
        if self.remaining == 0 || Instant::now() >= self.deadline {
            return false;
        }
        self.remaining -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_the_count() {
        let mut budget = Budget::new(2, Duration::from_secs(60));
        assert!(budget.take());
        assert!(budget.take());
        assert!(!budget.take());
    }

    #[test]
    fn stops_at_the_deadline() {
        let mut budget = Budget::new(100, Duration::ZERO);
        assert!(!budget.take());
    }
}
