//! `ferrogate.middleware.Compress`: brotli, zstd or gzip by the client's Accept-Encoding, for
//! responses of compressible types, as a WSGI object; lifted into the native pipeline
//! (middleware/compress_response.rs), where the app's response is compressed on the I/O side.
//! Here the encoders run without the GIL for large chunks; a streamed body is compressed and
//! flushed chunk by chunk.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::{PyStopIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::environ::bytes_of;
use crate::middleware::compress::{
    add_vary_accept_encoding, adjust_headers, choose, should_compress, CompressOptions, Encoder,
    Encoding, ResponseFacts,
};

/// Chunks at least this large are compressed with the GIL released.
const DETACH_BYTES: usize = 16 * 1024;

#[pyclass(name = "Compress", module = "ferrogate.middleware", frozen)]
pub struct Compress {
    pub(super) app: Py<PyAny>,
    pub(super) options: Arc<CompressOptions>,
}

#[pymethods]
impl Compress {
    #[new]
    #[pyo3(signature = (app, min_size = 512, level = None, encodings = None))]
    fn new(
        app: Py<PyAny>,
        min_size: usize,
        level: Option<u32>,
        encodings: Option<Vec<String>>,
    ) -> PyResult<Compress> {
        let mut options = CompressOptions {
            min_size,
            level,
            ..CompressOptions::default()
        };
        if let Some(tokens) = encodings {
            options.encodings = tokens
                .iter()
                .map(|token| {
                    Encoding::from_token(token).ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "Compress: unknown encoding {token:?} (br, zstd, gzip)"
                        ))
                    })
                })
                .collect::<PyResult<_>>()?;
        }
        Ok(Compress {
            app,
            options: Arc::new(options),
        })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        environ: &Bound<'py, PyDict>,
        start_response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let accept = bytes_of(environ, "HTTP_ACCEPT_ENCODING")?
            .map(|value| String::from_utf8_lossy(&value).into_owned());
        let is_head = bytes_of(environ, "REQUEST_METHOD")?.as_deref() == Some(b"HEAD");
        let state = Arc::new(Mutex::new(Compression::default()));
        let start = CompressStart {
            start_response: start_response.clone().unbind(),
            encoding: choose(accept.as_deref(), &self.options),
            is_head,
            options: self.options.clone(),
            encoder: state.clone(),
        };
        let iterable = self.app.bind(py).call1((environ, Bound::new(py, start)?))?;
        let body = CompressedBody {
            iterable: iterable.clone().unbind(),
            iterator: Mutex::new(None),
            encoder: state,
        };
        Ok(Bound::new(py, body)?.into_any())
    }
}

/// The response's compression, decided by start_response, used by the body and write().
#[derive(Default)]
struct Compression {
    encoder: Option<Encoder>,
    /// The app's Content-Length (removed from the headers): the body is still held to it, so
    /// a short body ends in an error (an aborted response), never in a clean short one.
    declared: Option<u64>,
    seen: u64,
}

impl Compression {
    fn compress(&mut self, py: Python<'_>, chunk: &[u8]) -> PyResult<Option<Vec<u8>>> {
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(None);
        };
        self.seen += chunk.len() as u64;
        compress(py, encoder, chunk).map(Some)
    }

    fn finish(&mut self) -> PyResult<Option<Vec<u8>>> {
        let Some(encoder) = self.encoder.take() else {
            return Ok(None);
        };
        if let Some(declared) = self.declared.filter(|declared| *declared != self.seen) {
            return Err(PyValueError::new_err(format!(
                "the response body ({} bytes) does not match its Content-Length ({declared})",
                self.seen
            )));
        }
        Ok(Some(encoder.finish()?))
    }
}

type SharedEncoder = Arc<Mutex<Compression>>;

fn lock(encoder: &SharedEncoder) -> MutexGuard<'_, Compression> {
    encoder.lock().unwrap_or_else(|e| e.into_inner())
}

fn compress(py: Python<'_>, encoder: &mut Encoder, chunk: &[u8]) -> PyResult<Vec<u8>> {
    let compressed = match chunk.len() >= DETACH_BYTES {
        true => py.detach(|| encoder.compress_chunk(chunk)),
        false => encoder.compress_chunk(chunk),
    };
    Ok(compressed?)
}

