//! The one place Rust errors become Python exceptions: startup errors, and request-body
//! failures that `wsgi.input.read()` raises.

use pyo3::exceptions::{
    PyConnectionResetError, PyOSError, PyRuntimeError, PyTimeoutError, PyValueError,
};
use pyo3::PyErr;

use crate::error::Error;
use crate::http::BodyReadError;

pub fn to_python(error: Error) -> PyErr {
    match error {
        Error::Config(message) => PyValueError::new_err(message),
        Error::AppLoad(message) => PyRuntimeError::new_err(message),
        Error::Bind(error) => PyOSError::new_err(error.to_string()),
        Error::Io(error) => PyOSError::new_err(error.to_string()),
    }
}

/// What `wsgi.input.read()` raises: `OSError` subclasses, so `except OSError` (what apps
/// write around I/O) catches them all; the message says what happened and which setting.
pub fn body_read_error(error: &BodyReadError) -> PyErr {
    let message = format!("error reading the request body: {error}");
    match error {
        BodyReadError::TimedOut(_) => PyTimeoutError::new_err(message),
        BodyReadError::Incomplete => PyConnectionResetError::new_err(message),
        BodyReadError::Malformed(_)
        | BodyReadError::TooLarge { .. }
        | BodyReadError::NotRequested => PyOSError::new_err(message),
    }
}
