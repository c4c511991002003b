//! How much CPU a worker's Python threads used over a stretch of time: the process's CPU time
//! less the I/O thread's. The pool reads it to tell requests waiting behind threads that are
//! blocked (a new thread helps) from requests waiting behind a busy GIL (a new thread only
//! fights for it). Called on the I/O thread only, by the pool's lingering check.
//!
//! CPU time alone reads a thread that computes but waits for a core (other processes busy on
//! the machine) as partly blocked, and the pool would start threads that only fight for the
//! GIL. So the busy threads' run delay (time runnable, not running: `/proc/self/task/TID/
//! schedstat`, Linux's sched_info) counts as used too: a thread blocked in sleep() or I/O is
//! not runnable and has none.

use std::time::{Duration, Instant};

/// A kernel thread id (`gettid()`), as /proc/self/task names it.
pub type ThreadId = libc::pid_t;

thread_local! {
    static THREAD_ID: ThreadId = {
        // SAFETY: gettid takes no arguments and cannot fail.
        unsafe { libc::gettid() }
    };
}

/// The calling thread's kernel id (a syscall the first time per thread, cached after).
pub fn current_thread_id() -> ThreadId {
    THREAD_ID.with(|id| *id)
}

/// How long `thread` (of this process) has been runnable without running, in total; `None`
/// when the kernel does not say (a thread gone, or no sched_info).
fn run_delay(thread: ThreadId) -> Option<Duration> {
    // The second of "exec_ns run_delay_ns timeslices" (Documentation/scheduler/sched-stats).
    let text = std::fs::read_to_string(format!("/proc/self/task/{thread}/schedstat")).ok()?;
    let nanos = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// The run delay of a changing set of threads since each was first seen: one entry per thread
/// sampled last time (a handful: the busy Python threads).
#[derive(Default)]
struct RunDelays {
    last: Vec<(ThreadId, Duration)>,
}

impl RunDelays {
    /// The run delay `threads` accrued since the last call (a thread first seen now counts
    /// from now); threads not passed are forgotten.
    fn since_last(&mut self, threads: &[ThreadId]) -> Duration {
        let mut total = Duration::ZERO;
        let mut now = Vec::with_capacity(threads.len());
        for &thread in threads {
            let Some(delay) = run_delay(thread) else {
                continue;
            };
            if let Some((_, before)) = self.last.iter().find(|(id, _)| *id == thread) {
                total += delay.saturating_sub(*before);
            }
            now.push((thread, delay));
        }
        self.last = now;
        total
    }
}

fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer; on failure `now` stays zero, which
    // reads as "no CPU used" and so errs towards starting a thread, as before this check.
    unsafe { libc::clock_gettime(clock, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// A stretch of time being measured, from `start` to the next `python_share`.
struct CpuWindow {
    wall: Instant,
    process: Duration,
    io_thread: Duration,
}

impl CpuWindow {
    /// Starts a window. Must be called on the I/O thread, the one whose CPU is left out.
    fn start() -> CpuWindow {
        CpuWindow {
            wall: Instant::now(),
            process: cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID),
            io_thread: cpu_time(libc::CLOCK_THREAD_CPUTIME_ID),
        }
    }

    /// The CPU the process's other threads (the Python threads) used since the window began,
    /// as a share of the wall time (1.0: one core's worth); the next window starts now.
    fn python_share(&mut self) -> f64 {
        let next = CpuWindow::start();
        let wall = next.wall.saturating_duration_since(self.wall).as_secs_f64();
        let process = next.process.saturating_sub(self.process);
        let io_thread = next.io_thread.saturating_sub(self.io_thread);
        *self = next;
        if wall <= 0.0 {
            return 0.0;
        }
        process.saturating_sub(io_thread).as_secs_f64() / wall
    }
}

/// Each new sample's weight in `SmoothedShare`: one 1 ms window alone says little (the I/O
/// thread, a GIL hand-over or the scheduler can take all of it), four say enough.
const SAMPLE_WEIGHT: f64 = 0.25;

/// The Python threads' CPU share (with the busy ones' run delay), smoothed over successive
/// windows.
pub struct SmoothedShare {
    window: CpuWindow,
    delays: RunDelays,
    share: f64,
}

impl SmoothedShare {
    /// Starts from "one full core": threads are added only once the samples show CPU unused.
    pub fn assume_busy() -> SmoothedShare {
        SmoothedShare {
            window: CpuWindow::start(),
            delays: RunDelays::default(),
            share: 1.0,
        }
    }

    /// Takes the window since the last call into the average, and returns the average.
    /// `busy`: the threads running requests, whose waits for a core count as CPU used; pass
    /// none when the answer cannot change anything (it saves a file read per thread).
    pub fn sample(&mut self, busy: &[ThreadId]) -> f64 {
        let wall = self.window.wall.elapsed().as_secs_f64();
        let waited = self.delays.since_last(busy).as_secs_f64();
        let latest = self.window.python_share() + if wall > 0.0 { waited / wall } else { 0.0 };
        self.share += SAMPLE_WEIGHT * (latest - self.share);
        self.share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinning_thread_shows_and_a_sleeping_one_does_not() {
        let mut window = CpuWindow::start();
        std::thread::sleep(Duration::from_millis(100));
        // Other tests of this binary may run meanwhile, so only a generous bound.
        assert!(window.python_share() < 0.9, "a sleeping thread used CPU");
        // The spinner computes until it has used 50 ms of CPU, however long a loaded machine
        // makes that take (a wall-clock spin may get a sliver of a core there): all of it
        // must show in the window.
        let spinner = std::thread::spawn(|| {
            let mut used = Duration::ZERO;
            while used < Duration::from_millis(50) {
                std::hint::spin_loop();
                used = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID);
            }
            used
        });
        let used = spinner.join().unwrap();
        let wall = window.wall.elapsed().as_secs_f64();
        let shown = window.python_share() * wall;
        assert!(
            shown >= used.as_secs_f64() * 0.95,
            "a thread that computed {used:?} showed {shown:.3} s"
        );
    }

    /// Pins the calling thread to one CPU (the first this process may use).
    fn pin_to_one_cpu() {
        // SAFETY: zeroed cpu_set_t is a valid empty set; both calls get valid pointers and
        // the set's size, and affect the calling thread only (pid 0).
        unsafe {
            let mut allowed: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            assert_eq!(libc::sched_getaffinity(0, size, &mut allowed), 0);
            let first = (0..libc::CPU_SETSIZE as usize)
                .find(|&cpu| libc::CPU_ISSET(cpu, &allowed))
                .expect("invariant: a thread may run on some CPU");
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(first, &mut one);
            assert_eq!(libc::sched_setaffinity(0, size, &one), 0);
        }
    }

    #[test]
    fn threads_waiting_for_a_core_show_run_delay_and_a_sleeping_one_none() {
        // Three threads spinning on one CPU: each runs about a third of the time and waits
        // for the core the rest, however busy the machine is otherwise.
        let (ids_tx, ids_rx) = std::sync::mpsc::channel();
        let until = Instant::now() + Duration::from_millis(400);
        let spinners: Vec<_> = (0..3)
            .map(|_| {
                let ids_tx = ids_tx.clone();
                std::thread::spawn(move || {
                    pin_to_one_cpu();
                    ids_tx.send(current_thread_id()).unwrap();
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let (sleeper_tx, sleeper_rx) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            sleeper_tx.send(current_thread_id()).unwrap();
            std::thread::sleep(Duration::from_millis(400));
        });
        let spinning: Vec<ThreadId> = ids_rx.iter().take(3).collect();
        let sleeping = [sleeper_rx.recv().unwrap()];
        let mut delays = RunDelays::default();
        let mut sleeper_delays = RunDelays::default();
        assert_eq!(
            delays.since_last(&spinning),
            Duration::ZERO,
            "first seen now"
        );
        sleeper_delays.since_last(&sleeping);
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(200));
        let waited = delays.since_last(&spinning);
        let slept = sleeper_delays.since_last(&sleeping);
        let wall = started.elapsed();
        for spinner in spinners {
            spinner.join().unwrap();
        }
        sleeper.join().unwrap();
        // Two waiting at any time: about 2 x wall in all; half of it on any machine.
        assert!(
            waited > wall,
            "3 threads on one core waited {waited:?} in {wall:?}"
        );
        assert!(
            slept < wall / 4,
            "a sleeping thread waited {slept:?} in {wall:?}"
        );
    }
}
