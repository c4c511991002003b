//! Runs one request through the app and turns what it returns into a response: a list of
//! bytes is sent whole, a file wrapper over a regular file is mapped and sent without copies,
//! anything else is iterated and streamed. `close()` is called exactly once in every case.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::body_bytes::body_bytes;
use super::file_body::try_file_body;
use super::file_wrapper::FileWrapper;
use super::start_response::{SendError, StartResponse};

/// How a request's processing went wrong, for the log and the client.
pub enum Outcome {
    Done,
    /// The app raised (or broke the protocol in a way best shown as an exception).
    Raised(PyErr),
    /// A body item was not bytes: one log line, no traceback (it is not the app's code failing).
    BodyNotBytes(String),
    /// Nothing was sent and the response is unusable (no start_response, length mismatch).
    Invalid(String),
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn as_bytes<'a, 'py>(item: &'a Bound<'py, PyAny>) -> Result<&'a Bound<'py, PyBytes>, Outcome> {
    item.cast::<PyBytes>()
        .map_err(|_| Outcome::BodyNotBytes(type_name(item)))
}

/// Sends the body `iterable` and closes it. `start_response` may still be awaiting its call:
/// generators usually call it on their first step.
pub fn send_body(
    py: Python<'_>,
    iterable: &Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
) -> Outcome {
    let outcome = send_items(py, iterable, start_response);
    let closed = close(iterable);
    match (outcome, closed) {
        (Outcome::Done, Err(error)) => Outcome::Raised(error),
        (outcome, _) => outcome,
    }
}

/// PEP 3333: "If the iterable returned by the application has a close() method, the server
/// must call that method upon completion of the current request" — whatever happened.
fn close(iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    match iterable.getattr(pyo3::intern!(iterable.py(), "close")) {
        Ok(close) => close.call0().map(|_| ()),
        Err(_) => Ok(()),
    }
}

fn send_items(
    py: Python<'_>,
    iterable: &Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
) -> Outcome {
    let head_pending = start_response.borrow().is_head_pending();
    if head_pending {
        if let Ok(list) = iterable.cast::<PyList>() {
            return send_whole(list.iter(), list.len(), start_response);
        }
        if let Ok(tuple) = iterable.cast::<PyTuple>() {
            return send_whole(tuple.iter(), tuple.len(), start_response);
        }
        if let Ok(wrapper) = iterable.cast::<FileWrapper>() {
            match try_file_body(py, wrapper.get(), start_response) {
                Ok(true) => return Outcome::Done,
                Ok(false) => {}
                Err(outcome) => return outcome,
            }
        }
    }
    stream(py, iterable, start_response)
}

/// A body whose items are all at hand: sent in one go, with a Content-Length if it is one item.
fn send_whole<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    count: usize,
    start_response: &Bound<'py, StartResponse>,
) -> Outcome {
    let mut chunks = Vec::with_capacity(count);
    let mut length = 0u64;
    for item in items {
        let bytes = match as_bytes(&item) {
            Ok(bytes) => body_bytes(bytes),
            Err(outcome) => return outcome,
        };
        if !bytes.is_empty() {
            length += bytes.len() as u64;
            chunks.push(bytes);
        }
    }
    match start_response.borrow_mut().finish_whole(chunks, length) {
        Ok(()) => Outcome::Done,
        Err(problem) => Outcome::Invalid(problem),
    }
}

fn stream(
    py: Python<'_>,
    iterable: &Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
) -> Outcome {
    let iterator = match iterable.try_iter() {
        Ok(iterator) => iterator,
        Err(_) => {
            return Outcome::Raised(PyTypeError::new_err(format!(
                "the app returned {}, which is not an iterable of bytes",
                type_name(iterable)
            )))
        }
    };
    for item in iterator {
        let item = match item {
            Ok(item) => item,
            Err(error) => return Outcome::Raised(error),
        };
        let bytes = match as_bytes(&item) {
            Ok(bytes) => body_bytes(bytes),
            Err(outcome) => return outcome,
        };
        match start_response.borrow_mut().send_chunk(py, bytes) {
            Ok(()) => {}
            Err(SendError::ClientGone) => return Outcome::Done,
            Err(SendError::NotStarted) => {
                return Outcome::Invalid(
                    "the app yielded body data before calling start_response()".into(),
                )
            }
        }
    }
    match start_response.borrow_mut().finish() {
        Ok(()) => Outcome::Done,
        Err(problem) => Outcome::Invalid(problem),
    }
}