/// The app's start_response: decides, from the headers, whether this response is compressed.
#[pyclass(frozen)]
pub struct CompressStart {
    start_response: Py<PyAny>,
    encoding: Option<Encoding>,
    is_head: bool,
    options: Arc<CompressOptions>,
    encoder: SharedEncoder,
}

#[pymethods]
impl CompressStart {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyList>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut pairs: Vec<(String, String)> = headers.extract()?;
        let code: u16 = status
            .extract::<String>()?
            .get(..3)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let find = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let facts = ResponseFacts {
            status: code,
            content_type: find("content-type"),
            content_encoding: find("content-encoding"),
            content_length: find("content-length").and_then(|v| v.trim().parse().ok()),
            cache_control: find("cache-control"),
            content_range: find("content-range").is_some(),
            request_method_head: self.is_head,
        };
        let declared = facts.content_length;
        let mut compression = lock(&self.encoder);
        // A second call (exc_info, after an error) decides again.
        *compression = Compression::default();
        if should_compress(&facts, &self.options) {
            match self.encoding.map(|e| Encoder::new(e, self.options.level)) {
                Some(Ok(chosen)) => {
                    adjust_headers(&mut pairs, chosen.encoding());
                    compression.encoder = Some(chosen);
                    compression.declared = declared;
                }
                // The same representation may be compressed for the next client.
                Some(Err(_)) | None => add_vary_accept_encoding(&mut pairs),
            }
            let rewritten = PyList::empty(py);
            for (name, value) in &pairs {
                rewritten.append(PyTuple::new(py, [name.as_str(), value.as_str()])?)?;
            }
            headers.call_method1("clear", ())?;
            headers.call_method1("extend", (rewritten,))?;
        }
        drop(compression);
        let start_response = self.start_response.bind(py);
        let write = match exc_info {
            Some(exc_info) => start_response.call1((status, headers, exc_info))?,
            None => start_response.call1((status, headers))?,
        };
        let write = CompressWrite {
            write: write.unbind(),
            encoder: self.encoder.clone(),
        };
        Ok(Bound::new(py, write)?.into_any())
    }
}

/// The `write()` start_response returns, compressing what the app writes.
#[pyclass(frozen)]
pub struct CompressWrite {
    write: Py<PyAny>,
    encoder: SharedEncoder,
}

#[pymethods]
impl CompressWrite {
    fn __call__(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let out = match lock(&self.encoder).compress(py, data)? {
            Some(compressed) => compressed,
            None => data.to_vec(),
        };
        if !out.is_empty() {
            self.write.bind(py).call1((PyBytes::new(py, &out),))?;
        }
        Ok(())
    }
}

/// The app's iterable, compressed chunk by chunk, with the encoder's trailer at the end.
#[pyclass]
pub struct CompressedBody {
    iterable: Py<PyAny>,
    iterator: Mutex<Option<Py<PyAny>>>,
    encoder: SharedEncoder,
}

#[pymethods]
impl CompressedBody {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut iterator = self.iterator.lock().unwrap_or_else(|e| e.into_inner());
        if iterator.is_none() {
            *iterator = Some(self.iterable.bind(py).try_iter()?.into_any().unbind());
        }
        let iterator = iterator.as_ref().expect("invariant: set above").bind(py);
        loop {
            match iterator.call_method0("__next__") {
                Ok(chunk) => {
                    let chunk = chunk.cast::<PyBytes>()?;
                    let Some(out) = lock(&self.encoder).compress(py, chunk.as_bytes())? else {
                        return Ok(Some(chunk.clone()));
                    };
                    if !out.is_empty() {
                        return Ok(Some(PyBytes::new(py, &out)));
                    }
                }
                Err(error) if error.is_instance_of::<PyStopIteration>(py) => {
                    let trailer = lock(&self.encoder).finish()?;
                    return Ok(trailer.map(|trailer| PyBytes::new(py, &trailer)));
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let iterable = self.iterable.bind(py);
        if iterable.hasattr("close")? {
            iterable.call_method0("close")?;
        }
        Ok(())
    }
}
