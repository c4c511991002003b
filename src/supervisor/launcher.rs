//! What the master asks of whoever starts its workers (`WorkerLauncher`, implemented in
//! python/launcher.rs), what it tells it (`MasterEvent`), and the options it runs with.
//! Knows nothing of how a worker is made.

use std::io;
use std::time::Duration;

use super::heartbeat::WorkerSlot;

/// Starts one worker process, giving it `slot`, and returns its pid (in the parent; the
/// child never returns).
pub trait WorkerLauncher {
    fn launch(&mut self, slot: WorkerSlot) -> io::Result<libc::pid_t>;

    /// Closes the master's copies of the listening sockets (a stop began): once the workers
    /// have taken the clients waiting in the backlog and closed theirs, new clients are
    /// refused at once instead of waiting in a backlog nobody reads.
    fn stop_listening(&mut self);

    /// Reopens the master's log files (SIGUSR1); the master then passes the signal on to
    /// every worker, which reopens its own.
    fn reopen_logs(&mut self);

    /// SIGHUP: reads the settings again (the config file may have changed) before the new
    /// workers start; returns the master's options as they now read.
    fn reread_settings(&mut self) -> SupervisorOptions;

    /// SIGUSR2: starts a new master process running the same command, which inherits the
    /// listening sockets; returns its pid. This master keeps serving until it is stopped.
    fn start_successor(&mut self) -> io::Result<libc::pid_t>;

    /// Something happened that the launcher's side (the config file's hooks) may act on.
    fn on_event(&mut self, event: MasterEvent);
}

/// What the master tells its launcher besides starting workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterEvent {
    /// A SIGHUP reload begins.
    Reload,
    /// A worker process ended and was reaped.
    WorkerExited(libc::pid_t),
    /// SIGTTIN or SIGTTOU changed the number of workers.
    WorkerCountChanged { new: usize, old: usize },
    /// The master started by SIGUSR2 ended (it failed to start, or was stopped): this one
    /// is the only master again.
    SuccessorExited(libc::pid_t),
}

#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    pub workers: usize,
    pub graceful_timeout: Duration,
    /// `--timeout`; `None` when 0 (off).
    pub timeout: Option<Duration>,
}
