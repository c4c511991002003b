//! `wsgi.errors`: a text stream whose writes go to the error log, written without the GIL.

use pyo3::prelude::*;
use pyo3::types::PyIterator;

use crate::observe::error_log;

#[pyclass(module = "ferrogate", frozen)]
pub struct WsgiErrors;

#[pymethods]
impl WsgiErrors {
    fn write(&self, py: Python<'_>, text: String) -> usize {
        let written = text.chars().count();
        py.detach(|| error_log::write_raw(text.as_bytes()));
        written
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut text = String::new();
        for line in PyIterator::from_object(lines)? {
            text.push_str(&line?.extract::<String>()?);
        }
        py.detach(|| error_log::write_raw(text.as_bytes()));
        Ok(())
    }

    /// Every write already reached the log; nothing is buffered.
    fn flush(&self) {}
}
