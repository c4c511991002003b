//! The Python threads of one worker and the queue that feeds them.
//!
//! Threads start on demand, up to `--threads`. At most one thread is being woken at a time:
//! it, and every running thread, drains the queue without giving up the GIL, so waking a
//! thread per request would only make them fight for the GIL. A new thread starts only when
//! none is running, or when a request has waited `QUEUE_LINGER` behind busy threads that are
//! blocked (in `sleep()` or I/O: the Python threads leave CPU unused); the lingering check on
//! the I/O runtime watches for that. Behind threads that keep the GIL busy, a request waits
//! up to `SATURATED_LINGER` before a thread is put on it.
//!
//! Each thread's state (`ThreadState`: idle, waking, busy with a request since it took it)
//! is kept in the queue, one place per thread, and every count the policy uses is
//! derived from those states. The oldest busy request is what the worker's heartbeat reports
//! for `--timeout` (`progress`, read by supervisor/report.rs through python/launcher.rs).
//!
//! A thread taking a request reads the clock once: its queue time (`ferrogate.queue_time`)
//! and its start for `--timeout` and `--request-timeout` (`request_timeout.rs`, which
//! interrupts a thread still running an overdue request). `--max-queue`/`--max-queue-time`
//! refuse requests as they are queued or taken (`../shedding.rs`). The handle the worker
//! keeps (`PythonThreads`: start, the I/O side's watches, stop) is in handle.rs.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use http::Method;
use pyo3::prelude::*;
use tokio::sync::Notify;

mod handle;
mod request_timeout;

pub use handle::{ProgressProbe, PythonThreads};
pub use request_timeout::RequestTimeouts;

use super::blocking::threads_waiting_on_clients;
use super::cpu_share::SmoothedShare;
use super::environ::EnvironBuilder;
use super::handler::Job;
use super::job::run_job;
use super::reply::Outbox;
use super::shedding::{QueueView, Shedder};
use super::WsgiConfig;
use crate::http::status::Failure;

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

/// How long a thread may be waking (started, or notified) without coming for the request it
/// was woken for before the lingering check stops counting on it and wakes another: on a busy
/// machine a woken thread may wait this long for a core.
const WAKING_TIMEOUT: Duration = Duration::from_millis(10);

/// What the thread in one place of the pool is doing.
enum ThreadState {
    /// No thread here: never started, or ended.
    Vacant,
    /// Waiting on its own condvar for a request.
    Idle,
    /// Started, or notified, for a request queued at this instant; not there yet.
    Waking(Instant),
    /// Running a request.
    Busy(RunningJob),
}

/// The request a busy thread runs, as the heartbeat reports it.
struct RunningJob {
    started: Instant,
    /// Cheap to clone: the target shares the bytes the head was received in. PERF: the
    /// path and query only, not the whole `Uri` (benches/README.md, "worker heartbeat").
    method: Method,
    target: Option<PathAndQuery>,
    /// Which request this is (the pool's count of requests taken): `--request-timeout`
    /// interrupts a thread only while it still runs the request found overdue.
    id: u64,
    /// The running thread's CPython id, for `PyThreadState_SetAsyncExc`.
    thread_ident: std::os::raw::c_ulong,
    /// Its app's request timeout, if it has one.
    timeout: Option<Duration>,
    /// Its request timeout has interrupted it already.
    interrupted: bool,
}

/// How many threads are in each state.
#[derive(Default)]
struct Counts {
    idle: usize,
    waking: usize,
    busy: usize,
}

struct Queue {
    /// Each request and when it was queued. PERF: the ~420-byte job is boxed, so it is
    /// copied once on its way to a thread (into the box, and out for `run_job`) instead of
    /// in and out of the queue and up the thread's calls (benches/callgrind hello).
    jobs: VecDeque<(Box<Job>, Instant)>,
    /// One place per thread, at most `--threads`; a thread keeps its index (and so its
    /// condvar in `Pool::wake_ups`) for its life.
    threads: Vec<ThreadState>,
    /// Requests the threads have taken so far, for `--max-requests`.
    taken: u64,
    /// `--max-queue` / `--max-queue-time`: which requests are answered 503 instead.
    shedder: Shedder,
    closed: bool,
    handles: Vec<JoinHandle<()>>,
}

