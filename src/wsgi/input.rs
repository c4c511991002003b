//! `wsgi.input`: the request body, streamed from the socket as the app reads it.
//!
//! The Python thread polls hyper's body itself, with the GIL released, parking until the
//! I/O thread delivers data. When the request is queued the body is polled once (unless the
//! client waits for `100 Continue`), which tells hyper to read it, so a small body is already
//! at hand when the app asks for it. A body the app leaves unread is drained on the I/O
//! runtime so the connection can carry the next request.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use http_body::Body;
use hyper::body::Incoming;
use pyo3::exceptions::{PyOSError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::blocking::{wait_for, CLIENT_TIMEOUT};
use super::reply::Outbox;

/// Most of a request body the server reads and discards when the app did not read it, so
/// the connection can carry the next request. Beyond it the connection is closed instead;
/// closing while the client is still sending can make its kernel discard our response.
const MAX_UNREAD_BODY_DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// A request body on its way from the I/O thread to the app.
pub struct RequestBody {
    body: Incoming,
    /// Data already taken from `body` when the request was queued.
    first: Option<Bytes>,
    /// A read error met while taking `first`; the app gets it after `first`.
    failure: Option<String>,
    /// The client waits for `100 Continue`; if the app never reads, the body will not come.
    expects_continue: bool,
    /// The I/O runtime, where an unread body is drained.
    runtime: tokio::runtime::Handle,
    /// Where a finished body goes to be dropped on the I/O thread.
    outbox: Arc<Outbox>,
}

impl RequestBody {
    /// Call on the I/O runtime as the request arrives.
    pub fn new(body: Incoming, expects_continue: bool, outbox: Arc<Outbox>) -> RequestBody {
        let mut body = RequestBody {
            body,
            first: None,
            failure: None,
            expects_continue,
            runtime: tokio::runtime::Handle::current(),
            outbox,
        };
        // Signals hyper that the body is wanted, so its connection task reads it now.
        body.take_arrived_data();
        body
    }

    /// Takes the data hyper has read so far, if any, without waiting. Call on the I/O runtime
    /// before the request is queued: taken on a Python thread, the chunk would wake the
    /// connection task from outside the runtime, an eventfd write per request (post1k).
    pub fn take_arrived_data(&mut self) {
        if self.expects_continue || self.first.is_some() || self.failure.is_some() {
            return;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut self.body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.first = frame.into_data().ok().filter(|data| !data.is_empty());
            }
            // Kept for the app: a body that cannot be read must not look like a short one.
            Poll::Ready(Some(Err(error))) => self.failure = Some(error.to_string()),
            Poll::Ready(None) | Poll::Pending => {}
        }
    }
}

/// The next data frame (trailers skipped), parking this thread while none is ready.
fn next_data_blocking(body: &mut Incoming) -> Result<Option<Bytes>, String> {
    loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx));
        match wait_for(next, CLIENT_TIMEOUT) {
            None => return Err(format!("no body data for {}s", CLIENT_TIMEOUT.as_secs())),
            Some(None) => return Ok(None),
            Some(Some(Err(error))) => return Err(error.to_string()),
            Some(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Reads and discards what the app left unread, so keep-alive stays in step (RFC 9112 §9.3).
/// Dropping the body early instead makes hyper close the connection after the response.
async fn drain(mut body: Incoming) {
    let mut discarded = 0u64;
    while discarded <= MAX_UNREAD_BODY_DRAIN_BYTES {
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout(CLIENT_TIMEOUT, next).await {
            Ok(Some(Ok(frame))) => discarded += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

#[pyclass(module = "ferrogate")]
pub struct WsgiInput {
    /// Received but not yet returned to the app.
    pending: Bytes,
    /// `None` once the body has ended (or there never was one).
    source: Option<RequestBody>,
    /// Whether the app asked for the body (after which a 100-continue body does come).
    read_started: bool,
}

impl WsgiInput {
    pub fn new(source: Option<RequestBody>) -> WsgiInput {
        WsgiInput {
            pending: Bytes::new(),
            source,
            read_started: false,
        }
    }

    /// Makes `pending` non-empty, waiting for the client without the GIL; false at the end.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        self.read_started = true;
        while self.pending.is_empty() {
            let Some(source) = self.source.as_mut() else {
                return Ok(false);
            };
            if let Some(first) = source.first.take() {
                self.pending = first;
                continue;
            }
            if let Some(reason) = source.failure.take() {
                self.source = None;
                return Err(read_error(&reason));
            }
            if source.body.is_end_stream() {
                self.source = None;
                return Ok(false);
            }
            let body = &mut source.body;
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
        match &self.source {
            None => true,
            Some(source) => {
                source.first.is_none() && source.failure.is_none() && source.body.is_end_stream()
            }
        }
    }
}

impl WsgiInput {
    /// The response is done: whatever the app left unread is drained on the I/O runtime, and
    /// later reads (through a reference the app kept) see the end of the body.
    pub fn finish_request(&mut self) {
        self.pending = Bytes::new();
        let Some(source) = self.source.take() else {
            return;
        };
        if source.body.is_end_stream() {
            // PERF: dropped here, it would wake its connection task from outside the runtime,
            // an eventfd write per request (benches/e2e post1k).
            source.outbox.drop_finished_body(source.body);
            return;
        }
        if source.expects_continue && !self.read_started {
            return;
        }
        source.runtime.spawn(drain(source.body));
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
