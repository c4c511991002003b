//! The per-connection idle watch: closes a connection that spends the keep-alive timeout with
//! no request in progress (an idle keep-alive connection, or one that never sent a byte). A
//! head partly received counts as a request in progress: `--header-timeout` is its limit.
//!
//! Why not hyper's `header_read_timeout`: it arms and cancels a timer for every request, 2.6k
//! of a hello request's 35k instructions (benches/README.md). This watch counts requests and
//! looks at the count twice per timeout instead.
//!
//! It also tells the accept loop which connections may be closed to make room at
//! `--max-connections`: those that wait on their client, not on the app (`waits_on_client`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shortest interval between two looks, so a zero timeout does not spin.
const MIN_LOOK_INTERVAL: Duration = Duration::from_millis(1);

/// What the watch of one connection sees of its requests.
#[derive(Default)]
pub struct ConnectionActivity {
    started: AtomicU64,
    unfinished: AtomicU32,
    /// Heads partly received (0 or 1): counted in `unfinished` too, but no request has
    /// reached the app yet.
    heads_arriving: AtomicU32,
}

impl ConnectionActivity {
    /// Counts a request from its head until its response body is done or dropped.
    pub fn request_started(self: &Arc<Self>) -> RequestInProgress {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.unfinished.fetch_add(1, Ordering::Relaxed);
        RequestInProgress(self.clone())
    }

    /// Counts a head that has begun to arrive as a request in progress, until dropped (when
    /// the head is whole, or refused). Only heads that take more than one read get here.
    pub fn head_started(self: &Arc<Self>) -> HeadArriving {
        self.heads_arriving.fetch_add(1, Ordering::Relaxed);
        HeadArriving(self.request_started())
    }

    /// Whether a request is between its head and the end of its response.
    pub fn is_busy(&self) -> bool {
        self.unfinished.load(Ordering::Relaxed) > 0
    }

    /// Whether closing the connection now loses no work: it is idle between requests, has
    /// not sent a byte yet, or is still sending a head (a slow client, perhaps slowloris).
    pub fn waits_on_client(&self) -> bool {
        self.unfinished.load(Ordering::Relaxed) == 0
            || self.heads_arriving.load(Ordering::Relaxed) > 0
    }

    /// Resolves once the connection has had no request in progress and no new request for
    /// at least `timeout` (and at most 1.5 × `timeout`).
    pub async fn idle_for(&self, timeout: Duration) {
        // Two quiet looks half a timeout apart: quiet since at least the look before them.
        let interval = (timeout / 2).max(MIN_LOOK_INTERVAL);
        let mut seen = self.started.load(Ordering::Relaxed);
        let mut quiet_looks = 0;
        loop {
            tokio::time::sleep(interval).await;
            let started = self.started.load(Ordering::Relaxed);
            if started != seen || self.unfinished.load(Ordering::Relaxed) > 0 {
                seen = started;
                quiet_looks = 0;
                continue;
            }
            quiet_looks += 1;
            if quiet_looks >= 2 {
                return;
            }
        }
    }
}

/// Keeps its request counted as in progress until dropped (with the response body).
pub struct RequestInProgress(Arc<ConnectionActivity>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        self.0.unfinished.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A head still arriving; counted as a request in progress as well, until dropped.
pub struct HeadArriving(RequestInProgress);

impl Drop for HeadArriving {
    fn drop(&mut self) {
        (self.0).0.heads_arriving.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quiet_connection_is_idle_after_the_timeout_not_before() {
        let activity = Arc::new(ConnectionActivity::default());
        let started = tokio::time::Instant::now();
        activity.idle_for(Duration::from_secs(4)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(4) && waited <= Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn request_in_progress_keeps_the_connection_from_being_idle() {
        let activity = Arc::new(ConnectionActivity::default());
        let request = activity.request_started();
        let idle = activity.idle_for(Duration::from_secs(1));
        let outcome = tokio::time::timeout(Duration::from_secs(30), idle).await;
        assert!(outcome.is_err(), "went idle with a request in progress");
        drop(request);
        let started = tokio::time::Instant::now();
        activity.idle_for(Duration::from_secs(1)).await;
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[test]
    fn only_connections_waiting_on_their_client_may_be_closed_for_room() {
        let activity = Arc::new(ConnectionActivity::default());
        assert!(
            activity.waits_on_client(),
            "a connection that sent nothing yet"
        );
        let head = activity.head_started();
        assert!(
            activity.waits_on_client() && activity.is_busy(),
            "a head still arriving"
        );
        drop(head);
        let request = activity.request_started();
        assert!(!activity.waits_on_client(), "a request the app is running");
        drop(request);
        assert!(activity.waits_on_client(), "idle between requests");
    }

    #[tokio::test(start_paused = true)]
    async fn each_new_request_restarts_the_timeout() {
        let activity = Arc::new(ConnectionActivity::default());
        let watcher = activity.clone();
        let idle = tokio::spawn(async move { watcher.idle_for(Duration::from_secs(2)).await });
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            drop(activity.request_started());
            assert!(!idle.is_finished(), "closed while requests kept coming");
        }
        idle.await.unwrap();
    }
}
