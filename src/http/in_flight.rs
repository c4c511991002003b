//! Requests of one server between the arrival of their head and the end of their response,
//! counted so that a saturated worker can leave new connections to the others.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    decreased: Notify,
}

impl InFlight {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.clone())
    }

    /// Resolves once fewer than `limit` requests are in flight.
    pub async fn wait_below(&self, limit: usize) {
        loop {
            // Created before the check, so a decrease in between is not missed.
            let decreased = self.decreased.notified();
            if self.count() < limit {
                return;
            }
            decreased.await;
        }
    }
}

/// Counts one request as in flight until dropped.
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.decreased.notify_waiters();
    }
}
