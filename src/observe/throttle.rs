//! A per-second budget for log lines a client can cause (refused requests, bad preambles), so
//! a flood of bad traffic cannot flood the log or slow the worker down writing it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct LogThrottle {
    per_second: u64,
    /// The current second, and the lines counted in it (high and low 32 bits).
    window: AtomicU64,
    /// Lines withheld since the last line written.
    withheld: AtomicU64,
}

impl LogThrottle {
    pub const fn new(per_second: u32) -> LogThrottle {
        LogThrottle {
            per_second: per_second as u64,
            window: AtomicU64::new(0),
            withheld: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this line may be written, `n` being how many were withheld before it;
    /// `None` when the second's budget is spent.
    pub fn admit(&self) -> Option<u64> {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            & 0xffff_ffff;
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (seen_second, count) = (current >> 32, current & 0xffff_ffff);
            let next = if seen_second == second {
                if count >= self.per_second {
                    self.withheld.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                current + 1
            } else {
                second << 32 | 1
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.withheld.swap(0, Ordering::Relaxed)),
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_budget_are_withheld_and_counted() {
        let throttle = LogThrottle::new(3);
        let admitted: Vec<_> = (0..5).map(|_| throttle.admit()).collect();
        // The test may straddle a second boundary; then the budget restarts.
        if admitted.iter().filter(|a| a.is_some()).count() == 3 {
            assert_eq!(&admitted[..3], &[Some(0), Some(0), Some(0)]);
            assert_eq!(&admitted[3..], &[None, None]);
        }
    }
}
