//! Load shedding (`--max-queue`, `--max-queue-time`): which requests a worker answers 503
//! at once rather than queue for its Python threads. Decided under the pool's queue lock
//! (pool/mod.rs), on the I/O thread as a request is queued and on a Python thread as it takes
//! one, without calling into Python.
//!
//! The wait a new request faces is estimated from the queue ahead of it, how long each busy
//! thread has been at its request, and a smoothed request duration d: a busy thread frees up
//! after d minus what it has run, an idle one at once, and the k-th request waiting (0-based)
//! starts when the (k mod T)-th thread to free up does, plus (k div T) × d. A request that
//! waited longer than the limit all the same (the estimate was low) is refused when a thread
//! takes it, before the app runs.

use std::time::Duration;

use super::Shedding;
use crate::observe::LogThrottle;

/// Weight of the newest duration in the smoothed one: about the last 8 requests count, so a
/// change of load shows within a few requests without one outlier swinging it.
const DURATION_SMOOTHING: f64 = 0.125;

/// Lines a second about shed requests: under overload every request may be one.
static SHED_LOG: LogThrottle = LogThrottle::new(1);

/// The pool's shedding state, kept under its queue lock.
#[derive(Debug, Default)]
pub struct Shedder {
    limits: Shedding,
    /// Smoothed time a request keeps a thread, in seconds; 0 until one has finished.
    duration: f64,
    /// Requests shed so far, for the metrics.
    shed: u64,
}

/// What the queue looks like to a request about to join it.
pub struct QueueView {
    /// Requests already waiting.
    pub waiting: usize,
    /// `--threads`.
    pub threads: usize,
    /// How long each busy thread has run its request (only when `wants_durations`).
    pub busy_for: Vec<Duration>,
}

impl Shedder {
    pub fn new(limits: Shedding) -> Shedder {
        Shedder {
            limits,
            duration: 0.0,
            shed: 0,
        }
    }

    pub fn count_shed(&mut self) {
        self.shed += 1;
    }

    pub fn shed(&self) -> u64 {
        self.shed
    }

    /// Whether request durations are wanted (`record`): only when a wait is estimated.
    pub fn wants_durations(&self) -> bool {
        self.limits.max_queue_time.is_some()
    }

    /// A request has kept its thread for `duration`.
    pub fn record(&mut self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        self.duration = match self.duration {
            0.0 => seconds,
            smoothed => smoothed + DURATION_SMOOTHING * (seconds - smoothed),
        };
    }

    /// The wait a request joining `queue` is expected to have for a thread.
    pub fn expected_wait(&self, queue: &QueueView) -> Duration {
        let threads = queue.threads.max(1);
        let duration = self.duration;
        // When each thread is free next, soonest first: a busy one after what is left of
        // its request (at least nothing), an idle or unstarted one now.
        let mut free_at: Vec<f64> = queue
            .busy_for
            .iter()
            .map(|ran| (duration - ran.as_secs_f64()).max(0.0))
            .collect();
        free_at.resize(threads.max(free_at.len()), 0.0);
        free_at.sort_by(f64::total_cmp);
        let ahead = queue.waiting;
        let start = free_at[ahead % threads] + (ahead / threads) as f64 * duration;
        Duration::try_from_secs_f64(start).unwrap_or(Duration::MAX)
    }

    /// Whether a request that already waited `waited` (upstream) may join `queue`.
    pub fn admits(&self, queue: &QueueView, waited: Duration) -> bool {
        if let Some(max) = self.limits.max_queue {
            if queue.waiting >= max {
                log_shed(format_args!("{max} requests already wait (--max-queue)"));
                return false;
            }
        }
        if let Some(max) = self.limits.max_queue_time {
            let expected = waited.saturating_add(self.expected_wait(queue));
            if expected > max {
                log_shed(format_args!(
                    "it would wait about {:.3}s for a Python thread (--max-queue-time {:.3}s)",
                    expected.as_secs_f64(),
                    max.as_secs_f64()
                ));
                return false;
            }
        }
        true
    }

