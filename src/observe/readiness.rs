//! What a worker says to health and readiness probes: starting (the app is not imported
//! yet), ready, or draining (a graceful stop has begun). Written by the worker's lifecycle
//! (python/serving.rs once the app is loaded, python/launcher.rs on SIGTERM), read by the
//! native probe answers (middleware/health.rs) on every probe: one atomic, no lock.

use std::sync::atomic::{AtomicU8, Ordering};

/// The worker's phase as probes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The app is not imported in this worker yet.
    Starting,
    Ready,
    /// A graceful stop has begun: the worker still serves, but must not be sent new work.
    Draining,
}

#[derive(Debug)]
pub struct Readiness(AtomicU8);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(AtomicU8::new(Phase::Starting as u8))
    }
}

impl Readiness {
    pub fn phase(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            _ => Phase::Draining,
        }
    }

    /// The app is imported; a drain already begun stays a drain.
    pub fn mark_ready(&self) {
        let _ = self.0.compare_exchange(
            Phase::Starting as u8,
            Phase::Ready as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    pub fn begin_drain(&self) {
        self.0.store(Phase::Draining as u8, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_then_ready_then_draining_for_good() {
        let readiness = Readiness::default();
        assert_eq!(readiness.phase(), Phase::Starting);
        readiness.mark_ready();
        assert_eq!(readiness.phase(), Phase::Ready);
        readiness.begin_drain();
        readiness.mark_ready();
        assert_eq!(readiness.phase(), Phase::Draining);
    }
}
