//! `--request-timeout`: a request whose app call runs too long gets `ferrogate.RequestTimeout`
//! raised in its Python thread (CPython's `PyThreadState_SetAsyncExc`), so the app unwinds,
//! its `finally` blocks and close() run, and the client gets a 504 (job.rs), while the
//! worker's other threads serve on. A watch on the I/O runtime finds overdue requests in the
//! pool's thread states (no clock read per request); the interruption itself needs the GIL,
//! so it is done on a blocking thread, never on the I/O thread.
//!
//! An async exception is raised when the thread next runs Python bytecode: a pure-Python
//! loop stops at once, a thread blocked in C code (a socket read, a lock) only once that call
//! returns. `time.sleep()` is sliced (ferrogate/_timeouts.py) so that it counts as Python.
//! A thread that does not unwind is left to `--timeout`, which aborts the worker as before.

//!
//! A mounted app may have its own timeout (`--mount /api=pkg:app,request_timeout=5`, or the
//! `request_timeouts` of `ferrogate.middleware.Mount`): each running request carries the one
//! of the app it runs, and the watch looks as often as the shortest asks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use super::{Pool, ThreadState};
use crate::python::errors::RequestTimeout;

/// Longest pause between two looks for overdue requests: the timeout is kept to within this.
const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// `--request-timeout` and the per-mount timeouts: how long each app's calls may run.
#[derive(Debug, Clone, Default)]
pub struct RequestTimeouts {
    /// `--request-timeout`: for every app without its own.
    pub default: Option<Duration>,
    /// By the app's index in the worker's list: its mount's timeout, which replaces the
    /// default (zero: no timeout for it); `None` where the mount has none.
    pub by_app: Vec<Option<Duration>>,
}

impl RequestTimeouts {
    /// The timeout of app `index`'s requests, if they have one.
    pub fn of_app(&self, index: usize) -> Option<Duration> {
        match self.by_app.get(index).copied().flatten() {
            Some(own) => Some(own).filter(|own| !own.is_zero()),
            None => self.default,
        }
    }

    /// The shortest timeout any request can have; `None`: no request is ever interrupted.
    pub fn shortest(&self) -> Option<Duration> {
        (0..self.by_app.len().max(1))
            .filter_map(|index| self.of_app(index))
            .chain(self.default)
            .min()
    }
}

/// A request past its request timeout, and the place of the thread running it.
struct Overdue {
    index: usize,
    id: u64,
    running_for: Duration,
    /// The timeout it ran past.
    timeout: Duration,
    label: String,
}

impl Pool {
    /// The requests running longer than their timeout that have not been interrupted yet;
    /// each is marked interrupted (request_timeout.rs interrupts it).
    fn overdue(&self) -> Vec<Overdue> {
        let now = Instant::now();
        let mut queue = self.lock();
        let mut overdue = Vec::new();
        for (index, state) in queue.threads.iter_mut().enumerate() {
            let ThreadState::Busy(job) = state else {
                continue;
            };
            let Some(timeout) = job.timeout else {
                continue;
            };
            let running_for = now.saturating_duration_since(job.started);
            if job.interrupted || running_for < timeout {
                continue;
            }
            job.interrupted = true;
            let label = match &job.target {
                Some(target) => format!("{} {target}", job.method),
                None => job.method.to_string(),
            };
            overdue.push(Overdue {
                index,
                id: job.id,
                running_for,
                timeout,
                label,
            });
        }
        overdue
    }

    /// Calls `interrupt` with the CPython id of the thread running request `id`, under the
    /// queue's lock, so the thread cannot take another request meanwhile. Call with the GIL
    /// held (the thread then cannot be running Python either).
    fn with_running_thread(
        &self,
        overdue: &Overdue,
        interrupt: impl FnOnce(std::os::raw::c_ulong),
    ) {
        let queue = self.lock();
        if let Some(ThreadState::Busy(job)) = queue.threads.get(overdue.index) {
            if job.id == overdue.id {
                interrupt(job.thread_ident);
            }
        }
    }
}

/// Runs on the I/O runtime for the worker's life; `shortest`: the shortest timeout a request
/// can have.
pub async fn watch(pool: Arc<Pool>, shortest: Duration) {
    let interval = (shortest / 4).clamp(Duration::from_millis(10), CHECK_INTERVAL);
    loop {
        tokio::time::sleep(interval).await;
        let overdue = pool.overdue();
        if overdue.is_empty() {
            continue;
        }
        let pool = pool.clone();
        // Taking the GIL may wait for a thread computing: not on the I/O thread.
        drop(tokio::task::spawn_blocking(move || {
            interrupt(&pool, &overdue)
        }));
    }
}

fn interrupt(pool: &Pool, overdue: &[Overdue]) {
    Python::attach(|py| {
        let exception = py.get_type::<RequestTimeout>();
        for request in overdue {
            pool.with_running_thread(request, |thread_ident| {
                // SAFETY: the GIL is held; the exception type outlives the call (a static
                // type object), and the id names a live thread (it is Busy in the pool).
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(
                        thread_ident as std::os::raw::c_long,
                        exception.as_ptr(),
                    );
                }
                log::warn!(
                    "Request {} ran {:.1}s, past its request timeout ({:.1}s): raising RequestTimeout in its thread",
                    request.label,
                    request.running_for.as_secs_f64(),
                    request.timeout.as_secs_f64()
                );
            });
        }
    });
}

/// Clears an interruption still pending for the calling thread (its request already ended).
pub fn clear_pending(py: Python<'_>) {
    let _ = py;
    // SAFETY: the GIL is held (`py`); a null exception clears what is pending for the id.
    unsafe {
        let ident = pyo3::ffi::PyThread_get_thread_ident();
        pyo3::ffi::PyThreadState_SetAsyncExc(ident as std::os::raw::c_long, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_timeout_replaces_the_default_and_zero_turns_it_off() {
        let second = Duration::from_secs(1);
        let timeouts = RequestTimeouts {
            default: Some(second * 10),
            by_app: vec![Some(second), None, Some(Duration::ZERO)],
        };
        assert_eq!(timeouts.of_app(0), Some(second));
        assert_eq!(timeouts.of_app(1), Some(second * 10));
        assert_eq!(timeouts.of_app(2), None);
        assert_eq!(timeouts.of_app(7), Some(second * 10));
        assert_eq!(timeouts.shortest(), Some(second));
        let none = RequestTimeouts {
            default: None,
            by_app: vec![None, Some(Duration::ZERO)],
        };
        assert_eq!(none.shortest(), None);
        let only_a_mount = RequestTimeouts {
            default: None,
            by_app: vec![None, Some(second * 3)],
        };
        assert_eq!(only_a_mount.of_app(0), None);
        assert_eq!(only_a_mount.shortest(), Some(second * 3));
    }
}
