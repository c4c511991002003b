//! How much CPU a worker's Python threads used over a stretch of time: the process's CPU time
//! less the I/O thread's. The pool reads it to tell requests waiting behind threads that are
//! blocked (a new thread helps) from requests waiting behind a busy GIL (a new thread only
//! fights for it). Called on the I/O thread only, by the pool's lingering check.

use std::time::{Duration, Instant};

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

/// The Python threads' CPU share, smoothed over successive windows.
pub struct SmoothedShare {
    window: CpuWindow,
    share: f64,
}

impl SmoothedShare {
    /// Starts from "one full core": threads are added only once the samples show CPU unused.
    pub fn assume_busy() -> SmoothedShare {
        SmoothedShare {
            window: CpuWindow::start(),
            share: 1.0,
        }
    }

    /// Takes the window since the last call into the average, and returns the average.
    pub fn sample(&mut self) -> f64 {
        let latest = self.window.python_share();
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
}