impl Queue {
    fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for state in &self.threads {
            match state {
                ThreadState::Vacant => {}
                ThreadState::Idle => counts.idle += 1,
                ThreadState::Waking(_) => counts.waking += 1,
                ThreadState::Busy(_) => counts.busy += 1,
            }
        }
        counts
    }

    /// How long each busy thread has been running its request (for the shedder's estimate).
    fn busy_for(&self) -> Vec<Duration> {
        let now = Instant::now();
        self.threads
            .iter()
            .filter_map(|state| match state {
                ThreadState::Busy(job) => Some(now.saturating_duration_since(job.started)),
                _ => None,
            })
            .collect()
    }

    /// Waking threads that may still come: woken less than `WAKING_TIMEOUT` ago.
    fn coming(&self, now: Instant) -> usize {
        self.threads
            .iter()
            .filter(|state| {
                matches!(state, ThreadState::Waking(since)
                    if now.saturating_duration_since(*since) < WAKING_TIMEOUT)
            })
            .count()
    }
}

pub struct Pool {
    queue: Mutex<Queue>,
    /// One condvar per place in `Queue::threads`: a thread is woken by its index, so the
    /// `Waking` the waker writes is the state of the thread that wakes.
    wake_ups: Box<[Condvar]>,
    /// Arms the lingering check when a request is queued behind a busy thread.
    queued_behind_busy: Notify,
    /// The Python apps of this worker: one, or several behind a native `Mount` (a job names
    /// its app by index).
    apps: Vec<Py<PyAny>>,
    config: WsgiConfig,
    outbox: Arc<Outbox>,
}

/// What the Python threads have done so far, for the worker's heartbeat.
pub struct PoolProgress {
    /// Requests taken by a thread.
    pub requests: u64,
    pub oldest_running: Option<OldestRequest>,
    /// Requests waiting for a thread, threads started and busy, and requests shed so far.
    pub queued: usize,
    pub threads: usize,
    pub busy: usize,
    pub shed: u64,
}

/// The request that has been running longest.
pub struct OldestRequest {
    /// When a thread took it.
    pub started: Instant,
    pub method: Method,
    /// The path and query (`None` for a target without one, such as CONNECT's).
    pub target: Option<PathAndQuery>,
}

/// Why the pool did not queue a request.
#[derive(Debug)]
pub enum Refused {
    /// The worker is stopping and takes no more requests.
    Closed,
    /// The queue is too long (`--max-queue`, `--max-queue-time`): shed load.
    Overloaded,
}

/// What the I/O side must do after queueing, done outside the lock.
enum Wake {
    None,
    /// Notify the idle thread at this index.
    Idle(usize),
    /// Start a thread in this place.
    Start(usize),
    ArmLingerCheck,
}

