//! `wsgi.input`: the request body, streamed from the socket as the app reads it.
//!
//! The connection reads the body ahead of the app (a body that came with its head is already
//! here), into a small bounded channel; the Python thread waits on it with the GIL released.
//! A body the app leaves unread is read and discarded by the connection once the app drops it.

use bytes::{Buf, Bytes};
use pyo3::exceptions::{PyOSError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::blocking::{wait_for, CLIENT_TIMEOUT};
use crate::http::RequestBody;

/// The next piece of the body, parking this thread while none is ready.
fn next_data_blocking(body: &mut RequestBody) -> Result<Option<Bytes>, String> {
    let next = std::future::poll_fn(|cx| body.poll_next(cx));
    match wait_for(next, CLIENT_TIMEOUT) {
        None => Err(format!("no body data for {}s", CLIENT_TIMEOUT.as_secs())),
        Some(None) => Ok(None),
        Some(Some(Err(error))) => Err(error.to_string()),
        Some(Some(Ok(data))) => Ok(Some(data)),
    }
}

#[pyclass(module = "ferrogate")]
pub struct WsgiInput {
    /// Received but not yet returned to the app.
    pending: Bytes,
    /// `None` once the body has ended (or there never was one).
    source: Option<RequestBody>,
}

impl WsgiInput {
    pub fn new(source: Option<RequestBody>) -> WsgiInput {
        WsgiInput {
            pending: Bytes::new(),
            source,
        }
    }

    /// Makes `pending` non-empty, waiting for the client without the GIL; false at the end.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        while self.pending.is_empty() {
            let Some(body) = self.source.as_mut() else {
                return Ok(false);
            };
            if body.is_end_stream() {
                self.source = None;
                return Ok(false);
            }
            match py.detach(|| next_data_blocking(body)) {
                Ok(Some(data)) => self.pending = data,
                Ok(None) => {
                    self.source = None;
                    return Ok(false);
                }
                Err(reason) => {
                    self.source = None;
                    return Err(read_error(&reason));
                }
            }
        }
        Ok(true)
    }

    /// Up to `limit` bytes, stopping after the first newline when `line` is set.
    fn take<'py>(
        &mut self,
        py: Python<'py>,
        limit: usize,
        line: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut collected: Vec<u8> = Vec::new();
        while collected.len() < limit && self.fill(py)? {
            let wanted = (limit - collected.len()).min(self.pending.len());
            let (count, done) = match line
                .then(|| self.pending[..wanted].iter().position(|&b| b == b'\n'))
                .flatten()
            {
                Some(newline) => (newline + 1, true),
                None => (wanted, false),
            };
            if collected.is_empty()
                && (done || count == limit || (count == self.pending.len() && self.at_end()))
            {
                // PERF: the common case (one chunk holds the answer) copies once.
                let answer = PyBytes::new(py, &self.pending[..count]);
                self.pending.advance(count);
                return Ok(answer);
            }
            collected.extend_from_slice(&self.pending[..count]);
            self.pending.advance(count);
            if done {
                break;
            }
        }
        Ok(PyBytes::new(py, &collected))
    }

    /// Whether nothing follows `pending` (known without waiting).
    fn at_end(&self) -> bool {
        self.source.as_ref().is_none_or(RequestBody::is_end_stream)
    }
}

impl WsgiInput {
    /// The response is done: the connection reads and discards whatever the app left unread,
    /// and later reads (through a reference the app kept) see the end of the body.
    pub fn finish_request(&mut self) {
        self.pending = Bytes::new();
        self.source = None;
    }
}

impl Drop for WsgiInput {
    fn drop(&mut self) {
        self.finish_request();
    }
}

fn read_error(reason: &str) -> PyErr {
    PyOSError::new_err(format!("error reading the request body: {reason}"))
}

/// PEP 3333 passes sizes as optional ints; a negative or absent size means "no limit".
fn limit(size: Option<isize>) -> usize {
    match size {
        Some(n) if n >= 0 => n as usize,
        _ => usize::MAX,
    }
}

#[pymethods]
impl WsgiInput {
    #[pyo3(signature = (size = None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.take(py, limit(size), false)
    }

    #[pyo3(signature = (size = None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.take(py, limit(size), true)
    }

    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = limit(hint);
        let lines = PyList::empty(py);
        let mut total = 0usize;
        loop {
            let line = self.take(py, usize::MAX, true)?;
            let length = line.as_bytes().len();
            if length == 0 {
                break;
            }
            lines.append(line)?;
            total += length;
            if hint != 0 && total >= hint {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.take(py, usize::MAX, true)?;
        if line.as_bytes().is_empty() {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(line)
    }
}
