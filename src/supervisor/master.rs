//! The master loop: keep `workers` workers alive; SIGTERM/SIGINT drain them, SIGQUIT kills
//! them, SIGHUP replaces them with freshly started ones (reloading the app's code), SIGTTIN
//! and SIGTTOU add and retire one, SIGUSR1 reopens the log files everywhere.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use super::signals::{self, ChildExit, Signal};

/// A worker exits with this when the app cannot be loaded; restarting it would only fail
/// again, so the master stops and exits with the same code.
pub const EXIT_WORKER_BOOT_FAILED: i32 = 3;

/// A worker that dies sooner than this after starting is restarted only after this pause,
/// so a crash at startup does not become a fork loop.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// How often the loop wakes without a signal, to start delayed workers and check deadlines.
const TICK: Duration = Duration::from_millis(200);

/// Extra time, past the workers' own graceful timeout, before the master kills stragglers.
const KILL_MARGIN: Duration = Duration::from_secs(2);

/// Starts one worker process and returns its pid (in the parent; the child never returns).
pub trait WorkerLauncher {
    fn launch(&mut self) -> io::Result<libc::pid_t>;

    /// Closes the master's copies of the listening sockets (a stop began): once the workers
    /// have taken the clients waiting in the backlog and closed theirs, new clients are
    /// refused at once instead of waiting in a backlog nobody reads.
    fn stop_listening(&mut self);

    /// Reopens the master's log files (SIGUSR1); the master then passes the signal on to
    /// every worker, which reopens its own.
    fn reopen_logs(&mut self);
}

pub struct SupervisorOptions {
    pub workers: usize,
    pub graceful_timeout: Duration,
}

struct WorkerProcess {
    started: Instant,
    /// Replaced by a reload: when it exits it is not restarted.
    retiring: bool,
}

enum Phase {
    Running,
    Stopping { kill_at: Instant, exit_code: i32 },
}

struct Master<'a> {
    options: SupervisorOptions,
    launcher: &'a mut dyn WorkerLauncher,
    workers: HashMap<libc::pid_t, WorkerProcess>,
    /// When each missing worker is due to be started.
    pending_starts: Vec<Instant>,
    phase: Phase,
}

/// Runs the master loop until every worker has stopped; returns the process exit code.
pub fn supervise(options: SupervisorOptions, launcher: &mut dyn WorkerLauncher) -> i32 {
    if let Err(error) = signals::block_in_master() {
        log::error!("Cannot set up signal handling: {error}");
        return 1;
    }
    let now = Instant::now();
    let pending_starts = vec![now; options.workers];
    let mut master = Master {
        options,
        launcher,
        workers: HashMap::new(),
        pending_starts,
        phase: Phase::Running,
    };
    master.run()
}

