//! Room at `--max-connections`: the open connections of one server, oldest first, so that a
//! client waiting to be accepted can take the place of a connection that only waits on its
//! own client (idle between requests, or a head still trickling in), instead of waiting in
//! the backlog until slow clients time out. nginx reuses idle keep-alive connections the
//! same way when it runs out of connections. Knows nothing of HTTP beyond that one question.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use crate::handler::ConnectionInfo;
use crate::http::ConnectionActivity;
use crate::observe::LogThrottle;

/// A connection younger than this is never closed to make room: its client has likely sent
/// its request already, and the bytes are on their way.
pub const CLOSABLE_AFTER: Duration = Duration::from_millis(500);

/// Lines a second about connections closed to make room (a flood of slow clients must not
/// become a flood of log lines).
static MADE_ROOM_LOG: LogThrottle = LogThrottle::new(1);

struct OpenConnection {
    opened: Instant,
    activity: Arc<ConnectionActivity>,
    serving: AbortHandle,
    info: ConnectionInfo,
}

/// Every open connection of a server, keyed by the order they were accepted in.
#[derive(Default)]
pub struct OpenConnections {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_key: u64,
    by_age: BTreeMap<u64, OpenConnection>,
}

impl OpenConnections {
    /// Records a connection whose task is `serving`; returns the key `forget` takes.
    pub fn add(
        &self,
        activity: Arc<ConnectionActivity>,
        serving: AbortHandle,
        info: ConnectionInfo,
    ) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let key = inner.next_key;
        inner.next_key += 1;
        let connection = OpenConnection {
            opened: Instant::now(),
            activity,
            serving,
            info,
        };
        inner.by_age.insert(key, connection);
        key
    }

    pub fn forget(&self, key: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.by_age.remove(&key);
    }

    /// Closes the oldest connection that waits on its client and is at least
    /// `CLOSABLE_AFTER` old; returns the listener it came on, if there was one. Its slot frees
    /// once its task has wound down.
    ///
    /// Why the check and the abort cannot race the connection into running a request: every
    /// connection task runs on this same single-threaded runtime, so while this runs they are
    /// all parked at an await, and an aborted task never resumes from there.
    pub fn close_one_for_room(&self, max_connections: usize) -> Option<u8> {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = inner
            .by_age
            .iter()
            .take_while(|(_, c)| now.duration_since(c.opened) >= CLOSABLE_AFTER)
            .find(|(_, c)| c.activity.waits_on_client())
            .map(|(key, _)| *key);
        let connection = oldest.and_then(|key| inner.by_age.remove(&key))?;
        drop(inner);
        connection.serving.abort();
        let peer = connection
            .info
            .peer
            .map_or_else(|| "unix socket".to_string(), |p| p.to_string());
        log::debug!("Closed the connection from {peer} (no request running) to make room");
        if let Some(withheld) = MADE_ROOM_LOG.admit() {
            log::warn!(
                "{max_connections} connections open (--max-connections): closing connections \
                 with no request running (idle, or a head still arriving) to make room for new \
                 ones{}",
                match withheld {
                    0 => String::new(),
                    n => format!(" ({n} more since the last line)"),
                }
            );
        }
        Some(connection.info.listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked_task() -> AbortHandle {
        tokio::spawn(std::future::pending::<()>()).abort_handle()
    }

    #[tokio::test]
    async fn closes_the_oldest_connection_that_waits_on_its_client_only() {
        let open = OpenConnections::default();
        let running = Arc::new(ConnectionActivity::default());
        let _request = running.request_started();
        let idle = Arc::new(ConnectionActivity::default());
        let info = ConnectionInfo::direct(None, None);
        let (running_task, idle_task) = (parked_task(), parked_task());
        open.add(running, running_task.clone(), info.clone());
        open.add(idle, idle_task.clone(), info);
        assert!(
            open.close_one_for_room(2).is_none(),
            "closed a connection younger than the minimum"
        );
        {
            let mut inner = open.inner.lock().unwrap();
            for connection in inner.by_age.values_mut() {
                connection.opened -= CLOSABLE_AFTER;
            }
        }
        assert_eq!(open.close_one_for_room(2), Some(0));
        tokio::task::yield_now().await;
        assert!(idle_task.is_finished() && !running_task.is_finished());
        assert!(
            open.close_one_for_room(2).is_none(),
            "closed a connection running a request"
        );
        running_task.abort();
    }
}
