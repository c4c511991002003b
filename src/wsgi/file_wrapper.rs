//! `wsgi.file_wrapper`: iterates any file-like object in blocks; when it wraps a regular file
//! the response path maps the file and hands the pages to the socket without copying them
//! through Python (see `wsgi::file_body`).

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// PEP 3333's suggested default block size for file-like objects without a better one.
const DEFAULT_BLOCK_SIZE: usize = 8192;

#[pyclass(module = "ferrogate", frozen)]
pub struct FileWrapper {
    pub filelike: Py<PyAny>,
    pub block_size: usize,
    /// PEP 3333: close() closes the file once, however many times it is called.
    closed: AtomicBool,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = DEFAULT_BLOCK_SIZE))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper {
            filelike,
            block_size: blksize.max(1),
            closed: AtomicBool::new(false),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let block = self
            .filelike
            .bind(py)
            .call_method1("read", (self.block_size,))?;
        if block.len().unwrap_or(0) == 0 {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(block)
    }

    pub fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let filelike = self.filelike.bind(py);
        if filelike.hasattr("close")? {
            filelike.call_method0("close")?;
        }
        Ok(())
    }
}
