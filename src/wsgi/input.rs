//! `wsgi.input`: the request body, streamed from the socket as the app reads it.
//!
//! A body that came with its head is already here. The rest of a body of known length is read
//! by the app's thread straight off the socket, with the GIL released, into the `bytes` that
//! `read()` returns; any other body is read ahead by the connection into a small bounded
//! channel. A body the app leaves unread is read and discarded by the connection once the app
//! drops it.

use std::mem::MaybeUninit;
use std::time::Duration;

use bytes::{Buf, Bytes};
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::blocking::{wait_for, WaitingOnClient};
use crate::http::{BodyReadError, RequestBody};
use crate::python::errors::body_read_error;

/// Largest `read()` answered by one `bytes` filled straight from the socket. Why a bound: the
/// `bytes` is allocated before the client has sent what it claims to send.
const DIRECT_READ_MAX_BYTES: usize = 1024 * 1024;
/// Most bytes taken off the socket at once for `readline()` and reads past the bound above.
const DIRECT_CHUNK_BYTES: usize = 64 * 1024;

/// How much longer than the socket timeout a thread waits for the connection to hand it body
/// data. Why: the connection times the client out itself and says so; this only guards
/// against a connection that vanished without a word.
const BACKSTOP_SLACK: Duration = Duration::from_secs(1);

/// The next piece of the body, parking this thread while none is ready.
fn next_data_blocking(
    body: &mut RequestBody,
    timeout: Duration,
) -> Result<Option<Bytes>, BodyReadError> {
    let next = std::future::poll_fn(|cx| body.poll_next(cx));
    match wait_for(next, timeout + BACKSTOP_SLACK) {
        None => Err(BodyReadError::TimedOut(timeout)),
        Some(None) => Ok(None),
        Some(Some(Err(error))) => Err(error),
        Some(Some(Ok(data))) => Ok(Some(data)),
    }
}

#[pyclass(module = "ferrogate")]
pub struct WsgiInput {
    /// Received but not yet returned to the app.
    pending: Bytes,
    /// `None` once the body has ended (or there never was one).
    source: Option<RequestBody>,
    /// `--socket-timeout`.
    timeout: Duration,
}

impl WsgiInput {
    pub fn new(mut source: Option<RequestBody>, timeout: Duration) -> WsgiInput {
        WsgiInput {
            pending: source
                .as_mut()
                .and_then(RequestBody::take_first)
                .unwrap_or_default(),
            source,
            timeout,
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
            let timeout = self.timeout;
            let next = py.detach(|| match body.direct_mut() {
                Some(direct) => {
                    let _waiting = WaitingOnClient::begin();
                    direct.read_chunk(DIRECT_CHUNK_BYTES).map(Some)
                }
                None => next_data_blocking(body, timeout),
            });
            match next {
                Ok(Some(data)) => self.pending = data,
                Ok(None) => {
                    self.source = None;
                    return Ok(false);
                }
                Err(error) => {
                    self.source = None;
                    return Err(body_read_error(&error));
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
        if !line {
            if let Some(answer) = self.take_from_socket(py, limit)? {
                return Ok(answer);
            }
        }
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

    /// PERF: a read the socket must help answer is filled straight from it: `pending`, then
    /// the kernel copies the rest into the `bytes` returned. `None` when this does not apply.
    fn take_from_socket<'py>(
        &mut self,
        py: Python<'py>,
        limit: usize,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let Some(direct) = self.source.as_mut().and_then(RequestBody::direct_mut) else {
            return Ok(None);
        };
        let on_socket = usize::try_from(direct.remaining()).unwrap_or(usize::MAX);
        let from_socket = limit.saturating_sub(self.pending.len()).min(on_socket);
        let total = self.pending.len() + from_socket;
        if from_socket == 0 || total > DIRECT_READ_MAX_BYTES {
            return Ok(None);
        }
        let (answer, destination) = uninit_bytes(py, total)?;
        let (front, rest) = destination.split_at_mut(self.pending.len());
        // SAFETY: `front` is exactly `pending`'s length, and a fresh object cannot overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.pending.as_ptr(),
                front.as_mut_ptr().cast(),
                front.len(),
            );
        }
        self.pending = Bytes::new();
        match py.detach(|| {
            let _waiting = WaitingOnClient::begin();
            direct.read_exact(rest)
        }) {
            Ok(()) => Ok(Some(answer)),
            Err(error) => {
                self.source = None;
                Err(body_read_error(&error))
            }
        }
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

/// A new `bytes` of `length` bytes and the memory to write them to before Python sees it.
/// Why not `PyBytes::new_with`: it zeroes the memory first, a pass as costly as a copy.
fn uninit_bytes(
    py: Python<'_>,
    length: usize,
) -> PyResult<(Bound<'_, PyBytes>, &mut [MaybeUninit<u8>])> {
    // SAFETY: a null source asks CPython for an uninitialised object of `length` bytes, which
    // nothing reads until the caller has written them (on error the object is dropped unread);
    // the slice lives no longer than the object it points into, which the caller holds.
    unsafe {
        let object =
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), length as pyo3::ffi::Py_ssize_t);
        let bytes: Bound<'_, PyBytes> =
            Bound::from_owned_ptr_or_err(py, object)?.cast_into_unchecked();
        let data = pyo3::ffi::PyBytes_AsString(bytes.as_ptr()).cast::<MaybeUninit<u8>>();
        Ok((bytes, std::slice::from_raw_parts_mut(data, length)))
    }
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
