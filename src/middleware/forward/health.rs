//! Which upstreams are in rotation. Passive: an upstream that fails `max_fails` times in a
//! row (refused, reset, timed out) is out for `fail_timeout`. Active (with a health path):
//! one that fails a probe is out until `health_passes` probes in a row succeed. Knows
//! nothing of HTTP; the prober (probe.rs) and the request path report to it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::middleware::rate_limit::monotonic_ns;

/// "Out until probes say otherwise."
const UNTIL_PROBED: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
pub struct HealthOptions {
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// Active checks run: an upstream out comes back only through probes.
    pub probed: bool,
    pub passes: u32,
}

#[derive(Default)]
struct State {
    /// Failures in a row.
    fails: AtomicU32,
    /// Successful probes in a row.
    passes: AtomicU32,
    /// CLOCK_MONOTONIC ns until which it is out; 0: in.
    down_until: AtomicU64,
}

pub struct Health {
    options: HealthOptions,
    states: Vec<State>,
}

impl Health {
    pub fn new(count: usize, options: HealthOptions) -> Health {
        Health {
            options,
            states: (0..count).map(|_| State::default()).collect(),
        }
    }

    pub fn is_up(&self, index: usize) -> bool {
        let until = self.states[index].down_until.load(Ordering::Relaxed);
        until == 0 || (until != UNTIL_PROBED && monotonic_ns() >= until)
    }

    /// A request failed at the upstream; true when this failure took it out.
    pub fn failed(&self, index: usize) -> bool {
        let state = &self.states[index];
        let fails = state.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if fails < self.options.max_fails || !self.is_up(index) {
            return false;
        }
        let until = match self.options.probed {
            true => UNTIL_PROBED,
            false => monotonic_ns() + self.options.fail_timeout.as_nanos() as u64,
        };
        state.passes.store(0, Ordering::Relaxed);
        state.down_until.store(until, Ordering::Relaxed);
        true
    }

    pub fn succeeded(&self, index: usize) {
        let state = &self.states[index];
        if state.fails.load(Ordering::Relaxed) != 0 {
            state.fails.store(0, Ordering::Relaxed);
        }
    }

    /// A probe's answer; true when it changed whether the upstream is in rotation.
    pub fn probed(&self, index: usize, healthy: bool) -> bool {
        let state = &self.states[index];
        let was_up = self.is_up(index);
        if !healthy {
            state.passes.store(0, Ordering::Relaxed);
            state.down_until.store(UNTIL_PROBED, Ordering::Relaxed);
            return was_up;
        }
        let passes = state.passes.fetch_add(1, Ordering::Relaxed) + 1;
        if !was_up && passes >= self.options.passes {
            state.fails.store(0, Ordering::Relaxed);
            state.down_until.store(0, Ordering::Relaxed);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(probed: bool) -> HealthOptions {
        HealthOptions {
            max_fails: 2,
            fail_timeout: Duration::from_millis(50),
            probed,
            passes: 2,
        }
    }

    #[test]
    fn out_after_max_fails_in_a_row_back_after_the_timeout() {
        let health = Health::new(1, options(false));
        assert!(!health.failed(0));
        health.succeeded(0);
        assert!(!health.failed(0));
        assert!(health.failed(0));
        assert!(!health.is_up(0));
        std::thread::sleep(Duration::from_millis(60));
        assert!(health.is_up(0));
    }

    #[test]
    fn probed_upstream_needs_passes_in_a_row_to_return() {
        let health = Health::new(1, options(true));
        assert!(health.probed(0, false));
        assert!(!health.probed(0, true));
        assert!(!health.probed(0, false));
        assert!(!health.probed(0, true));
        assert!(health.probed(0, true));
        assert!(health.is_up(0));
    }
}
