//! The Python threads of one worker and the queue that feeds them.
//!
//! Threads start on demand, up to `--threads`. At most one thread is being woken at a time:
//! it, and every running thread, drains the queue without giving up the GIL, so waking a
//! thread per request would only make them fight for the GIL. A new thread starts only when
//! none is running, or when a request has waited `QUEUE_LINGER` behind busy threads that are
//! blocked (in `sleep()` or I/O: the Python threads leave CPU unused); the lingering check on
//! the I/O runtime watches for that. Behind threads that keep the GIL busy, a request waits
//! up to `SATURATED_LINGER` before a thread is put on it.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use tokio::sync::Notify;

use super::blocking::threads_waiting_on_clients;
use super::cpu_share::SmoothedShare;
use super::environ::EnvironBuilder;
use super::handler::{Job, WsgiHandler};
use super::job::run_job;
use super::reply::Outbox;
use super::WsgiConfig;

/// How long a request may wait in the queue behind busy threads before another thread is
/// put on it. Short against a slow request, long against a hello world (~10 µs), so a
/// CPU-bound burst is served by one thread (benches/e2e: "sleep 10 ms" and "hello" rows).
const QUEUE_LINGER: Duration = Duration::from_millis(1);

/// The share of a core the Python threads use (smoothed, while a request waits behind them)
/// from which they count as CPU-bound: another thread would only wait for the GIL, and make
/// each switch of it cost a request ~5 ms (CPython's switch interval). Below it they are
/// blocked. Observed on the 2-core machine: 0.6-1.0 for threads computing, down to ~0.4
/// with another process spinning on their core; 0-0.2 for threads in sleep() or I/O.
const SATURATED_SHARE: f64 = 0.3;

/// How long a request waits behind CPU-bound threads before another thread is put on it
/// anyway, so one long computation cannot hold every other request. Far above a queue of 64
/// framework requests (~6 ms in benches/e2e's Flask row, which then keeps one thread and
/// a p99 of a few ms instead of 34).
const SATURATED_LINGER: Duration = Duration::from_millis(50);

struct Queue {
    jobs: VecDeque<(Job, Instant)>,
    started: usize,
    /// Threads inside a request.
    busy: usize,
    /// Threads told to wake that have not taken a request yet.
    waking: usize,
    /// Threads waiting for a request.
    idle: usize,
    closed: bool,
    threads: Vec<JoinHandle<()>>,
}

pub struct Pool {
    queue: Mutex<Queue>,
    job_ready: Condvar,
    /// Arms the lingering check when a request is queued behind a busy thread.
    queued_behind_busy: Notify,
    app: Py<PyAny>,
    config: WsgiConfig,
    outbox: Arc<Outbox>,
}

/// The worker is stopping and takes no more requests.
#[derive(Debug)]
pub struct PoolClosed;

/// What the I/O side must do after queueing, done outside the lock.
enum Wake {
    None,
    Idle,
    Start,
    ArmLingerCheck,
}

