//! `start_response` and the `write()` callable it returns, around the response state machine:
//! AwaitingStart → HeadPending → Streaming → Finished. The head goes out with the first
//! non-empty body chunk (PEP 3333: "must not be transmitted until the first non-empty body").

use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use tokio::sync::mpsc;

use super::blocking::wait_for;
use super::body_bytes::body_bytes;
use super::reply::Reply;
use super::response_head::{type_name, ResponseHead};
use crate::http::status::Failure;
use crate::http::{BodyError, BodySender, ResponseBody};

enum Progress {
    /// start_response has not been called yet.
    AwaitingStart(Reply),
    /// start_response was called; nothing has been sent, so the status can still change.
    HeadPending(Reply, ResponseHead),
    /// The head and some body went out; the rest streams through the sender.
    Streaming(BodySender),
    /// All handed over, or the client is gone.
    Finished,
}

/// Why a body chunk could not be delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// Body data before start_response.
    NotStarted,
    /// The client disconnected (or, for HEAD, the server does not want the body).
    ClientGone,
}

#[pyclass(module = "ferrogate")]
pub struct StartResponse {
    progress: Progress,
    /// Whether a body that disagrees with Content-Length is an error: not for HEAD, whose body is never sent.
    check_length: bool,
    /// How long the app's thread waits for room to send to a client that is not reading.
    /// The connection cuts such a client off after `--socket-timeout` itself; this is a
    /// little longer, as a backstop.
    send_timeout: Duration,
}

impl StartResponse {
    pub fn new(reply: Reply, check_length: bool, send_timeout: Duration) -> StartResponse {
        StartResponse {
            progress: Progress::AwaitingStart(reply),
            check_length,
            send_timeout,
        }
    }

    /// The app's Content-Length, while the head is pending.
    pub fn declared_length(&self) -> Option<u64> {
        match &self.progress {
            Progress::HeadPending(_, head) => head.content_length,
            _ => None,
        }
    }

    pub fn is_head_pending(&self) -> bool {
        matches!(self.progress, Progress::HeadPending(..))
    }

