//! What the master does when a child exits: a worker is reaped, counted and, if it was
//! meant to keep serving, replaced (after a pause if it died young); a worker that could not
//! load the app ends a reload, is retried, or stops the master; a successor master's exit
//! is logged. Deciding when to start, retire or kill workers is master.rs's.

use std::time::Instant;

use super::{Master, Phase, EXIT_WORKER_BOOT_FAILED, EXIT_WORKER_RETIRED, KILL_MARGIN};
use crate::observe::metrics::{count_restart, RestartCause};
use crate::supervisor::backoff;
use crate::supervisor::launcher::MasterEvent;
use crate::supervisor::roster::{PendingStart, Role, Succession, Worker};
use crate::supervisor::signals::{self, ChildExit};

impl Master<'_> {
    pub(super) fn reap_workers(&mut self) {
        while let Some((pid, exit)) = signals::reap() {
            if self.successor == Some(pid) {
                self.successor = None;
                log::warn!(
                    "The new master {pid} {}; this one serves on",
                    describe(exit)
                );
                self.launcher.on_event(MasterEvent::SuccessorExited(pid));
                continue;
            }
            let Some(worker) = self.roster.workers.remove(&pid) else {
                continue;
            };
            self.heartbeats.release(&worker.slot);
            self.launcher.on_event(MasterEvent::WorkerExited(pid));
            if !matches!(self.phase, Phase::Running) {
                continue;
            }
            let how = describe(exit);
            match worker.role {
                Role::Retiring { .. } => log::info!("Worker {pid} retired ({how})"),
                Role::Aborted { .. } => log::info!("Worker {pid}, which timed out, {how}"),
                Role::Outgoing(_) => {
                    log::warn!("Worker {pid} {how} before a new worker took its place")
                }
                Role::Keeper => self.on_keeper_exit(pid, &worker, exit),
            }
        }
    }

    /// A keeper ended without being told to: replace it, after a pause if it died young.
    fn on_keeper_exit(&mut self, pid: libc::pid_t, worker: &Worker, exit: ChildExit) {
        match exit {
            // It was told to stop by someone else after asking to retire: planned.
            ChildExit::Code(EXIT_WORKER_RETIRED) => {
                log::info!("Worker {pid} retired; starting a new one");
            }
            ChildExit::Code(EXIT_WORKER_BOOT_FAILED) => self.on_boot_failure(pid, worker),
            _ => {
                let lived = worker.started.elapsed();
                // A worker that served and then stopped gracefully (a SIGTERM sent to it) did
                // not die young, however short its life.
                let graceful = exit == ChildExit::Code(0) && worker.accepting;
                let crash_streak = match graceful {
                    true => 0,
                    false => backoff::next_streak(worker.crash_streak, lived),
                };
                let pause = backoff::pause(crash_streak);
                count_restart(match graceful {
                    true => RestartCause::Stopped,
                    false => RestartCause::Died,
                });
                let when = match crash_streak {
                    0 => String::new(),
                    n => format!(" in {}s ({n} early exit(s) in a row)", pause.as_secs()),
                };
                let level = match exit {
                    ChildExit::Code(0) => log::Level::Info,
                    _ => log::Level::Warn,
                };
                log::log!(
                    level,
                    "Worker {pid} {} after {:.1}s; starting a new one{when}",
                    describe(exit),
                    lived.as_secs_f64()
                );
                self.roster.pending.push(PendingStart {
                    at: Instant::now() + pause,
                    crash_streak,
                });
            }
        }
    }

    /// A keeper could not load the app. During a reload the old workers stay; while others
    /// serve, it is tried again after a pause; when nobody serves, the master stops.
    fn on_boot_failure(&mut self, pid: libc::pid_t, worker: &Worker) {
        let replaced: Vec<libc::pid_t> = self
            .roster
            .workers
            .iter()
            .filter(|(_, w)| w.role == Role::Outgoing(Succession::Reload))
            .map(|(pid, _)| *pid)
            .collect();
        if !replaced.is_empty() {
            log::error!(
                "Reload failed: worker {pid} could not load the app (the error is above); the \
                 {} old worker(s) keep serving",
                replaced.len()
            );
            for old in replaced {
                if let Some(old) = self.roster.workers.get_mut(&old) {
                    old.role = Role::Keeper;
                }
            }
            // `balance` retires the new workers that are now too many.
            return;
        }
        if self.roster.keepers() + self.roster.pending.len() >= self.options.workers {
            // A sibling of a failed reload, whose old workers serve on.
            log::error!("Worker {pid} could not load the app either (the error is above)");
            return;
        }
        if self.roster.anyone_serving() {
            count_restart(RestartCause::BootFailed);
            let crash_streak = worker.crash_streak.saturating_add(1);
            let pause = backoff::pause(crash_streak);
            log::error!(
                "Worker {pid} could not load the app (the error is above); the other workers \
                 keep serving; trying again in {}s",
                pause.as_secs()
            );
            self.roster.pending.push(PendingStart {
                at: Instant::now() + pause,
                crash_streak,
            });
            return;
        }
        log::error!("Worker {pid} failed to boot; shutting down");
        self.signal_all(libc::SIGTERM);
        self.phase = Phase::Stopping {
            kill_at: Instant::now() + self.options.graceful_timeout + KILL_MARGIN,
            exit_code: EXIT_WORKER_BOOT_FAILED,
        };
    }
}

fn describe(exit: ChildExit) -> String {
    match exit {
        ChildExit::Code(code) => format!("exited with code {code}"),
        ChildExit::Signal(signal) => {
            format!("was killed by signal {signal} ({})", signals::name(signal))
        }
    }
}