impl Pool {
    pub fn outbox(&self) -> Arc<Outbox> {
        self.outbox.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request; fails (dropping it) once the pool is closed, or when it sheds load.
    pub fn submit(self: &Arc<Self>, job: Job) -> Result<(), Refused> {
        // Allocated before the lock is taken: the threads wait on it.
        let job = Box::new(job);
        let wake = {
            let mut queue = self.lock();
            if queue.closed {
                return Err(Refused::Closed);
            }
            let counts = queue.counts();
            let view = QueueView {
                waiting: queue.jobs.len(),
                threads: self.wake_ups.len(),
                busy_for: match queue.shedder.wants_durations() {
                    true => queue.busy_for(),
                    false => Vec::new(),
                },
            };
            if !queue.shedder.admits(&view, job.queue_time) {
                queue.shedder.count_shed();
                return Err(Refused::Overloaded);
            }
            let queued = Instant::now();
            queue.jobs.push_back((job, queued));
            if counts.waking > 0 {
                // That thread will drain the queue; the check covers it being slow to come.
                Wake::ArmLingerCheck
            } else if counts.idle > 0 || counts.busy == 0 {
                self.choose_wake(&mut queue, queued)
            } else {
                Wake::ArmLingerCheck
            }
        };
        self.wake(wake);
        Ok(())
    }

    /// Picks an idle thread, or a place for a new one, and marks it waking (for a request
    /// queued at `queued`).
    fn choose_wake(&self, queue: &mut Queue, queued: Instant) -> Wake {
        let idle = queue
            .threads
            .iter()
            .position(|state| matches!(state, ThreadState::Idle));
        if let Some(index) = idle {
            queue.threads[index] = ThreadState::Waking(queued);
            return Wake::Idle(index);
        }
        let vacant = queue
            .threads
            .iter()
            .position(|state| matches!(state, ThreadState::Vacant));
        let place = match vacant {
            Some(index) => index,
            None if queue.threads.len() < self.wake_ups.len() => {
                queue.threads.push(ThreadState::Vacant);
                queue.threads.len() - 1
            }
            None => return Wake::None,
        };
        queue.threads[place] = ThreadState::Waking(queued);
        Wake::Start(place)
    }

    fn wake(self: &Arc<Self>, wake: Wake) {
        match wake {
            Wake::None => {}
            Wake::Idle(index) => self.wake_ups[index].notify_one(),
            Wake::Start(index) => self.start_thread(index),
            Wake::ArmLingerCheck => self.queued_behind_busy.notify_one(),
        }
    }

    fn start_thread(self: &Arc<Self>, index: usize) {
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("ferrogate-py-{index}"))
            .spawn(move || pool.thread_main(index));
        match spawned {
            Ok(handle) => self.lock().handles.push(handle),
            Err(error) => {
                log::error!("Cannot start a Python thread: {error}");
                self.lock().threads[index] = ThreadState::Vacant;
            }
        }
    }

    /// The requests taken so far and the oldest one still running, for the heartbeat.
    pub fn progress(&self) -> PoolProgress {
        let queue = self.lock();
        let oldest_running = queue
            .threads
            .iter()
            .filter_map(|state| match state {
                ThreadState::Busy(job) => Some(job),
                _ => None,
            })
            .min_by_key(|job| job.started)
            .map(|job| OldestRequest {
                started: job.started,
                method: job.method.clone(),
                target: job.target.clone(),
            });
        let counts = queue.counts();
        PoolProgress {
            requests: queue.taken,
            oldest_running,
            queued: queue.jobs.len(),
            threads: counts.idle + counts.waking + counts.busy,
            busy: counts.busy,
            shed: queue.shedder.shed(),
        }
    }

