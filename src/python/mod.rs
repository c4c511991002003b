//! The Python-facing surface: the `ferrogate` command's entry points, the fork launcher and
//! worker process body, `make_server`'s server, and the one Rust-error → exception mapping.

mod entry;
pub(crate) mod errors;
mod hooks;
mod launcher;
pub mod middleware;
mod paste;
mod reloader;
mod reread;
mod serving;
mod settings_api;
mod simple_server;

pub use entry::{main, run};
pub use hooks::log_line;
pub use settings_api::{gunicorn_table, setting_names, settings_table};
pub use simple_server::SimpleServer;
