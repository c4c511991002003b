//! The handle a worker keeps on its Python threads (mod.rs's pool): it starts the pool,
//! hands out what the I/O runtime runs beside it (replies, the lingering and request-timeout
//! watches, the heartbeat's probe), and stops it. Knows nothing of the queue's policy.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use tokio::sync::Notify;

use super::request_timeout;
use super::{Pool, PoolProgress, Queue};
use crate::wsgi::handler::WsgiHandler;
use crate::wsgi::shedding::Shedder;
use crate::wsgi::WsgiConfig;

/// The handle a worker keeps on its Python threads.
pub struct PythonThreads {
    pool: Arc<Pool>,
}

impl PythonThreads {
    /// Prepares the pool; threads start as requests arrive.
    pub fn start(apps: Vec<Py<PyAny>>, config: WsgiConfig) -> io::Result<PythonThreads> {
        let queue = Queue {
            jobs: VecDeque::new(),
            threads: Vec::new(),
            taken: 0,
            shedder: Shedder::new(config.shedding),
            closed: false,
            handles: Vec::new(),
        };
        let pool = Pool {
            queue: Mutex::new(queue),
            wake_ups: (0..config.threads.max(1)).map(|_| Condvar::new()).collect(),
            queued_behind_busy: Notify::new(),
            apps,
            config,
            outbox: Arc::default(),
        };
        Ok(PythonThreads {
            pool: Arc::new(pool),
        })
    }

    /// A handle that samples the threads' progress (for the heartbeat) from any thread.
    pub fn progress_probe(&self) -> ProgressProbe {
        ProgressProbe(self.pool.clone())
    }

    pub fn handler(&self) -> WsgiHandler {
        WsgiHandler::new(self.pool.clone())
    }

    /// Delivers response heads to their connections; spawn it on the I/O runtime.
    pub fn deliver_replies(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.pool.outbox.clone().deliver()
    }

    /// The lingering check; spawn it on the I/O runtime.
    pub fn watch_lingering(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.pool.clone().watch_lingering()
    }

    /// The `--request-timeout` watch, when it is set; spawn it on the I/O runtime.
    pub fn watch_request_timeouts(
        &self,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let shortest = self.pool.config.request_timeout.shortest()?;
        Some(request_timeout::watch(self.pool.clone(), shortest))
    }

    /// Lets queued and running requests finish, up to `timeout`. Call without the GIL.
    pub fn stop(self, timeout: Duration) {
        let threads = {
            let mut queue = self.pool.lock();
            queue.closed = true;
            std::mem::take(&mut queue.handles)
        };
        for wake_up in self.pool.wake_ups.iter() {
            wake_up.notify_all();
        }
        let deadline = Instant::now() + timeout;
        while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stuck = threads.iter().filter(|t| !t.is_finished()).count();
        if stuck > 0 {
            log::warn!(
                "{stuck} Python thread(s) still running a request after the graceful timeout"
            );
        }
        for thread in threads.into_iter().filter(|t| t.is_finished()) {
            let _ = thread.join();
        }
    }
}

/// Samples a worker's Python threads for its heartbeat (`PythonThreads::progress_probe`).
#[derive(Clone)]
pub struct ProgressProbe(Arc<Pool>);

impl ProgressProbe {
    pub fn sample(&self) -> PoolProgress {
        self.0.progress()
    }
}
