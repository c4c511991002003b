//! The crate's startup errors and the exit codes they map to. Request-time failures are
//! mapped to HTTP statuses in `http::status`, and to Python exceptions in `python::errors`.

use std::fmt;
use std::io;

use crate::server::BindError;

/// The command line or a setting is wrong (also clap's code for usage errors).
pub const EXIT_USAGE: i32 = 2;
/// The app could not be imported; see `supervisor::EXIT_WORKER_BOOT_FAILED`.
pub const EXIT_APP_LOAD: i32 = crate::supervisor::EXIT_WORKER_BOOT_FAILED;
/// A `--bind` address could not be listened on.
pub const EXIT_BIND: i32 = 4;

#[derive(Debug)]
pub enum Error {
    /// A setting is unusable; the message names it.
    Config(String),
    Bind(BindError),
    /// The app spec could not be loaded; the message names it and carries the exception.
    AppLoad(String),
    Io(io::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => EXIT_USAGE,
            Error::Bind(_) => EXIT_BIND,
            Error::AppLoad(_) => EXIT_APP_LOAD,
            Error::Io(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(message) | Error::AppLoad(message) => f.write_str(message),
            Error::Bind(error) => error.fmt(f),
            Error::Io(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind(error) => Some(error),
            Error::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<BindError> for Error {
    fn from(error: BindError) -> Error {
        Error::Bind(error)
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::Io(error)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