    /// Sends one body chunk, sending the head first if it is still pending. Empty chunks are
    /// skipped. Blocks, without the GIL, while the client is slower than the app.
    pub fn send_chunk(&mut self, py: Python<'_>, chunk: Bytes) -> Result<(), SendError> {
        if chunk.is_empty() {
            return match self.progress {
                Progress::AwaitingStart(_) => Err(SendError::NotStarted),
                _ => Ok(()),
            };
        }
        match std::mem::replace(&mut self.progress, Progress::Finished) {
            Progress::AwaitingStart(reply) => {
                self.progress = Progress::AwaitingStart(reply);
                Err(SendError::NotStarted)
            }
            Progress::HeadPending(reply, head) => {
                let (body, tx) = ResponseBody::streaming(chunk);
                let response = head.into_response(body);
                if reply.send(response).is_err() {
                    return Err(SendError::ClientGone);
                }
                self.progress = Progress::Streaming(tx);
                Ok(())
            }
            Progress::Streaming(tx) => {
                let sent = match tx.try_send(Ok(chunk)) {
                    Ok(()) => Ok(()),
                    // The client is slower than the app: wait for room, but not forever.
                    Err(mpsc::error::TrySendError::Full(item)) => {
                        let timeout = self.send_timeout;
                        match py.detach(|| wait_for(tx.send(item), timeout)) {
                            Some(Ok(())) => Ok(()),
                            Some(Err(_)) => Err(()),
                            None => {
                                log::warn!(
                                    "A client read nothing for {}s; giving up on its response",
                                    timeout.as_secs_f64()
                                );
                                Err(())
                            }
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
                };
                match sent {
                    Ok(()) => {
                        self.progress = Progress::Streaming(tx);
                        Ok(())
                    }
                    Err(()) => Err(SendError::ClientGone),
                }
            }
            Progress::Finished => Err(SendError::ClientGone),
        }
    }

    /// Ends the response with a body known in full (`chunks`, with its total `length`).
    /// Returns what is wrong when nothing was sent and the caller should answer 500 instead.
    /// The whole body is here: `body`, of `length` bytes.
    pub fn finish_whole(&mut self, body: ResponseBody, length: u64) -> Result<(), String> {
        match std::mem::replace(&mut self.progress, Progress::Finished) {
            Progress::HeadPending(reply, head) => {
                if let Some(declared) = head.content_length.filter(|_| self.check_length) {
                    if declared != length && head.allows_body() {
                        self.progress = Progress::HeadPending(reply, head);
                        return Err(format!(
                            "the app declared Content-Length: {declared} but returned a body of {length} bytes"
                        ));
                    }
                }
                let _ = reply.send(head.into_response(body));
                Ok(())
            }
            Progress::AwaitingStart(reply) => {
                self.progress = Progress::AwaitingStart(reply);
                Err("the app returned a body without calling start_response()".into())
            }
            Progress::Streaming(tx) => {
                self.progress = Progress::Streaming(tx);
                Err("invariant broken: finish_whole after streaming began".into())
            }
            Progress::Finished => Ok(()),
        }
    }

    /// Ends the response after streaming (or with an empty body if nothing was sent).
    pub fn finish(&mut self) -> Result<(), String> {
        match &self.progress {
            Progress::Streaming(_) | Progress::Finished => {
                // Dropping the sender ends the stream; ResponseBody checks the declared length.
                self.progress = Progress::Finished;
                Ok(())
            }
            _ => self.finish_whole(ResponseBody::full(Bytes::new()), 0),
        }
    }

    /// The app failed: `failure` (a 500, a 504) if nothing was sent yet, else an aborted
    /// connection.
    pub fn fail(&mut self, py: Python<'_>, failure: Failure) {
        match std::mem::replace(&mut self.progress, Progress::Finished) {
            Progress::AwaitingStart(reply) | Progress::HeadPending(reply, _) => {
                let _ = reply.send(failure.into_response());
            }
            Progress::Streaming(tx) => {
                if let Err(mpsc::error::TrySendError::Full(item)) =
                    tx.try_send(Err(BodyError::Aborted))
                {
                    let timeout = self.send_timeout;
                    let _ = py.detach(|| wait_for(tx.send(item), timeout));
                }
            }
            Progress::Finished => {}
        }
    }
}

#[pymethods]
impl StartResponse {
    /// PEP 3333 `start_response(status, response_headers, exc_info=None)`; returns `write`.
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let exc_info = exc_info.filter(|info| !info.is_none());
        {
            let mut this = slf.try_borrow_mut()?;
            match (&this.progress, exc_info) {
                // PEP 3333: "if headers have already been sent, re-raise the exception".
                (Progress::Streaming(_) | Progress::Finished, Some(info)) => {
                    let value = info.cast::<PyTuple>()?.get_item(1)?;
                    return Err(PyErr::from_value(value));
                }
                (Progress::Streaming(_) | Progress::Finished, None) => {
                    return Err(PyRuntimeError::new_err(
                        "start_response() called after the response headers were sent",
                    ));
                }
                (Progress::HeadPending(..), None) => {
                    return Err(PyRuntimeError::new_err(
                        "start_response() called a second time without exc_info",
                    ));
                }
                _ => {}
            }
            let head = ResponseHead::from_python(status, headers)?;
            this.progress = match std::mem::replace(&mut this.progress, Progress::Finished) {
                Progress::AwaitingStart(reply) | Progress::HeadPending(reply, _) => {
                    Progress::HeadPending(reply, head)
                }
                other => other,
            };
        }
        slf.getattr(pyo3::intern!(slf.py(), "write"))
    }

    /// PEP 3333's `write(data)`: sends `data` at once (the head first if still pending).
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "write() takes bytes, not {}",
                type_name(data)
            ))
        })?;
        match self.send_chunk(py, body_bytes(bytes)) {
            Ok(()) => Ok(()),
            Err(SendError::NotStarted) => Err(PyRuntimeError::new_err(
                "write() called before start_response()",
            )),
            Err(SendError::ClientGone) => Err(PyOSError::new_err("client disconnected")),
        }
    }
}
