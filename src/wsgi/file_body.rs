//! The zero-copy path for `wsgi.file_wrapper`: a regular file is memory-mapped and its pages
//! are handed to the socket by the I/O thread, never copied through Python or under the GIL.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

use bytes::Bytes;
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
    let body = if length == 0 {
        Bytes::new()
    } else {
        // SAFETY: the mapping is read-only and private to this response. If another process
        // truncates the file meanwhile, the kernel's copy from the mapping into the socket
        // fails with EFAULT (`ResponseBody::mapped`: every piece is lent to writev, never
        // copied in user space), and the connection is aborted. PERF: populate() faults the pages in with one call
        // rather than one fault per page during the write (benches/e2e filewrapper).
        let mapped = unsafe {
            memmap2::MmapOptions::new()
                .offset(position)
                .len(length as usize)
                .populate()
                .map(fd)
        };
        match mapped {
            Ok(map) => Bytes::from_owner(map),
            Err(_) => return Ok(false),
        }
    };
    match server_borrow(start_response, |state| {
        state.finish_whole(ResponseBody::mapped(body), length)
    })? {
        Ok(()) => Ok(true),
        Err(problem) => Err(Outcome::Invalid(problem)),
    }
}
