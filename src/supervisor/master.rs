//! The master loop: keep `--workers` workers serving. SIGTERM/SIGINT drain them, SIGQUIT
//! kills them, SIGHUP replaces them with fresh ones (reloading the app's code), SIGTTIN and
//! SIGTTOU add and retire one, SIGUSR1 reopens the log files everywhere, SIGUSR2 starts a
//! new master from the binary now on disk, which inherits the listening sockets.
//!
//! On every tick it reads the workers' heartbeat slots (heartbeat.rs): a worker that asks to
//! retire (`--max-requests`, `--max-worker-memory`) gets its replacement first, and like the
//! workers a reload replaces it stops only once a worker started after it accepts; a stuck
//! worker (`--timeout`, watchdog.rs) is sent SIGABRT, so that its Python stacks are logged,
//! then SIGKILL; a worker that dies young is replaced after a growing pause (backoff.rs).
//! Who is what is kept in roster.rs; what a child's exit sets off, in master/exits.rs.

use std::time::{Duration, Instant};

use super::backoff;
use super::heartbeat::{monotonic_ns, Heartbeats, Retirement};
use super::launcher::{MasterEvent, SupervisorOptions, WorkerLauncher};
use super::roster::{PendingStart, Role, Roster, Succession, Worker};
use super::signals::{self, Signal};
use super::watchdog::{self, Stuck};
use crate::observe::metrics::{count_restart, RestartCause};

mod exits;

/// A worker exits with this when the app cannot be loaded. Before any worker serves, the
/// master then stops and exits with the same code; later it keeps the others serving.
pub const EXIT_WORKER_BOOT_FAILED: i32 = 3;

/// A worker exits with this after a retirement it asked for (`--max-requests`,
/// `--max-worker-memory`): a planned exit, not a crash.
pub const EXIT_WORKER_RETIRED: i32 = 5;

/// How often the loop wakes without a signal: to start delayed workers, read the heartbeat
/// slots and check deadlines. Adds at most this much to `--timeout`'s detection delay.
const TICK: Duration = Duration::from_millis(200);

/// How long after a reload began an old worker's request for one is taken as the same change.
/// Short: the workers of one generation see a save within milliseconds of each other (then
/// wait 0.2 s of quiet), and a later save must reload again.
const RELOAD_ECHO_WINDOW: Duration = Duration::from_millis(500);

/// Extra time, past the workers' own graceful timeout, before the master kills stragglers.
const KILL_MARGIN: Duration = Duration::from_secs(2);

/// After SIGABRT (the worker's faulthandler writes every Python thread's stack, then the
/// process ends), how long before SIGKILL: writing the stacks takes milliseconds.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// A pause of the master's own loop longer than this (its process group was stopped) resets
/// the timeout clock: the workers could not report meanwhile either.
const WATCH_GAP: Duration = Duration::from_secs(2);

/// Slots in the heartbeat mapping per configured worker (a reload runs two sets at once,
/// SIGTTIN adds), plus a floor; 192 bytes each, in memory touched only when used.
const SLOTS_PER_WORKER: usize = 4;
const SPARE_SLOTS: usize = 64;

/// Worker slots the master maps for `workers` (the metrics table has as many).
pub fn slot_capacity(workers: usize) -> usize {
    workers * SLOTS_PER_WORKER + SPARE_SLOTS
}

enum Phase {
    Running,
    Stopping { kill_at: Instant, exit_code: i32 },
}

struct Master<'a> {
    options: SupervisorOptions,
    launcher: &'a mut dyn WorkerLauncher,
    heartbeats: Heartbeats,
    roster: Roster,
    phase: Phase,
    /// When the watch last ran, and from when ages count (see WATCH_GAP).
    last_watch_ns: u64,
    watched_since_ns: u64,
    /// When the last reload began (see `is_echo_of_last_reload`).
    last_reload: Option<Instant>,
    /// `--workers` as the settings last read it; SIGTTIN/SIGTTOU move `options.workers` away
    /// from it, and a reload keeps their count unless the setting itself changed.
    configured_workers: usize,
    /// The master started by SIGUSR2, while it runs.
    successor: Option<libc::pid_t>,
}

/// Runs the master loop until every worker has stopped; returns the process exit code.
pub fn supervise(options: SupervisorOptions, launcher: &mut dyn WorkerLauncher) -> i32 {
    if let Err(error) = signals::block_in_master() {
        log::error!("Cannot set up signal handling: {error}");
        return 1;
    }
    let capacity = slot_capacity(options.workers);
    let heartbeats = match Heartbeats::new(capacity) {
        Ok(heartbeats) => heartbeats,
        Err(error) => {
            log::error!("Cannot map the workers' heartbeat slots: {error}");
            return 1;
        }
    };
    let now = monotonic_ns();
    let mut master = Master {
        configured_workers: options.workers,
        successor: None,
        options,
        launcher,
        heartbeats,
        roster: Roster::default(),
        phase: Phase::Running,
        last_watch_ns: now,
        watched_since_ns: now,
        last_reload: None,
    };
    master.balance();
    master.run()
}

