//! `ferrogate.middleware.Forward`: a reverse proxy to a pool of upstream HTTP servers as a
//! WSGI app. Lifted into the native pipeline, it runs on the I/O thread without the GIL;
//! called by another server (wsgiref, gunicorn, or ferrogate with --no-native-middleware),
//! the same Rust client forwards on a small runtime of its own while the calling thread waits
//! with the GIL released, so both ways behave alike (middleware/forward/).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use percent_encoding::{AsciiSet, CONTROLS};
use pyo3::exceptions::{PyConnectionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use tokio::sync::mpsc;

use super::environ::{bytes_of, client_ip, refuse};
use super::rate_limit::table_owner;
use crate::http::{BodyContent, BodyError, BodyReadError, Response};
use crate::middleware::forward::{
    send_outside, Forward as Layer, ForwardOptions, ForwardRequest, OutgoingBody, Strategy,
    UpstreamTls, DEFAULT_BUFFERED_RESPONSE_BYTES,
};
use crate::middleware::rate_limit::TableName;

/// A body at most this long is read whole before forwarding, so it can be retried.
const WHOLE_BODY_BYTES: usize = 64 * 1024;

/// What a path segment may not hold unescaped, once SCRIPT_NAME and PATH_INFO are decoded.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Sends each request to one of `upstreams` (`http[s]://host:port[/base]`, `unix:/path`,
/// each with an optional `;weight=N`) and answers with its response, streamed both ways.
/// https upstreams' certificates are checked against the system's CAs, or `ca_certs`'s.
#[pyclass(name = "Forward", module = "ferrogate.middleware", frozen)]
pub struct Forward {
    pub(super) layer: Arc<Layer>,
}

/// Forwards made so far in this process: the same import makes them in the same order in
/// every worker, so the n-th Forward of each worker shares one health table.
static FORWARDS_MADE: AtomicU32 = AtomicU32::new(0);

/// The host's health table for the n-th Forward made here, named for its upstreams too (a
/// worker running other code after a reload never reads another list's state).
fn health_table(upstreams: &[String]) -> TableName {
    let number = FORWARDS_MADE.fetch_add(1, Ordering::Relaxed);
    let hash = foldhash::fast::FixedState::with_seed(0).hash_one(upstreams);
    TableName::new(&format!("{}-forward-{number}-{hash:016x}", table_owner()))
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "Forward: {name} must be a positive number of seconds, not {value}"
            ))
        })
}

