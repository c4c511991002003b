//! `--timeout`: whether a worker is stuck, judged by the master from its heartbeat slot. A
//! worker is stuck when its oldest request still running has run for the timeout, or when
//! its I/O loop has not reported for as long. The I/O loop alone proves nothing about the
//! app (it never takes the GIL), hence the oldest request. Pure; master.rs acts on it.

use std::time::Duration;

use super::heartbeat::{nanos, SlotReading};

/// What makes a worker stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stuck {
    /// Its oldest running request has run this long.
    Request { running: Duration },
    /// Its I/O loop has not reported for this long (frozen, or blocked by a bug).
    Silent { silent: Duration },
}

/// Whether the worker whose slot reads `reading` is stuck at `now_ns`. Ages count from
/// `watched_since_ns` at the earliest: since the master saw the worker accept (a worker
/// that never reported since is silent from then), and since the master itself last ran
/// without a pause (when its process group was stopped, no worker could report either).
pub fn stuck(
    reading: &SlotReading,
    now_ns: u64,
    watched_since_ns: u64,
    timeout: Duration,
) -> Option<Stuck> {
    let age = |stamp_ns: u64| nanos(now_ns.saturating_sub(stamp_ns.max(watched_since_ns)));
    if let Some(since) = reading.oldest_since_ns {
        if age(since) >= timeout {
            return Some(Stuck::Request {
                running: nanos(now_ns.saturating_sub(since)),
            });
        }
    }
    let beat = reading.io_beat_ns.unwrap_or(0);
    (age(beat) >= timeout).then(|| Stuck::Silent { silent: age(beat) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn reading(io_beat_s: Option<u64>, oldest_s: Option<u64>) -> SlotReading {
        SlotReading {
            accepting: true,
            retirement: None,
            io_beat_ns: io_beat_s.map(|s| s * SECOND),
            requests: 1,
            oldest_since_ns: oldest_s.map(|s| s * SECOND),
        }
    }

    #[test]
    fn a_request_running_for_the_timeout_makes_the_worker_stuck() {
        let timeout = Duration::from_secs(2);
        let busy = reading(Some(100), Some(98));
        assert_eq!(
            stuck(&busy, 100 * SECOND, 0, timeout),
            Some(Stuck::Request {
                running: Duration::from_secs(2)
            })
        );
        assert_eq!(
            stuck(&busy, 100 * SECOND - 1, 0, timeout),
            None,
            "just below"
        );
    }

    #[test]
    fn an_idle_worker_is_stuck_only_when_its_io_loop_stops_reporting() {
        let timeout = Duration::from_secs(2);
        assert_eq!(
            stuck(&reading(Some(99), None), 100 * SECOND, 0, timeout),
            None
        );
        assert_eq!(
            stuck(&reading(Some(97), None), 100 * SECOND, 0, timeout),
            Some(Stuck::Silent {
                silent: Duration::from_secs(3)
            })
        );
        let accepted_at = 99 * SECOND;
        let never_reported = reading(None, None);
        assert_eq!(
            stuck(&never_reported, 100 * SECOND, accepted_at, timeout),
            None
        );
        assert_eq!(
            stuck(&never_reported, 101 * SECOND, accepted_at, timeout),
            Some(Stuck::Silent {
                silent: Duration::from_secs(2)
            }),
            "silent since it accepted"
        );
    }

    #[test]
    fn time_the_master_did_not_watch_is_not_held_against_a_worker() {
        let timeout = Duration::from_secs(2);
        let stale = reading(Some(50), Some(50));
        assert_eq!(stuck(&stale, 100 * SECOND, 99 * SECOND, timeout), None);
        assert!(stuck(&stale, 101 * SECOND, 99 * SECOND, timeout).is_some());
    }
}
