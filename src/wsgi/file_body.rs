//! The zero-copy path for `wsgi.file_wrapper`: a regular file's range is handed to the socket
//! by the I/O thread (sendfile(2)), never copied through Python or under the GIL.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

use pyo3::prelude::*;

use super::file_wrapper::FileWrapper;
use super::response::server_borrow;
use super::response::Outcome;
use super::start_response::StartResponse;
use crate::http::ResponseBody;

/// Sends the wrapped file if it is a regular file; `Ok(false)` means "iterate it instead"
/// (pipes, sockets, in-memory files).
pub fn try_file_body(
    py: Python<'_>,
    wrapper: &FileWrapper,
    start_response: &Bound<'_, StartResponse>,
) -> Result<bool, Outcome> {
    let file = wrapper.filelike.bind(py);
    let Ok(fd) = file.call_method0("fileno").and_then(|n| n.extract::<i32>()) else {
        return Ok(false);
    };
    // tell(), not the descriptor's offset: a buffered Python file may have read ahead.
    let Ok(position) = file.call_method0("tell").and_then(|n| n.extract::<u64>()) else {
        return Ok(false);
    };
    // SAFETY: the descriptor belongs to the Python file object, which outlives this borrow;
    // ManuallyDrop keeps `File` from closing it.
    let borrowed = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    let Ok(metadata) = borrowed.metadata() else {
        return Ok(false);
    };
    if !metadata.is_file() {
        return Ok(false);
    }
    let available = metadata.len().saturating_sub(position);
    let declared = server_borrow(start_response, |state| state.declared_length())?;
    // A Content-Length shorter than the file sends that much, as gunicorn's sendfile does.
    let length = declared.map_or(available, |declared| declared.min(available));
    // Our own descriptor: the app may close its file once the response is handed over.
    // PERF: sent with sendfile(2), the pages never mapped nor copied in user space; over TLS,
    // mapped and lent to writev (benches/e2e filewrapper).
    let Ok(owned) = borrowed.try_clone() else {
        return Ok(false);
    };
    let body = ResponseBody::file(owned, position, length);
    match server_borrow(start_response, |state| state.finish_whole(body, length))? {
        Ok(()) => Ok(true),
        Err(problem) => Err(Outcome::Invalid(problem)),
    }
}