    /// Runs on the I/O runtime: while requests wait behind busy threads, puts one more thread
    /// on them each time the oldest has waited `QUEUE_LINGER`.
    pub async fn watch_lingering(self: Arc<Self>) {
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
                    let now = Instant::now();
                    let coming = queue.coming(now);
                    match queue.jobs.front() {
                        None => break,
                        // Each waking thread gets WAKING_TIMEOUT to come; after that, the
                        // request is not left to it alone.
                        Some((_, queued))
                            if coming == 0 && now.saturating_duration_since(*queued) >= linger =>
                        {
                            self.choose_wake(&mut queue, now)
                        }
                        Some(_) => Wake::None,
                    }
                };
                self.wake(wake);
            }
        }
    }

    fn thread_main(self: Arc<Self>, index: usize) {
        let _place = ThreadPlace {
            pool: self.clone(),
            index,
        };
        Python::attach(|py| {
            let mut environ = match EnvironBuilder::new(py, &self.config) {
                Ok(builder) => builder,
                Err(error) => {
                    log::error!("Cannot prepare the WSGI environ: {error}");
                    // Answer what is queued (a dropped reply is a 500) rather than leave it
                    // to the next thread, which would likely fail the same way, and start
                    // the next, in a loop.
                    let unanswered: Vec<_> = self.lock().jobs.drain(..).collect();
                    drop(unanswered);
                    return;
                }
            };
            let apps: Vec<_> = self.apps.iter().map(|app| app.bind(py).clone()).collect();
            // Only --max-queue-time estimates waits from durations: a clock read per request.
            let timed = self.lock().shedder.wants_durations();
            let mut ran_for = None;
            let interrupts = self.config.request_timeout.shortest().is_some();
            while let Some(job) = self.next_job(py, index, ran_for.take()) {
                let began = timed.then(Instant::now);
                // A bug of ours must cost one request (its client gets a 500 from the
                // dropped reply), not this thread.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_job(py, &apps, &mut environ, &self.config, *job)
                }));
                ran_for = began.map(|began| began.elapsed());
                if interrupts {
                    // An interruption meant for the request just ended must not hit the next.
                    request_timeout::clear_pending(py);
                }
                if ran.is_err() {
                    log::error!(
                        "Internal error (a panic) while handling a request; the client got a 500"
                    );
                }
            }
        });
    }

    /// The oldest queued request, now run by the thread at `index`. Requests that waited
    /// past `--max-queue-time` are answered 503 on the way, without the app.
    fn take(&self, queue: &mut Queue, index: usize) -> Option<Box<Job>> {
        if queue.jobs.is_empty() {
            return None;
        }
        // The queue time (`ferrogate.queue_time`) and when it started, for --timeout: one
        // clock read (vDSO, tens of ns) per request taken.
        let now = Instant::now();
        let job = loop {
            let (mut job, queued) = queue.jobs.pop_front()?;
            job.queue_time += now.saturating_duration_since(queued);
            if !queue.shedder.is_expired(job.queue_time) {
                break job;
            }
            queue.shedder.count_shed();
            // Only a bounded queue of replies to push: no I/O, and no Python.
            job.reply.set_queue_time(job.queue_time);
            let _ = job.reply.send(Failure::Overloaded.into_response());
        };
        queue.taken += 1;
        queue.threads[index] = ThreadState::Busy(RunningJob {
            started: now,
            method: job.head.method.clone(),
            target: job.head.uri.path_and_query().cloned(),
            id: queue.taken,
            // SAFETY: returns the calling thread's id (pthread_self); needs no GIL.
            thread_ident: unsafe { pyo3::ffi::PyThread_get_thread_ident() },
            timeout: self.config.request_timeout.of_app(job.app_index()),
            interrupted: false,
        });
        Some(job)
    }

    /// The next request for the thread at `index`, waiting without the GIL if there is
    /// none; `ran_for`: how long its last one took, when durations are wanted. `None`: the
    /// pool closed.
    fn next_job(
        &self,
        py: Python<'_>,
        index: usize,
        ran_for: Option<Duration>,
    ) -> Option<Box<Job>> {
        // PERF: a request already queued is taken without giving up the GIL.
        {
            let mut queue = self.lock();
            if let Some(duration) = ran_for {
                queue.shedder.record(duration);
            }
            if let Some(job) = self.take(&mut queue, index) {
                return Some(job);
            }
            queue.threads[index] = ThreadState::Idle;
        }
        py.detach(|| {
            let mut queue = self.lock();
            loop {
                if let Some(job) = self.take(&mut queue, index) {
                    return Some(job);
                }
                if queue.closed {
                    return None;
                }
                // Also when woken for a request another thread took meanwhile.
                queue.threads[index] = ThreadState::Idle;
                queue = self.wake_ups[index]
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
            }
        })
    }
}

/// Gives a thread's place back when it ends for any reason, and hands queued requests to
/// another thread, so a thread that died cannot leave requests waiting for it.
struct ThreadPlace {
    pool: Arc<Pool>,
    index: usize,
}

impl Drop for ThreadPlace {
    fn drop(&mut self) {
        let wake = {
            let mut queue = self.pool.lock();
            queue.threads[self.index] = ThreadState::Vacant;
            if queue.closed || queue.jobs.is_empty() {
                Wake::None
            } else {
                self.pool.choose_wake(&mut queue, Instant::now())
            }
        };
        self.pool.wake(wake);
    }
}
