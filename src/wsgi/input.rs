//! `wsgi.input`: the request body, streamed from the socket as the app reads it.
//!
//! A small task on the I/O runtime (`InputSource::pump`) moves body frames into a bounded
//! channel, starting only when the app first reads, so `Expect: 100-continue` is answered
//! exactly when the body is wanted and an unread body is never pulled in. The Python side
//! (`WsgiInput`) waits on that channel with the GIL released.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::Body;
use hyper::body::Incoming;
use pyo3::exceptions::{PyOSError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use tokio::sync::{mpsc, oneshot};

/// Body frames buffered between the socket and the app. With hyper's frames of at most a
/// read buffer (~400 KiB), this bounds a request's body in memory to well under 2 MiB.
const INPUT_CHANNEL_FRAMES: usize = 4;

/// Most of a request body the server reads and discards when the app did not read it, so
/// the connection can carry the next request. Beyond it the connection is closed instead;
/// closing while the client is still sending can make its kernel discard our response.
const MAX_UNREAD_BODY_DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// How long the app waits for the next piece of a request body before the read fails.
/// Why: a client that stops sending mid-body must not hold a Python thread forever.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

type Chunk = Result<Bytes, String>;

/// The app's end of a request body that is being (or can be) received.
pub struct InputSource {
    chunks: mpsc::Receiver<Chunk>,
    /// Dropped unsent if the app never reads, which ends the pump without touching the body.
    start: Option<oneshot::Sender<()>>,
}

impl InputSource {
    /// Spawns the pump on the current runtime; call from within the connection's task.
    /// `expects_continue`: the client waits for `100 Continue` before sending the body, so a
    /// body the app never asked for will not come and must not be waited for (RFC 9110 §10.1.1).
    pub fn pump(mut body: Incoming, expects_continue: bool) -> InputSource {
        let (tx, chunks) = mpsc::channel(INPUT_CHANNEL_FRAMES);
        let (start, started) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let started = started.await.is_ok();
            if !started && expects_continue {
                return;
            }
            if started {
                loop {
                    let chunk = match next_data(&mut body).await {
                        Ok(Some(data)) => Ok(data),
                        Ok(None) => return,
                        Err(reason) => Err(reason),
                    };
                    let failed = chunk.is_err();
                    if failed {
                        let _ = tx.send(chunk).await;
                        return;
                    }
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            }
            drain(body).await;
        });
        InputSource {
            chunks,
            start: Some(start),
        }
    }
}

/// The next data frame of `body` (trailers are skipped); `None` at its end.
async fn next_data(body: &mut Incoming) -> Result<Option<Bytes>, String> {
    loop {
        let next = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx));
        match tokio::time::timeout(BODY_READ_TIMEOUT, next).await {
            Err(_) => return Err(format!("no body data for {}s", BODY_READ_TIMEOUT.as_secs())),
            Ok(None) => return Ok(None),
            Ok(Some(Err(error))) => return Err(error.to_string()),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Reads and discards what the app left unread, so keep-alive stays in step (RFC 9112 §9.3).
/// Dropping `body` early makes hyper close the connection after the response instead.
async fn drain(mut body: Incoming) {
    let mut discarded = 0u64;
    while discarded <= MAX_UNREAD_BODY_DRAIN_BYTES {
        match next_data(&mut body).await {
            Ok(Some(data)) => discarded += data.len() as u64,
            Ok(None) | Err(_) => return,
        }
    }
}

#[pyclass(module = "ferrogate")]
pub struct WsgiInput {
    /// Received but not yet returned to the app.
    pending: Bytes,
    /// `None` once the body has ended (or there never was one).
    source: Option<InputSource>,
}

impl WsgiInput {
    pub fn new(source: Option<InputSource>) -> WsgiInput {
        WsgiInput {
            pending: Bytes::new(),
            source,
        }
    }

    /// Makes `pending` non-empty, waiting for the client without the GIL; false at the end.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        while self.pending.is_empty() {
            let Some(source) = self.source.as_mut() else {
                return Ok(false);
            };
            if let Some(start) = source.start.take() {
                let _ = start.send(());
            }
            let received = match source.chunks.try_recv() {
                Ok(chunk) => Some(chunk),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    py.detach(|| source.chunks.blocking_recv())
                }
            };
            match received {
                Some(Ok(bytes)) => self.pending = bytes,
                Some(Err(reason)) => {
                    self.source = None;
                    return Err(PyOSError::new_err(format!(
                        "error reading the request body: {reason}"
                    )));
                }
                None => {
                    self.source = None;
                    return Ok(false);
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
            if collected.is_empty() && (done || count == limit) {
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
