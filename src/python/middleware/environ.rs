//! What the WSGI layer objects read from and write to an `environ` they are called with under
//! any server, and how they answer without the app: PEP 3333's native strings, whose code
//! points are the bytes (latin-1).

use std::net::IpAddr;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::middleware::Refusal;

/// `environ[key]` as bytes (a latin-1 `str`), if present.
pub fn bytes_of(environ: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<Vec<u8>>> {
    match environ.get_item(key)? {
        None => Ok(None),
        Some(value) => {
            let text = value.cast::<PyString>()?.to_cow()?;
            Ok(Some(text.chars().map(|c| c as u32 as u8).collect()))
        }
    }
}

/// `environ[key] = value`, as a latin-1 `str`.
pub fn set_bytes(environ: &Bound<'_, PyDict>, key: &str, value: &[u8]) -> PyResult<()> {
    let text: String = value.iter().map(|&b| b as char).collect();
    environ.set_item(key, text)
}

/// The client address the server reports (REMOTE_ADDR); `None` when it names no IP address
/// (a Unix socket: empty, or a path).
pub fn client_ip(environ: &Bound<'_, PyDict>) -> PyResult<Option<IpAddr>> {
    Ok(bytes_of(environ, "REMOTE_ADDR")?
        .and_then(|addr| std::str::from_utf8(&addr).ok()?.parse().ok()))
}

/// Answers with `refusal` (plus `extra` headers) through the server's start_response.
pub fn refuse<'py>(
    py: Python<'py>,
    start_response: &Bound<'py, PyAny>,
    refusal: &Refusal,
    extra: &[(&'static str, String)],
) -> PyResult<Bound<'py, PyAny>> {
    let headers = PyList::empty(py);
    for (name, value) in refusal.headers().iter().chain(extra) {
        headers.append(PyTuple::new(py, [*name, value.as_str()])?)?;
    }
    start_response.call1((refusal.status_line(), headers))?;
    Ok(PyList::new(py, [PyBytes::new(py, refusal.body())])?.into_any())
}
