//! Waiting on the I/O side from a Python thread (the GIL already released by the caller):
//! polls a future with a waker that unparks this thread, up to a deadline. Counts the threads
//! so waiting, for the pool's choice of when to start another.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Python threads of this process inside a wait on their client (for request body data, or
/// for room to send to a client slower than the app), the GIL released. They may burn CPU
/// copying, but they are blocked on the network, not on the GIL.
static WAITING_ON_CLIENTS: AtomicUsize = AtomicUsize::new(0);

pub fn threads_waiting_on_clients() -> usize {
    WAITING_ON_CLIENTS.load(Ordering::Relaxed)
}

/// Counts the calling thread as waiting on its client while it lives.
pub struct WaitingOnClient(());

impl WaitingOnClient {
    pub fn begin() -> WaitingOnClient {
        WAITING_ON_CLIENTS.fetch_add(1, Ordering::Relaxed);
        WaitingOnClient(())
    }
}

impl Drop for WaitingOnClient {
    fn drop(&mut self) {
        WAITING_ON_CLIENTS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `future`'s output, or `None` if `timeout` passes first.
pub fn wait_for<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    let _waiting = WaitingOnClient::begin();
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_future_returns_at_once_and_a_pending_one_times_out() {
        assert_eq!(wait_for(async { 7 }, Duration::ZERO), Some(7));
        let started = Instant::now();
        assert_eq!(
            wait_for(std::future::pending::<()>(), Duration::from_millis(30)),
            None
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn a_wake_from_another_thread_is_seen() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            tx.send(5).unwrap();
        });
        assert_eq!(wait_for(rx, Duration::from_secs(5)), Some(Ok(5)));
    }
}
