//! Runs one request through the app and turns what it returns into a response: a list of
//! bytes is sent whole, a file wrapper over a regular file is mapped and sent without copies,
//! anything else is iterated and streamed. `close()` is called exactly once in every case.

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;

use crate::http::ResponseBody;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::body_bytes::body_bytes;
use super::file_body::try_file_body;
use super::file_wrapper::FileWrapper;
use super::response_head::type_name;
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

/// Runs `f` on the response state. The app holding it at the same moment (calling `write()`
/// from another thread) is reported as the app's error instead of panicking.
pub fn server_borrow<R>(
    start_response: &Bound<'_, StartResponse>,
    f: impl FnOnce(&mut StartResponse) -> R,
) -> Result<R, Outcome> {
    match start_response.try_borrow_mut() {
        Ok(mut state) => Ok(f(&mut state)),
        Err(_) => Err(Outcome::Raised(PyRuntimeError::new_err(
            "the response was used from two threads at once (start_response/write)",
        ))),
    }
}

fn as_bytes<'a, 'py>(item: &'a Bound<'py, PyAny>) -> Result<&'a Bound<'py, PyBytes>, Outcome> {
    item.cast::<PyBytes>()
        .map_err(|_| Outcome::BodyNotBytes(type_name(item)))
}

/// Sends the body `iterable` and closes it. `start_response` may still be awaiting its call:
/// generators usually call it on their first step. `maps_files`: a `wsgi.file_wrapper` over a
/// regular file may be memory-mapped (not over TLS, where rustls would read the mapping in
/// user space, and a file truncated meanwhile would raise SIGBUS; it is read in blocks there).
pub fn send_body(
    py: Python<'_>,
    iterable: &Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
    maps_files: bool,
) -> Outcome {
    let outcome = send_items(py, iterable, start_response, maps_files);
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
    maps_files: bool,
) -> Outcome {
    let head_pending = match server_borrow(start_response, |state| state.is_head_pending()) {
        Ok(pending) => pending,
        Err(outcome) => return outcome,
    };
    if head_pending {
        if let Ok(list) = iterable.cast::<PyList>() {
            return send_whole(list.iter(), list.len(), start_response);
        }
        if let Ok(tuple) = iterable.cast::<PyTuple>() {
            return send_whole(tuple.iter(), tuple.len(), start_response);
        }
        if let Some(wrapper) = iterable.cast::<FileWrapper>().ok().filter(|_| maps_files) {
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
    match server_borrow(start_response, |state| {
        state.finish_whole(ResponseBody::from_chunks(chunks), length)
    }) {
        Ok(Ok(())) => Outcome::Done,
        Ok(Err(problem)) => Outcome::Invalid(problem),
        Err(outcome) => outcome,
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
        match server_borrow(start_response, |state| state.send_chunk(py, bytes)) {
            Err(outcome) => return outcome,
            Ok(Ok(())) => {}
            Ok(Err(SendError::ClientGone)) => return Outcome::Done,
            Ok(Err(SendError::NotStarted)) => {
                return Outcome::Invalid(
                    "the app yielded body data before calling start_response()".into(),
                )
            }
        }
    }
    match server_borrow(start_response, |state| state.finish()) {
        Ok(Ok(())) => Outcome::Done,
        Ok(Err(problem)) => Outcome::Invalid(problem),
        Err(outcome) => outcome,
    }
}