#[pymethods]
impl Forward {
    #[new]
    #[pyo3(signature = (
        upstreams, strategy = "round_robin", *, hash_key = "client_ip", strip_prefix = false,
        timeout = 30.0, connect_timeout = 2.0, retries = 1, retry_non_idempotent = false,
        preserve_host = false, via = false, max_fails = 3, fail_timeout = 10.0, health = None,
        health_interval = 5.0, health_passes = 2, max_idle = 1024, idle_timeout = 60.0,
        max_connections = 1024, verify = true, ca_certs = None,
        buffered_response_bytes = DEFAULT_BUFFERED_RESPONSE_BYTES,
    ))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one per option.
    fn new(
        upstreams: Vec<String>,
        strategy: &str,
        hash_key: &str,
        strip_prefix: bool,
        timeout: f64,
        connect_timeout: f64,
        retries: u32,
        retry_non_idempotent: bool,
        preserve_host: bool,
        via: bool,
        max_fails: u32,
        fail_timeout: f64,
        health: Option<String>,
        health_interval: f64,
        health_passes: u32,
        max_idle: usize,
        idle_timeout: f64,
        max_connections: usize,
        verify: bool,
        ca_certs: Option<std::path::PathBuf>,
        buffered_response_bytes: u64,
    ) -> PyResult<Forward> {
        let invalid = |error: String| PyValueError::new_err(format!("Forward: {error}"));
        if let Some(path) = &health {
            if !path.starts_with('/') {
                return Err(invalid(format!(
                    "health {path:?} must be a path starting with '/'"
                )));
            }
        }
        if max_fails == 0 || health_passes == 0 {
            return Err(invalid(
                "max_fails and health_passes must be at least 1".into(),
            ));
        }
        let options = ForwardOptions {
            strategy: Strategy::parse(strategy, hash_key).map_err(invalid)?,
            strip_prefix,
            timeout: seconds("timeout", timeout)?,
            connect_timeout: seconds("connect_timeout", connect_timeout)?,
            retries,
            retry_non_idempotent,
            preserve_host,
            via,
            health: crate::middleware::forward::HealthOptions {
                max_fails,
                fail_timeout: seconds("fail_timeout", fail_timeout)?,
                probed: health.is_some(),
                passes: health_passes,
            },
            health_path: health,
            health_interval: seconds("health_interval", health_interval)?,
            max_idle,
            idle_timeout: seconds("idle_timeout", idle_timeout)?,
            max_connections,
            tls: UpstreamTls { verify, ca_certs },
            buffered_response_bytes,
        };
        let layer =
            Layer::new(&upstreams, options, Some(&health_table(&upstreams))).map_err(invalid)?;
        Ok(Forward {
            layer: Arc::new(layer),
        })
    }

    pub fn __repr__(&self) -> String {
        let names: Vec<&str> = self
            .layer
            .upstreams()
            .iter()
            .map(|u| u.name.as_str())
            .collect();
        format!("Forward({names:?})")
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        environ: &Bound<'py, PyDict>,
        start_response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (mut request, length) = self.request(environ)?;
        let input = environ.get_item("wsgi.input")?;
        let chunked = length.is_none()
            && bytes_of(environ, "HTTP_TRANSFER_ENCODING")?
                .is_some_and(|te| te.eq_ignore_ascii_case(b"chunked"));
        let mut feed = None;
        if let Some(input) = input.filter(|_| length.is_some_and(|l| l > 0) || chunked) {
            let want = WHOLE_BODY_BYTES.min(length.unwrap_or(usize::MAX));
            let first = read(&input, want)?;
            // Shorter than asked for: the input is at its end (`read` fills what it can).
            let whole = first.len() < want || length.is_some_and(|l| l <= first.len());
            request.body = match whole {
                true => OutgoingBody::Full(Some(first)),
                false => {
                    let (tx, rx) = mpsc::channel(2);
                    let left = length.map(|l| l - first.len());
                    feed = Some((input, tx, left));
                    OutgoingBody::streamed(first, rx)
                }
            };
        }
        let answer = send_outside(&self.layer, request);
        if let Some((input, tx, left)) = feed {
            feed_body(py, &input, &tx, left)?;
        }
        match py.detach(|| answer.blocking_recv()) {
            Ok(Ok(response)) => respond(py, start_response, response),
            Ok(Err(refusal)) => refuse(py, start_response, &refusal, &[]),
            Err(_) => Err(PyConnectionError::new_err("Forward: the request was lost")),
        }
    }
}

impl Forward {
    /// The request's head from the environ, and its Content-Length.
    fn request(&self, environ: &Bound<'_, PyDict>) -> PyResult<(ForwardRequest, Option<usize>)> {
        let text =
            |key: &str| -> PyResult<Vec<u8>> { Ok(bytes_of(environ, key)?.unwrap_or_default()) };
        let method = Method::from_bytes(&text("REQUEST_METHOD")?)
            .map_err(|_| PyValueError::new_err("Forward: REQUEST_METHOD is not a method"))?;
        let mut path = match self.layer.options().strip_prefix {
            true => Vec::new(),
            false => text("SCRIPT_NAME")?,
        };
        path.extend(text("PATH_INFO")?);
        let mut path_and_query: String = percent_encoding::percent_encode(&path, PATH).collect();
        if !path_and_query.starts_with('/') {
            path_and_query.insert(0, '/');
        }
        let query = text("QUERY_STRING")?;
        if !query.is_empty() {
            path_and_query.push('?');
            path_and_query.extend(query.iter().map(|&b| b as char));
        }
        let mut headers = HeaderMap::new();
        for key in environ.keys() {
            let Ok(key) = key.extract::<String>() else {
                continue;
            };
            let name = match key.as_str() {
                "CONTENT_TYPE" | "CONTENT_LENGTH" => key.replace('_', "-"),
                _ => match key.strip_prefix("HTTP_") {
                    Some("CONTENT_TYPE" | "CONTENT_LENGTH") | None => continue,
                    Some(name) => name.replace('_', "-"),
                },
            };
            let Some(value) = bytes_of(environ, &key).ok().flatten() else {
                continue;
            };
            if value.is_empty() && key.starts_with("CONTENT_") {
                continue;
            }
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
                HeaderValue::from_bytes(&value),
            ) {
                headers.append(name, value);
            }
        }
        let length = match headers.get(http::header::CONTENT_LENGTH) {
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        PyValueError::new_err("Forward: CONTENT_LENGTH is not a number")
                    })?,
            ),
            None => None,
        };
        let scheme = match environ.get_item("wsgi.url_scheme")? {
            Some(s) if s.extract::<String>().is_ok_and(|s| s == "https") => "https",
            _ => "http",
        };
        let request = ForwardRequest {
            method,
            path_and_query,
            headers,
            body: OutgoingBody::Empty,
            client_ip: client_ip(environ)?,
            scheme,
        };
        Ok((request, length))
    }
}

