//! The error log: gunicorn's line format, `[time] [pid] [LEVEL] message`, to stderr or a file.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::Sink;
use crate::config::LogLevel;

struct ErrorLog {
    sink: Mutex<Option<Sink>>,
}

static ERROR_LOG: ErrorLog = ErrorLog {
    sink: Mutex::new(None),
};

/// Points the error log at `target` ('-' is stderr). Safe to call again (make_server, run()).
pub fn init(target: &str, level: LogLevel) -> io::Result<()> {
    let sink = Sink::open(target, Sink::Stderr)?;
    *ERROR_LOG.sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    // Only the first call installs the logger; later calls just swap the sink.
    let _ = log::set_logger(&ERROR_LOG);
    log::set_max_level(match level {
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Warning => LevelFilter::Warn,
        LogLevel::Error => LevelFilter::Error,
    });
    Ok(())
}

/// Opens the error log file again (SIGUSR1, after logrotate moved it away).
pub fn reopen() -> io::Result<()> {
    let mut sink = ERROR_LOG.sink.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_mut() {
        Some(sink) => sink.reopen(),
        None => Ok(()),
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
        Level::Trace => "TRACE",
    }
}

impl Log for ErrorLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S +0000");
        let line = format!(
            "[{now}] [{}] [{}] {}\n",
            std::process::id(),
            level_name(record.level()),
            record.args()
        );
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match sink.as_mut() {
            Some(sink) => sink.write_line(line.as_bytes()),
            None => Sink::Stderr.write_line(line.as_bytes()),
        }
    }

    fn flush(&self) {}
}

/// The descriptor the error log writes to, for writers that cannot take the lock: Python's
/// faulthandler writes the stacks of a worker aborted by `--timeout` from a signal handler.
pub fn raw_fd() -> RawFd {
    let sink = ERROR_LOG.sink.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_ref() {
        Some(Sink::File { file, .. }) => file.as_raw_fd(),
        Some(Sink::Stdout) => io::stdout().as_raw_fd(),
        Some(Sink::Stderr) | None => io::stderr().as_raw_fd(),
    }
}

/// Text from the application (`wsgi.errors`), passed through as written.
pub fn write_raw(text: &[u8]) {
    let mut sink = ERROR_LOG.sink.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_mut() {
        Some(sink) => sink.write_line(text),
        None => Sink::Stderr.write_line(text),
    }
}