impl Pool {
    pub fn outbox(&self) -> Arc<Outbox> {
        self.outbox.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request; fails (dropping it) once the pool is closed.
    pub fn submit(self: &Arc<Self>, job: Job) -> Result<(), PoolClosed> {
        let wake = {
            let mut queue = self.lock();
            if queue.closed {
                return Err(PoolClosed);
            }
            queue.jobs.push_back((job, Instant::now()));
            if queue.waking > 0 {
                // That thread will drain the queue; the check covers it being slow to come.
                Wake::ArmLingerCheck
            } else if queue.idle > 0 || queue.busy == 0 {
                self.choose_wake(&mut queue)
            } else {
                Wake::ArmLingerCheck
            }
        };
        self.wake(wake);
        Ok(())
    }

    /// Picks an idle thread, or a new one, and counts it as waking.
    fn choose_wake(&self, queue: &mut Queue) -> Wake {
        if queue.idle > queue.waking {
            queue.waking += 1;
            Wake::Idle
        } else if queue.started < self.config.threads {
            queue.started += 1;
            queue.waking += 1;
            Wake::Start
        } else {
            Wake::None
        }
    }

    fn wake(self: &Arc<Self>, wake: Wake) {
        match wake {
            Wake::None => {}
            Wake::Idle => self.job_ready.notify_one(),
            Wake::Start => self.start_thread(),
            Wake::ArmLingerCheck => self.queued_behind_busy.notify_one(),
        }
    }

    fn start_thread(self: &Arc<Self>) {
        let pool = self.clone();
        let index = self.lock().threads.len();
        let spawned = std::thread::Builder::new()
            .name(format!("ferrogate-py-{index}"))
            .spawn(move || pool.thread_main());
        match spawned {
            Ok(handle) => self.lock().threads.push(handle),
            Err(error) => {
                log::error!("Cannot start a Python thread: {error}");
                let mut queue = self.lock();
                queue.started = queue.started.saturating_sub(1);
                queue.waking = queue.waking.saturating_sub(1);
            }
        }
    }

    /// Runs on the I/O runtime: while requests wait behind busy threads, puts one more thread
    /// on them each time the oldest has waited `QUEUE_LINGER`.
    pub async fn watch_lingering(self: Arc<Self>) {
        // The request whose long wait already led to a reset, so each is reset for once.
        let mut reset_for: Option<Instant> = None;
        loop {
            self.queued_behind_busy.notified().await;
            let mut cpu = SmoothedShare::assume_busy();
            loop {
                tokio::time::sleep(QUEUE_LINGER).await;
                let cpu_bound =
                    cpu.sample() >= SATURATED_SHARE && threads_waiting_on_clients() == 0;
                let linger = if cpu_bound {
                    SATURATED_LINGER
                } else {
                    QUEUE_LINGER
                };
                let wake = {
                    let mut queue = self.lock();
                    match queue.jobs.front() {
                        None => break,
                        // A thread counted as waking for this long is not coming for it.
                        Some((_, queued))
                            if queue.waking > 0
                                && queued.elapsed() >= QUEUE_LINGER * 10
                                && reset_for != Some(*queued) =>
                        {
                            reset_for = Some(*queued);
                            queue.waking = 0;
                            self.choose_wake(&mut queue)
                        }
                        Some((_, queued)) if queued.elapsed() >= linger && queue.waking == 0 => {
                            self.choose_wake(&mut queue)
                        }
                        Some(_) => Wake::None,
                    }
                };
                self.wake(wake);
            }
        }
    }

    fn thread_main(self: Arc<Self>) {
        let _slot = ThreadSlot(self.clone());
        Python::attach(|py| {
            let mut environ = match EnvironBuilder::new(py, &self.config) {
                Ok(builder) => builder,
                Err(error) => {
                    log::error!("Cannot prepare the WSGI environ: {error}");
                    // Answer what is queued (a dropped reply is a 500) rather than leave it
                    // to the next thread, which would likely fail the same way, and start
                    // the next, in a loop.
                    let unanswered: Vec<_> = {
                        let mut queue = self.lock();
                        queue.waking = queue.waking.saturating_sub(1);
                        queue.jobs.drain(..).collect()
                    };
                    drop(unanswered);
                    return;
                }
            };
            let app = self.app.bind(py);
            let mut woken = true;
            while let Some(job) = self.next_job(py, &mut woken) {
                // A bug of ours must cost one request (its client gets a 500 from the
                // dropped reply), not this thread.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_job(py, app, &mut environ, &self.config, job)
                }));
                if ran.is_err() {
                    log::error!(
                        "Internal error (a panic) while handling a request; the client got a 500"
                    );
                }
            }
        });
    }

    /// The next request, waiting without the GIL if there is none. `None`: the pool closed.
    fn next_job(&self, py: Python<'_>, woken: &mut bool) -> Option<Job> {
        // PERF: a request already queued is taken without giving up the GIL.
        {
            let mut queue = self.lock();
            queue.busy = queue.busy.saturating_sub(usize::from(!*woken));
            if let Some(job) = self.take(&mut queue, woken) {
                return Some(job);
            }
        }
        py.detach(|| {
            let mut queue = self.lock();
            loop {
                if let Some(job) = self.take(&mut queue, woken) {
                    return Some(job);
                }
                // Another thread took the request this one was woken for.
                if *woken {
                    queue.waking = queue.waking.saturating_sub(1);
                    *woken = false;
                }
                if queue.closed {
                    return None;
                }
                queue.idle += 1;
                queue = self
                    .job_ready
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
                queue.idle -= 1;
                // Whoever notified counted this thread as waking.
                *woken = true;
            }
        })
    }

    fn take(&self, queue: &mut Queue, woken: &mut bool) -> Option<Job> {
        let (job, _) = queue.jobs.pop_front()?;
        if *woken {
            queue.waking = queue.waking.saturating_sub(1);
            *woken = false;
        }
        queue.busy += 1;
        Some(job)
    }
}

/// Gives a thread's place back when it ends for any reason, and hands queued requests to
/// another thread, so a thread that died cannot leave requests waiting for it.
struct ThreadSlot(Arc<Pool>);

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        let wake = {
            let mut queue = self.0.lock();
            queue.started = queue.started.saturating_sub(1);
            if queue.closed || queue.jobs.is_empty() {
                Wake::None
            } else {
                self.0.choose_wake(&mut queue)
            }
        };
        self.0.wake(wake);
    }
}

/// The handle a worker keeps on its Python threads.
pub struct PythonThreads {
    pool: Arc<Pool>,
}

impl PythonThreads {
    /// Prepares the pool; threads start as requests arrive.
    pub fn start(app: Py<PyAny>, config: WsgiConfig) -> io::Result<PythonThreads> {
        let queue = Queue {
            jobs: VecDeque::new(),
            started: 0,
            busy: 0,
            waking: 0,
            idle: 0,
            closed: false,
            threads: Vec::new(),
        };
        let pool = Pool {
            queue: Mutex::new(queue),
            job_ready: Condvar::new(),
            queued_behind_busy: Notify::new(),
            app,
            config,
            outbox: Arc::default(),
        };
        Ok(PythonThreads {
            pool: Arc::new(pool),
        })
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

    /// Lets queued and running requests finish, up to `timeout`. Call without the GIL.
    pub fn stop(self, timeout: Duration) {
        let threads = {
            let mut queue = self.pool.lock();
            queue.closed = true;
            std::mem::take(&mut queue.threads)
        };
        self.pool.job_ready.notify_all();
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
