//! The master process: starts workers through a `WorkerLauncher`, replaces those that die
//! (after a back-off when they die young), retires and replaces those that ask to
//! (`--max-requests`, `--max-worker-memory`) or are stuck (`--timeout`), turns signals into
//! graceful or immediate stops and reloads, and applies the process settings (pid file,
//! umask, user and group). Workers report to it through heartbeat slots in shared memory.
//! Knows nothing of WSGI or Python: the launcher (in `python/`) does the fork and runs the
//! worker, and gives the worker's report (`report.rs`) its Python threads' progress.

mod backoff;
pub mod control;
mod heartbeat;
mod launcher;
mod master;
mod open_files;
mod process;
mod report;
mod roster;
pub mod signals;
pub mod upgrade;
mod watchdog;

pub use heartbeat::WorkerSlot;
pub use launcher::{MasterEvent, SupervisorOptions, WorkerLauncher};
pub use master::{slot_capacity, supervise, EXIT_WORKER_BOOT_FAILED, EXIT_WORKER_RETIRED};
pub use open_files::raise_open_file_limit;
pub use process::{resolve_identity, set_umask, Identity, PidFile};
pub use report::{report, Progress, RetirementPolicy, RunningRequest};
