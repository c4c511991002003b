//! The one place Rust errors become Python exceptions.

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

use crate::error::Error;

pub fn to_python(error: Error) -> PyErr {
    match error {
        Error::Config(message) => PyValueError::new_err(message),
        Error::AppLoad(message) => PyRuntimeError::new_err(message),
        Error::Bind(error) => PyOSError::new_err(error.to_string()),
        Error::Io(error) => PyOSError::new_err(error.to_string()),
    }
}
