//! The master's record of its workers: what each is for (`Role`), whether it accepts yet,
//! and the pending starts. The master (master.rs) changes roles; this file only says what
//! a role means and answers questions about the whole set. Knows nothing of HTTP or Python.

use std::collections::HashMap;
use std::time::Instant;

use super::heartbeat::{Retirement, WorkerSlot};

/// Why a worker is on its way out, still serving until a replacement accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Succession {
    /// SIGHUP: every worker of the old code is replaced.
    Reload,
    /// The worker asked (max requests, memory).
    Asked(Retirement),
}

impl Succession {
    pub fn describe(self) -> &'static str {
        match self {
            Succession::Reload => "reload",
            Succession::Asked(why) => why.setting(),
        }
    }
}

/// What the master expects of one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One of the `--workers` the master keeps; replaced if it dies.
    Keeper,
    /// Serves until a worker started after it accepts, then retires; not a keeper any more,
    /// so its replacement is already on its way.
    Outgoing(Succession),
    /// Sent SIGTERM: drains and exits; SIGKILL at `kill_at` if still there.
    Retiring { kill_at: Option<Instant> },
    /// Stuck (`--timeout`): sent SIGABRT for its stacks; SIGKILL at `kill_at`.
    Aborted { kill_at: Option<Instant> },
}

impl Role {
    /// Whether the worker still takes connections as far as the master is concerned.
    pub fn is_serving(self) -> bool {
        matches!(self, Role::Keeper | Role::Outgoing(_))
    }
}

pub struct Worker {
    pub slot: WorkerSlot,
    pub started: Instant,
    /// Its slot said it accepts connections (the app is loaded, the accept loops run).
    pub accepting: bool,
    /// When the master first saw it accepting (CLOCK_MONOTONIC ns): the watchdog counts
    /// from there at the earliest.
    pub accepting_since_ns: u64,
    /// Young deaths in a row of the line of workers this one continues (backoff.rs).
    pub crash_streak: u32,
    pub role: Role,
}

/// A worker to start at `at` (now, or after a crash-loop pause).
#[derive(Debug, Clone, Copy)]
pub struct PendingStart {
    pub at: Instant,
    pub crash_streak: u32,
}

#[derive(Default)]
pub struct Roster {
    pub workers: HashMap<libc::pid_t, Worker>,
    pub pending: Vec<PendingStart>,
}

impl Roster {
    pub fn count(&self, which: impl Fn(&Worker) -> bool) -> usize {
        self.workers.values().filter(|worker| which(worker)).count()
    }

    pub fn keepers(&self) -> usize {
        self.count(|worker| worker.role == Role::Keeper)
    }

    pub fn accepting_keepers(&self) -> usize {
        self.count(|worker| worker.role == Role::Keeper && worker.accepting)
    }

    /// Whether some worker other than those retiring serves clients.
    pub fn anyone_serving(&self) -> bool {
        self.workers
            .values()
            .any(|worker| worker.accepting && worker.role.is_serving())
    }

    /// The outgoing workers to retire now, so that as many stay serving as keepers are still
    /// missing (not started, or not accepting yet) from `wanted`. First those not accepting
    /// (they serve nobody), then those a reload replaces (old code), then the oldest.
    pub fn to_hand_over(&self, wanted: usize) -> Vec<libc::pid_t> {
        let missing = wanted.saturating_sub(self.accepting_keepers());
        let mut outgoing: Vec<_> = self
            .workers
            .iter()
            .filter_map(|(pid, worker)| match worker.role {
                Role::Outgoing(why) => Some((
                    (worker.accepting, why != Succession::Reload, worker.started),
                    *pid,
                )),
                _ => None,
            })
            .collect();
        outgoing.sort();
        let retiring = outgoing.len().saturating_sub(missing);
        outgoing
            .into_iter()
            .take(retiring)
            .map(|(_, pid)| pid)
            .collect()
    }

    /// The keeper to retire when there are too many: one not accepting yet, else the newest.
    pub fn keeper_to_retire(&self) -> Option<libc::pid_t> {
        self.workers
            .iter()
            .filter(|(_, worker)| worker.role == Role::Keeper)
            .max_by_key(|(_, worker)| (!worker.accepting, worker.started))
            .map(|(pid, _)| *pid)
    }

    /// Drops the pending start due last; whether there was one.
    pub fn drop_latest_pending(&mut self) -> bool {
        let latest = self
            .pending
            .iter()
            .enumerate()
            .max_by_key(|(_, start)| start.at)
            .map(|(index, _)| index);
        match latest {
            Some(index) => {
                self.pending.swap_remove(index);
                true
            }
            None => false,
        }
    }

    /// Takes the pending starts that are due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<PendingStart> {
        let (due, later) = self.pending.iter().partition(|start| start.at <= now);
        self.pending = later;
        due
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::supervisor::heartbeat::Heartbeats;

    fn roster(workers: &[(libc::pid_t, Role, bool)]) -> Roster {
        let mut heartbeats = Heartbeats::new(workers.len()).unwrap();
        let start = Instant::now();
        let mut roster = Roster::default();
        for (age, (pid, role, accepting)) in workers.iter().enumerate() {
            let worker = Worker {
                slot: heartbeats.claim().unwrap(),
                // Listed oldest first.
                started: start + Duration::from_secs(age as u64),
                accepting: *accepting,
                accepting_since_ns: 0,
                crash_streak: 0,
                role: *role,
            };
            roster.workers.insert(*pid, worker);
        }
        roster
    }

    const RELOAD: Role = Role::Outgoing(Succession::Reload);
    const ASKED: Role = Role::Outgoing(Succession::Asked(Retirement::MaxRequests));

    #[test]
    fn an_old_worker_retires_for_each_new_one_that_accepts() {
        let booting = roster(&[
            (1, RELOAD, true),
            (2, RELOAD, true),
            (3, Role::Keeper, false),
        ]);
        assert_eq!(booting.to_hand_over(2), Vec::<libc::pid_t>::new());
        let one_up = roster(&[
            (1, RELOAD, true),
            (2, RELOAD, true),
            (3, Role::Keeper, true),
            (4, Role::Keeper, false),
        ]);
        assert_eq!(one_up.to_hand_over(2), vec![1], "the oldest first");
        let all_up = roster(&[
            (1, RELOAD, true),
            (2, RELOAD, true),
            (3, Role::Keeper, true),
            (4, Role::Keeper, true),
        ]);
        assert_eq!(all_up.to_hand_over(2), vec![1, 2]);
    }

    #[test]
    fn workers_serving_nobody_and_old_code_go_first() {
        let mixed = roster(&[
            (1, ASKED, true),
            (2, RELOAD, true),
            (3, RELOAD, false),
            (4, Role::Keeper, true),
        ]);
        assert_eq!(mixed.to_hand_over(2), vec![3, 2]);
    }

    #[test]
    fn the_keeper_retired_when_too_many_is_a_booting_one_else_the_newest() {
        let all_up = roster(&[
            (1, Role::Keeper, true),
            (2, Role::Keeper, true),
            (3, ASKED, true),
        ]);
        assert_eq!(all_up.keeper_to_retire(), Some(2));
        let one_booting = roster(&[(1, Role::Keeper, false), (2, Role::Keeper, true)]);
        assert_eq!(one_booting.keeper_to_retire(), Some(1));
        assert!(one_booting.anyone_serving());
        assert!(!roster(&[
            (1, Role::Keeper, false),
            (2, Role::Retiring { kill_at: None }, true)
        ])
        .anyone_serving());
    }
}