    /// Whether a request that has waited `waited` in all is past `--max-queue-time`.
    pub fn is_expired(&self, waited: Duration) -> bool {
        let expired = self.limits.max_queue_time.is_some_and(|max| waited > max);
        if expired {
            log_shed(format_args!(
                "it waited {:.3}s for a Python thread (--max-queue-time)",
                waited.as_secs_f64()
            ));
        }
        expired
    }
}

fn log_shed(why: std::fmt::Arguments<'_>) {
    if let Some(withheld) = SHED_LOG.admit() {
        let more = match withheld {
            0 => String::new(),
            n => format!(" ({n} more since the last such line)"),
        };
        log::warn!("Overloaded: a request was answered 503 because {why}{more}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shedder(max_queue: Option<usize>, max_queue_time_ms: Option<u64>) -> Shedder {
        Shedder::new(Shedding {
            max_queue,
            max_queue_time: max_queue_time_ms.map(Duration::from_millis),
        })
    }

    /// `busy_ms`: how long each busy thread has run its request.
    fn view(waiting: usize, busy_ms: &[u64], threads: usize) -> QueueView {
        QueueView {
            waiting,
            threads,
            busy_for: busy_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
        }
    }

    #[test]
    fn no_limits_admit_everything() {
        let shedder = shedder(None, None);
        assert!(shedder.admits(&view(10_000, &[0; 4], 4), Duration::from_secs(60)));
        assert!(!shedder.is_expired(Duration::from_secs(60)));
    }

    #[test]
    fn max_queue_at_below_and_above() {
        let shedder = shedder(Some(2), None);
        assert!(shedder.admits(&view(1, &[0; 4], 4), Duration::ZERO));
        assert!(!shedder.admits(&view(2, &[0; 4], 4), Duration::ZERO));
        assert!(!shedder.admits(&view(3, &[0; 4], 4), Duration::ZERO));
    }

    #[test]
    fn expected_wait_follows_the_busy_threads_and_the_queue_ahead() {
        let mut shedder = shedder(None, Some(300));
        shedder.record(Duration::from_millis(200));
        let ms = |queue| shedder.expected_wait(&queue).as_millis();
        // A free thread: no wait.
        assert_eq!(ms(view(0, &[150], 2)), 0);
        // Two busy threads, 150 and 50 ms into their requests: the first is free in 50 ms.
        assert_eq!(ms(view(0, &[150, 50], 2)), 50);
        // One ahead: it takes that thread; this one gets the other, 150 ms from now.
        assert_eq!(ms(view(1, &[150, 50], 2)), 150);
        // Two ahead: the first thread again, after the one ahead's 200 ms.
        assert_eq!(ms(view(2, &[150, 50], 2)), 250);
        assert!(shedder.admits(&view(2, &[150, 50], 2), Duration::ZERO));
        assert!(!shedder.admits(&view(3, &[150, 50], 2), Duration::ZERO));
        // A request past its usual duration may end any moment.
        assert_eq!(ms(view(0, &[900, 900], 2)), 0);
        // An upstream wait counts.
        assert!(!shedder.admits(&view(0, &[150, 50], 2), Duration::from_millis(260)));
    }

    #[test]
    fn durations_are_smoothed() {
        let mut shedder = shedder(None, Some(1000));
        shedder.record(Duration::from_millis(100));
        shedder.record(Duration::from_millis(900));
        assert_eq!(shedder.expected_wait(&view(0, &[0], 1)).as_millis(), 200);
    }

    #[test]
    fn expiry_at_below_and_above_the_limit() {
        let shedder = shedder(None, Some(300));
        assert!(!shedder.is_expired(Duration::from_millis(299)));
        assert!(!shedder.is_expired(Duration::from_millis(300)));
        assert!(shedder.is_expired(Duration::from_millis(301)));
    }
}
