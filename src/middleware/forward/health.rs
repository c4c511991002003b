//! Which upstreams are in rotation. Passive: an upstream that fails `max_fails` times in a
//! row (refused, reset, timed out) is out for `fail_timeout`. Active (with a health path):
//! one that fails a probe is out until `health_passes` probes in a row succeed. The state
//! is a few atomics per upstream, in a table every worker of the host maps (health_table.rs),
//! so one worker's finding holds for all, and one probe per interval serves them all. Knows
//! nothing of HTTP; the prober (probe.rs) and the request path report to it, and count the
//! requests and failures per upstream there too (the master's /metrics reads them).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::health_table::{HealthTable, State, UNTIL_PROBED};
use crate::middleware::rate_limit::{monotonic_ns, TableName};

#[derive(Debug, Clone, Copy)]
pub struct HealthOptions {
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// Active checks run: an upstream out comes back only through probes.
    pub probed: bool,
    pub passes: u32,
}

pub struct Health {
    options: HealthOptions,
    states: Arc<HealthTable>,
}

impl Health {
    /// The state of `count` upstreams, in the host's table `shared` when it can be mapped
    /// (else this process's own, with a warning).
    pub fn new(count: usize, options: HealthOptions, shared: Option<&TableName>) -> Health {
        Health {
            options,
            states: Arc::new(HealthTable::open(count, shared)),
        }
    }

    /// The table, for the balancer's shared counters.
    pub fn table(&self) -> Arc<HealthTable> {
        self.states.clone()
    }

    fn state(&self, index: usize) -> &State {
        self.states.state(index)
    }

    pub fn is_up(&self, index: usize) -> bool {
        self.state(index).is_up()
    }

    /// A request is being sent to `index`.
    pub fn count_request(&self, index: usize) {
        self.state(index).requests.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt at `index` got no response head (as `failed`, without the rotation).
    pub fn count_failure(&self, index: usize) {
        self.state(index).failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Names the table for the master's /metrics: the mount prefix (`forward` label) and
    /// the upstreams. `only_if_unlabelled`: a new layer does not undo what a mounted one
    /// wrote (workers start at different times).
    pub fn label(&self, prefix: &str, upstreams: &[&str], only_if_unlabelled: bool) {
        if only_if_unlabelled && self.states.has_labels() {
            return;
        }
        let mut text = prefix.to_owned();
        for name in upstreams {
            text.push('\n');
            text.push_str(name);
        }
        self.states.set_labels(&text);
    }

    /// A request failed at the upstream; true when this failure took it out.
    pub fn failed(&self, index: usize) -> bool {
        let state = self.state(index);
        let fails = state.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if fails < u64::from(self.options.max_fails) || !self.is_up(index) {
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
        let state = self.state(index);
        if state.fails.load(Ordering::Relaxed) != 0 {
            state.fails.store(0, Ordering::Relaxed);
        }
    }

    /// Whether this process probes `index` now: once per `interval` for the whole host (the
    /// first worker to ask claims the turn).
    pub fn claim_probe(&self, index: usize, interval: Duration) -> bool {
        let last = &self.state(index).last_probe;
        let now = monotonic_ns();
        let seen = last.load(Ordering::Relaxed);
        // A little early is fine: the workers' timers drift against each other.
        let due = seen == 0 || now.saturating_sub(seen) >= interval.as_nanos() as u64 * 9 / 10;
        due && last
            .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// A probe's answer; true when it changed whether the upstream is in rotation.
    pub fn probed(&self, index: usize, healthy: bool) -> bool {
        let state = self.state(index);
        let was_up = self.is_up(index);
        if !healthy {
            state.passes.store(0, Ordering::Relaxed);
            state.down_until.store(UNTIL_PROBED, Ordering::Relaxed);
            return was_up;
        }
        let passes = state.passes.fetch_add(1, Ordering::Relaxed) + 1;
        if !was_up && passes >= u64::from(self.options.passes) {
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
        let health = Health::new(1, options(false), None);
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
        let health = Health::new(1, options(true), None);
        assert!(health.probed(0, false));
        assert!(!health.probed(0, true));
        assert!(!health.probed(0, false));
        assert!(!health.probed(0, true));
        assert!(health.probed(0, true));
        assert!(health.is_up(0));
    }

    #[test]
    fn processes_mapping_one_table_share_the_state_and_the_probe_turns() {
        let name = TableName::new(&format!("test-{}-forward-health", std::process::id()));
        let one = Health::new(2, options(false), Some(&name));
        let other = Health::new(2, options(false), Some(&name));
        one.failed(1);
        one.failed(1);
        assert!(!other.is_up(1) && other.is_up(0));
        let interval = Duration::from_secs(60);
        assert!(one.claim_probe(0, interval));
        assert!(!other.claim_probe(0, interval));
        assert!(other.claim_probe(1, interval));
        let _ = std::fs::remove_file(name.path());
    }
}
