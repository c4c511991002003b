//! The master process: starts workers through a `WorkerLauncher`, restarts those that die,
//! and turns signals into graceful or immediate stops. Knows nothing of WSGI or Python: the
//! launcher (in `python/`) does the fork and runs the worker.

mod master;
mod open_files;
pub mod signals;

pub use master::{supervise, SupervisorOptions, WorkerLauncher, EXIT_WORKER_BOOT_FAILED};
pub use open_files::raise_open_file_limit;