impl Master<'_> {
    fn run(&mut self) -> i32 {
        loop {
            self.start_due_workers();
            let signal = signals::wait(TICK);
            match signal {
                Some(Signal::Terminate) | Some(Signal::Interrupt) => self.on_stop_request(signal),
                Some(Signal::Quit) => self.stop_now(),
                Some(Signal::Hangup) => self.reload(),
                Some(Signal::MoreWorkers) => self.add_worker(),
                Some(Signal::FewerWorkers) => self.remove_worker(),
                Some(Signal::ReopenLogs) => {
                    self.launcher.reopen_logs();
                    self.signal_all(libc::SIGUSR1);
                }
                Some(Signal::Child) | None => {}
            }
            self.reap_workers();
            if let Phase::Stopping { kill_at, exit_code } = self.phase {
                if self.workers.is_empty() {
                    log::info!("Shutdown complete");
                    return exit_code;
                }
                if Instant::now() >= kill_at {
                    log::warn!(
                        "Killing {} worker(s) that did not stop in time",
                        self.workers.len()
                    );
                    self.signal_all(libc::SIGKILL);
                }
            }
        }
    }

    fn start_due_workers(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        let now = Instant::now();
        let (due, later): (Vec<Instant>, Vec<Instant>) =
            self.pending_starts.iter().partition(|at| **at <= now);
        self.pending_starts = later;
        for _ in due {
            match self.launcher.launch() {
                Ok(pid) => {
                    self.workers.insert(
                        pid,
                        WorkerProcess {
                            started: Instant::now(),
                            retiring: false,
                        },
                    );
                }
                Err(error) => {
                    log::error!("Cannot start a worker: {error}");
                    self.pending_starts.push(now + RESTART_BACKOFF);
                }
            }
        }
    }

    fn on_stop_request(&mut self, signal: Option<Signal>) {
        match self.phase {
            Phase::Running => {
                log::info!(
                    "Shutting down gracefully ({}); in-flight requests get {:.1}s",
                    signal.map_or("signal".into(), |s| format!("{s:?}")),
                    self.options.graceful_timeout.as_secs_f64()
                );
                self.signal_all(libc::SIGTERM);
                self.launcher.stop_listening();
                self.phase = Phase::Stopping {
                    kill_at: Instant::now() + self.options.graceful_timeout + KILL_MARGIN,
                    exit_code: 0,
                };
            }
            // A second Ctrl-C means "now".
            Phase::Stopping { .. } => self.stop_now(),
        }
    }

    fn stop_now(&mut self) {
        log::info!("Stopping immediately");
        self.signal_all(libc::SIGQUIT);
        self.launcher.stop_listening();
        let exit_code = match self.phase {
            Phase::Stopping { exit_code, .. } => exit_code,
            Phase::Running => 0,
        };
        self.phase = Phase::Stopping {
            kill_at: Instant::now() + KILL_MARGIN,
            exit_code,
        };
    }

    fn reload(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        log::info!(
            "Reloading: starting {} new worker(s), then stopping the old ones",
            self.options.workers
        );
        for worker in self.workers.values_mut() {
            worker.retiring = true;
        }
        let now = Instant::now();
        self.pending_starts = vec![now; self.options.workers];
        self.start_due_workers();
        for (pid, worker) in &self.workers {
            if worker.retiring {
                signals::send(*pid, libc::SIGTERM);
            }
        }
    }

    /// TTIN: one worker more, started at once.
    fn add_worker(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        self.options.workers += 1;
        log::info!("SIGTTIN: {} workers", self.options.workers);
        self.pending_starts.push(Instant::now());
    }

    /// TTOU: one worker fewer, never below one; the newest retires gracefully.
    fn remove_worker(&mut self) {
        if !matches!(self.phase, Phase::Running) || self.options.workers <= 1 {
            log::info!("SIGTTOU: already at one worker");
            return;
        }
        self.options.workers -= 1;
        log::info!("SIGTTOU: {} workers", self.options.workers);
        if self.pending_starts.pop().is_some() {
            return;
        }
        let newest = self
            .workers
            .iter_mut()
            .filter(|(_, worker)| !worker.retiring)
            .max_by_key(|(_, worker)| worker.started);
        if let Some((pid, worker)) = newest {
            worker.retiring = true;
            signals::send(*pid, libc::SIGTERM);
        }
    }

    fn signal_all(&self, signal: libc::c_int) {
        for pid in self.workers.keys() {
            signals::send(*pid, signal);
        }
    }

    fn reap_workers(&mut self) {
        while let Some((pid, exit)) = signals::reap() {
            let Some(worker) = self.workers.remove(&pid) else {
                continue;
            };
            if !matches!(self.phase, Phase::Running) || worker.retiring {
                continue;
            }
            if exit == ChildExit::Code(EXIT_WORKER_BOOT_FAILED) {
                log::error!("Worker {pid} failed to boot; shutting down");
                self.signal_all(libc::SIGTERM);
                self.phase = Phase::Stopping {
                    kill_at: Instant::now() + self.options.graceful_timeout + KILL_MARGIN,
                    exit_code: EXIT_WORKER_BOOT_FAILED,
                };
                return;
            }
            let how = match exit {
                ChildExit::Code(code) => format!("exited with code {code}"),
                ChildExit::Signal(signal) => format!("was killed by signal {signal}"),
            };
            let lived = worker.started.elapsed();
            let start_at = if lived < RESTART_BACKOFF {
                Instant::now() + RESTART_BACKOFF
            } else {
                Instant::now()
            };
            log::warn!("Worker {pid} {how}; starting a new one");
            self.pending_starts.push(start_at);
        }
    }
}
