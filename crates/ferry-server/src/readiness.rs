//! Whether the server takes new sessions: not before its listeners are bound, and not once a
//! shutdown (drain) has begun. `/ready` on the admin listener answers from it; it is the one
//! place this state lives, so reload and drain can share it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// Shared between the listener, `main` and the admin listener; clones see the same state.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicU8>);

/// What [`Readiness`] says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Ready,
    Draining,
}

impl Readiness {
    /// The listeners are bound and accepting. Once draining, the server stays so.
    pub fn set_ready(&self) {
        let _ = self
            .0
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// A shutdown has begun: no new sessions.
    pub fn set_draining(&self) {
        self.0.store(DRAINING, Ordering::Release);
    }

    /// The same as [`Readiness::set_draining`], in the words of the reload-and-drain code.
    pub fn start_draining(&self) {
        self.set_draining();
    }

    /// Serving, and not stopping.
    pub fn is_ready(&self) -> bool {
        self.state() == State::Ready
    }

    pub fn is_draining(&self) -> bool {
        self.state() == State::Draining
    }

    pub fn state(&self) -> State {
        match self.0.load(Ordering::Acquire) {
            STARTING => State::Starting,
            READY => State::Ready,
            _ => State::Draining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_then_ready_then_draining_for_good() {
        let readiness = Readiness::default();
        assert_eq!(readiness.state(), State::Starting);
        readiness.set_ready();
        assert_eq!(readiness.clone().state(), State::Ready);
        readiness.set_draining();
        readiness.set_ready();
        assert_eq!(readiness.state(), State::Draining);
    }
}
