//! Every server setting, declared once: name, type, default, unit, doc, env var.
//! The CLI, `FERROGATE_*` variables and `ferrogate.run(**kwargs)` all derive from this struct.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::BindAddress;

/// Most Python threads per worker. Threads start only when requests wait behind blocked ones
/// (see wsgi/pool.rs), so a CPU-bound app keeps using one; 64 lets an app that waits on I/O
/// (a 10 ms database call) keep a wrk -c64 load busy (benches/e2e "sleep 10 ms" row).
pub const DEFAULT_THREADS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferrogate",
    version,
    about = "A PEP 3333 WSGI server written in Rust",
    after_help = "Every option can also be set as FERROGATE_<OPTION> in the environment."
)]
pub struct Settings {
    /// The WSGI app: module:attr, module:factory(), path/to/file.py[:attr], or module
    /// (attribute `application`, then `app`).
    #[arg(value_name = "APP", env = "FERROGATE_APP")]
    pub app: Option<String>,

    /// Where to listen: host:port, [::1]:port, unix:/path. Repeat for several.
    #[arg(
        short,
        long = "bind",
        value_name = "ADDRESS",
        default_value = "127.0.0.1:8000",
        env = "FERROGATE_BIND",
        value_delimiter = ','
    )]
    pub bind: Vec<BindAddress>,

    /// Worker processes forked by the master.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..), env = "FERROGATE_WORKERS")]
    pub workers: u16,

    /// Most Python threads per worker: how many requests of one worker run the app at once.
    /// Threads start as needed.
    #[arg(long, default_value_t = DEFAULT_THREADS as u16, value_parser = clap::value_parser!(u16).range(1..), env = "FERROGATE_THREADS")]
    pub threads: u16,

    /// Mount prefix: becomes SCRIPT_NAME and is stripped from PATH_INFO.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "",
        env = "FERROGATE_ROOT_PATH"
    )]
    pub root_path: String,

    /// Change to this directory before loading the app.
    #[arg(long, value_name = "DIR", env = "FERROGATE_CHDIR")]
    pub chdir: Option<PathBuf>,

    /// Extra directories to put first on sys.path (repeat, or separate with ',').
    #[arg(
        long,
        value_name = "DIR",
        env = "FERROGATE_PYTHONPATH",
        value_delimiter = ','
    )]
    pub pythonpath: Vec<String>,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        env = "FERROGATE_GRACEFUL_TIMEOUT"
    )]
    pub graceful_timeout: f64,

    /// Seconds an idle keep-alive connection (or a client sending its headers) is waited for
    /// before it is closed (at most half as long again).
    #[arg(
        long = "keep-alive",
        value_name = "SECONDS",
        default_value_t = 5.0,
        env = "FERROGATE_KEEP_ALIVE"
    )]
    pub keep_alive: f64,

    /// Access log: a file path, or '-' for stdout. Off unless given.
    #[arg(long, value_name = "FILE", env = "FERROGATE_ACCESS_LOG")]
    pub access_log: Option<String>,

    /// Error log: a file path, or '-' for stderr.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "-",
        env = "FERROGATE_ERROR_LOG"
    )]
    pub error_log: String,

    /// Least severe error-log level written.
    #[arg(long, value_enum, default_value = "info", env = "FERROGATE_LOG_LEVEL")]
    pub log_level: LogLevel,

    /// Put the traceback of a failed request in the 500 response body (never in production).
    #[arg(long, env = "FERROGATE_DEBUG")]
    pub debug: bool,
}

impl Settings {
    /// Settings for servers made from Python (`make_server`): the defaults, nothing from argv.
    pub fn defaults() -> Settings {
        Settings::parse_from(["ferrogate"])
    }

    pub fn graceful_timeout(&self) -> Duration {
        seconds(self.graceful_timeout)
    }

    pub fn keep_alive(&self) -> Duration {
        seconds(self.keep_alive)
    }
}

/// Longest duration a setting takes (a day); beyond it a value is a typo, and deadlines
/// computed from it would overflow.
const MAX_SETTING_SECONDS: f64 = 86_400.0;

/// Negative or NaN durations are treated as zero and huge ones as a day, rather than panicking.
fn seconds(value: f64) -> Duration {
    if value.is_nan() {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(value.min(MAX_SETTING_SECONDS)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let settings = Settings::defaults();
        assert_eq!(settings.workers, 1);
        assert_eq!(settings.threads as usize, DEFAULT_THREADS);
        assert_eq!(settings.bind, vec!["127.0.0.1:8000".parse().unwrap()]);
        assert_eq!(settings.graceful_timeout(), Duration::from_secs(30));
        assert!(settings.access_log.is_none());
    }

    #[test]
    fn bind_repeats_and_zero_workers_is_refused() {
        let s = Settings::try_parse_from(["f", "app", "-b", ":1", "--bind", "unix:/x"]).unwrap();
        assert_eq!(s.bind.len(), 2);
        assert!(Settings::try_parse_from(["f", "app", "--workers", "0"]).is_err());
        assert!(Settings::try_parse_from(["f", "app", "--bind", "nonsense"]).is_err());
    }

    #[test]
    fn negative_durations_become_zero() {
        assert_eq!(seconds(-1.0), Duration::ZERO);
        assert_eq!(seconds(f64::NAN), Duration::ZERO);
        assert_eq!(seconds(1e19), Duration::from_secs(86_400));
    }
}