impl Master<'_> {
    fn run(&mut self) -> i32 {
        loop {
            self.start_due_workers();
            let (signal, sender) = match signals::wait_with_sender(TICK) {
                Some((signal, sender)) => (Some(signal), sender),
                None => (None, 0),
            };
            if signal == Some(Signal::Hangup) && self.is_echo_of_last_reload(sender) {
                continue;
            }
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
                Some(Signal::Upgrade) => self.start_successor(),
                Some(Signal::Child) | None => {}
            }
            self.reap_workers();
            if matches!(self.phase, Phase::Running) {
                self.watch_workers();
                self.hand_over();
                self.balance();
            }
            self.kill_overdue();
            if let Phase::Stopping { kill_at, exit_code } = self.phase {
                if self.roster.workers.is_empty() {
                    log::info!("Shutdown complete");
                    return exit_code;
                }
                if Instant::now() >= kill_at {
                    log::warn!(
                        "Killing {} worker(s) that did not stop in time",
                        self.roster.workers.len()
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
        for start in self.roster.take_due(now) {
            let Some(slot) = self.heartbeats.claim() else {
                log::error!(
                    "Cannot start a worker: all {} heartbeat slots are in use",
                    self.heartbeats.capacity()
                );
                self.retry_start_later(start);
                continue;
            };
            match self.launcher.launch(slot.clone()) {
                Ok(pid) => {
                    let worker = Worker {
                        slot,
                        started: Instant::now(),
                        accepting: false,
                        accepting_since_ns: 0,
                        crash_streak: start.crash_streak,
                        role: Role::Keeper,
                    };
                    self.roster.workers.insert(pid, worker);
                }
                Err(error) => {
                    self.heartbeats.release(&slot);
                    log::error!("Cannot start a worker: {error}");
                    self.retry_start_later(start);
                }
            }
        }
    }

    fn retry_start_later(&mut self, start: PendingStart) {
        let crash_streak = start.crash_streak.saturating_add(1);
        self.roster.pending.push(PendingStart {
            at: Instant::now() + backoff::pause(crash_streak),
            crash_streak,
        });
    }

    /// Reads every slot: who accepts now, who asks to retire, who is stuck.
    fn watch_workers(&mut self) {
        let now_ns = monotonic_ns();
        if now_ns.saturating_sub(self.last_watch_ns) > WATCH_GAP.as_nanos() as u64 {
            self.watched_since_ns = now_ns;
        }
        self.last_watch_ns = now_ns;
        let mut stuck = Vec::new();
        for (pid, worker) in &mut self.roster.workers {
            let reading = worker.slot.read();
            if reading.accepting && !worker.accepting {
                worker.accepting = true;
                worker.accepting_since_ns = now_ns;
                log::debug!("Worker {pid} accepts connections");
            }
            if let (Role::Keeper, true, Some(why)) =
                (worker.role, worker.accepting, reading.retirement)
            {
                log::info!(
                    "Worker {pid} asks to retire ({}, {} requests served); starting its replacement",
                    why.setting(),
                    reading.requests
                );
                worker.role = Role::Outgoing(Succession::Asked(why));
                count_restart(match why {
                    Retirement::MaxRequests => RestartCause::MaxRequests,
                    Retirement::Memory => RestartCause::Memory,
                });
            }
            let Some(timeout) = self.options.timeout else {
                continue;
            };
            if worker.accepting && worker.role.is_serving() {
                let watched_since = self.watched_since_ns.max(worker.accepting_since_ns);
                if let Some(found) = watchdog::stuck(&reading, now_ns, watched_since, timeout) {
                    stuck.push((*pid, found));
                }
            }
        }
        for (pid, found) in stuck {
            self.abort(pid, found);
        }
    }

    fn abort(&mut self, pid: libc::pid_t, stuck: Stuck) {
        let Some(worker) = self.roster.workers.get_mut(&pid) else {
            return;
        };
        let what = match stuck {
            Stuck::Request { running } => {
                let request = worker
                    .slot
                    .read_oldest()
                    .map_or_else(|| "a request".to_string(), |(_, label)| label);
                format!(
                    "{request} has been running for {:.1}s",
                    running.as_secs_f64()
                )
            }
            Stuck::Silent { silent } => format!(
                "its I/O loop has not reported for {:.1}s",
                silent.as_secs_f64()
            ),
        };
        log::error!(
            "Worker {pid} timed out (--timeout {}): {what}; sending SIGABRT (its Python \
             threads' stacks follow) and starting a replacement",
            self.options.timeout.unwrap_or_default().as_secs_f64()
        );
        signals::send(pid, libc::SIGABRT);
        count_restart(RestartCause::Timeout);
        worker.role = Role::Aborted {
            kill_at: Some(Instant::now() + ABORT_GRACE),
        };
    }

    /// Retires outgoing workers as keepers start accepting in their place: as many stay
    /// serving as keepers are still missing, so clients always find `--workers` accepting.
    fn hand_over(&mut self) {
        for pid in self.roster.to_hand_over(self.options.workers) {
            if let Some(Role::Outgoing(why)) = self.roster.workers.get(&pid).map(|w| w.role) {
                log::info!(
                    "Worker {pid} retiring ({}): a new worker accepts in its place",
                    why.describe()
                );
            }
            self.retire(pid);
        }
    }

    /// Starts or retires keepers until there are `--workers` of them (started or pending).
    fn balance(&mut self) {
        let wanted = self.options.workers;
        let mut planned = self.roster.keepers() + self.roster.pending.len();
        while planned < wanted {
            self.roster.pending.push(PendingStart {
                at: Instant::now(),
                crash_streak: 0,
            });
            planned += 1;
        }
        while planned > wanted {
            if !self.roster.drop_latest_pending() {
                match self.roster.keeper_to_retire() {
                    Some(pid) => self.retire(pid),
                    None => break,
                }
            }
            planned -= 1;
        }
    }

    /// SIGTERM: the worker drains and exits; it is not replaced.
    fn retire(&mut self, pid: libc::pid_t) {
        let kill_at = Instant::now() + self.options.graceful_timeout + KILL_MARGIN;
        if let Some(worker) = self.roster.workers.get_mut(&pid) {
            worker.role = Role::Retiring {
                kill_at: Some(kill_at),
            };
            signals::send(pid, libc::SIGTERM);
        }
    }

    fn kill_overdue(&mut self) {
        let now = Instant::now();
        for (pid, worker) in &mut self.roster.workers {
            let (Role::Retiring { kill_at } | Role::Aborted { kill_at }) = &mut worker.role else {
                continue;
            };
            if kill_at.is_some_and(|at| now >= at) {
                log::warn!("Worker {pid} did not stop in time; killing it");
                signals::send(*pid, libc::SIGKILL);
                *kill_at = None;
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

    /// SIGHUP: every worker becomes outgoing; `balance` starts as many fresh ones (which
    /// import the app anew), and `hand_over` retires an old one for each that accepts.
    /// A SIGHUP from one of our own workers (`--reload` saw a file change) that was started
    /// before the last reload began: with several workers, each saw the same save, and one
    /// reload covers it. Workers started by that reload began watching after the save, so a
    /// request from one of them is a newer change. An operator's SIGHUP always counts.
    fn is_echo_of_last_reload(&self, sender: libc::pid_t) -> bool {
        let (Some(began), Some(worker)) = (self.last_reload, self.roster.workers.get(&sender))
        else {
            return false;
        };
        let echo = worker.started < began && began.elapsed() < RELOAD_ECHO_WINDOW;
        if echo {
            log::debug!("Worker {sender} asked for the reload already under way");
        }
        echo
    }

    fn reload(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        self.last_reload = Some(Instant::now());
        let reread = self.launcher.reread_settings();
        if reread.workers != self.configured_workers {
            self.configured_workers = reread.workers;
            self.options.workers = reread.workers;
        }
        self.options.graceful_timeout = reread.graceful_timeout;
        self.options.timeout = reread.timeout;
        self.launcher.on_event(MasterEvent::Reload);
        log::info!(
            "Reloading: starting {} new worker(s); the old ones serve until the new ones accept",
            self.options.workers
        );
        for worker in self.roster.workers.values_mut() {
            if worker.role == Role::Keeper {
                count_restart(RestartCause::Reload);
                worker.role = Role::Outgoing(Succession::Reload);
            }
        }
        self.balance();
    }

    /// TTIN: one worker more, started at once.
    fn add_worker(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        self.options.workers += 1;
        log::info!("SIGTTIN: {} workers", self.options.workers);
        self.launcher.on_event(MasterEvent::WorkerCountChanged {
            new: self.options.workers,
            old: self.options.workers - 1,
        });
        self.balance();
    }

    /// TTOU: one worker fewer, never below one; the newest retires gracefully.
    fn remove_worker(&mut self) {
        if !matches!(self.phase, Phase::Running) || self.options.workers <= 1 {
            log::info!("SIGTTOU: already at one worker");
            return;
        }
        self.options.workers -= 1;
        log::info!("SIGTTOU: {} workers", self.options.workers);
        self.launcher.on_event(MasterEvent::WorkerCountChanged {
            new: self.options.workers,
            old: self.options.workers + 1,
        });
        self.balance();
    }

    /// USR2: one successor at a time; while it runs, both masters' workers accept on the
    /// same sockets, and the operator stops this one (TERM) once the new one serves.
    fn start_successor(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        if let Some(pid) = self.successor {
            log::warn!("SIGUSR2: the new master {pid} is still running; ignored");
            return;
        }
        match self.launcher.start_successor() {
            Ok(pid) => {
                log::info!(
                    "SIGUSR2: started a new master (pid {pid}) on the same sockets; stop this \
                     one (pid {}) with SIGTERM once it serves",
                    std::process::id()
                );
                self.successor = Some(pid);
            }
            Err(error) => log::error!("SIGUSR2: cannot start a new master: {error}"),
        }
    }

    fn signal_all(&self, signal: libc::c_int) {
        for pid in self.roster.workers.keys() {
            signals::send(*pid, signal);
        }
    }
}
