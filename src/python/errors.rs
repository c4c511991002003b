//! The one place Rust errors become Python exceptions: startup errors, request-body
//! failures that `wsgi.input.read()` raises, and `RequestTimeout`, raised in the thread of a
//! request past `--request-timeout` (wsgi/pool/request_timeout.rs).

use pyo3::exceptions::{
    PyBaseException, PyConnectionResetError, PyOSError, PyRuntimeError, PyTimeoutError,
    PyValueError,
};
use pyo3::PyErr;

pyo3::create_exception!(
    ferrogate,
    RequestTimeout,
    PyBaseException,
    "Raised in the thread of a request that ran past --request-timeout. A BaseException, so \
     that `except Exception` in the app does not swallow it: `finally` blocks and the \
     response's close() run, the client gets 504 if nothing was sent yet, and the worker \
     serves on."
);

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