/// Up to `max` bytes from `wsgi.input` (fewer only at its end).
fn read(input: &Bound<'_, PyAny>, max: usize) -> PyResult<Bytes> {
    let mut data = Vec::new();
    while data.len() < max {
        let piece = input.call_method1("read", (max - data.len(),))?;
        let piece = piece.cast::<PyBytes>()?.as_bytes();
        if piece.is_empty() {
            break;
        }
        data.extend_from_slice(piece);
    }
    Ok(Bytes::from(data))
}

/// Moves the rest of the body from `wsgi.input` to the upstream, a piece at a time; each
/// wait for the upstream releases the GIL. Stops when the upstream's request ends.
fn feed_body(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    tx: &mpsc::Sender<Result<Bytes, BodyReadError>>,
    mut left: Option<usize>,
) -> PyResult<()> {
    while left != Some(0) {
        let want = left.unwrap_or(WHOLE_BODY_BYTES).min(WHOLE_BODY_BYTES);
        let piece = match read(input, want) {
            Ok(piece) => Ok(piece),
            Err(_) => Err(BodyReadError::Incomplete),
        };
        let end = match &piece {
            Ok(piece) => piece.is_empty(),
            Err(_) => true,
        };
        if let (Ok(piece), Some(left)) = (&piece, left.as_mut()) {
            *left -= piece.len().min(*left);
        }
        // A body shorter than its Content-Length is broken: the upstream must not take it
        // for a whole one.
        let piece = match (end, left) {
            (true, Some(l)) if l > 0 => Err(BodyReadError::Incomplete),
            _ => piece,
        };
        if end && piece.is_ok() {
            break;
        }
        let failed = piece.is_err();
        if py.detach(|| tx.blocking_send(piece)).is_err() || failed {
            break;
        }
    }
    Ok(())
}

fn respond<'py>(
    py: Python<'py>,
    start_response: &Bound<'py, PyAny>,
    response: Response,
) -> PyResult<Bound<'py, PyAny>> {
    let headers = PyList::empty(py);
    let latin1 = |bytes: &[u8]| -> String { bytes.iter().map(|&b| b as char).collect() };
    for (name, value) in response.headers.lines() {
        headers.append(PyTuple::new(py, [latin1(name), latin1(value)])?)?;
    }
    let status = response.status;
    let line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Unknown")
    );
    start_response.call1((line, headers))?;
    match response.body.into_content() {
        BodyContent::Whole(chunks) => {
            let chunks: Vec<Bound<'py, PyBytes>> =
                chunks.iter().map(|c| PyBytes::new(py, c)).collect();
            Ok(PyList::new(py, chunks)?.into_any())
        }
        BodyContent::Stream { first, rest } => Ok(Bound::new(
            py,
            UpstreamBody {
                first: Mutex::new(Some(first)),
                rest: Mutex::new(rest),
            },
        )?
        .into_any()),
    }
}

/// An upstream's streamed response body as a WSGI iterable; each wait releases the GIL. An
/// upstream that breaks off raises, so the server aborts the response.
#[pyclass]
pub struct UpstreamBody {
    first: Mutex<Option<Bytes>>,
    rest: Mutex<mpsc::Receiver<Result<Bytes, BodyError>>>,
}

#[pymethods]
impl UpstreamBody {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(first) = first.filter(|f| !f.is_empty()) {
            return Ok(Some(PyBytes::new(py, &first)));
        }
        let next = py.detach(|| {
            self.rest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .blocking_recv()
        });
        match next {
            None => Ok(None),
            Some(Ok(data)) => Ok(Some(PyBytes::new(py, &data))),
            Some(Err(error)) => Err(PyConnectionError::new_err(format!("Forward: {error}"))),
        }
    }

    fn close(&self) {
        self.rest.lock().unwrap_or_else(|e| e.into_inner()).close();
    }
}
