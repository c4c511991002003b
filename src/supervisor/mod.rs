//! The master process: starts workers through a `WorkerLauncher`, restarts those that die,
//! turns signals into graceful or immediate stops, and applies the process settings (pid
//! file, umask, user and group). Knows nothing of WSGI or Python: the launcher (in
//! `python/`) does the fork and runs the worker.

mod master;
mod open_files;
mod process;
pub mod signals;

pub use master::{supervise, SupervisorOptions, WorkerLauncher, EXIT_WORKER_BOOT_FAILED};
pub use open_files::raise_open_file_limit;
pub use process::{resolve_identity, set_umask, Identity, PidFile};
