//! `ferrogate.middleware.Compress`: brotli, zstd or gzip by the client's Accept-Encoding, for
//! responses of compressible types, as a WSGI object (under any server, and under ferrogate,
//! where it runs on the Python threads: see the README). The encoders run without the GIL
//! for large chunks; a streamed body is compressed and flushed chunk by chunk.

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
    app: Py<PyAny>,
    options: Arc<CompressOptions>,
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
        let state = Arc::new(Mutex::new(None));
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

type SharedEncoder = Arc<Mutex<Option<Encoder>>>;

fn lock(encoder: &SharedEncoder) -> MutexGuard<'_, Option<Encoder>> {
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
        let mut encoder = lock(&self.encoder);
        // A second call (exc_info, after an error) decides again.
        *encoder = None;
        if should_compress(&facts, &self.options) {
            match self.encoding.map(|e| Encoder::new(e, self.options.level)) {
                Some(Ok(chosen)) => {
                    adjust_headers(&mut pairs, chosen.encoding());
                    *encoder = Some(chosen);
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
        drop(encoder);
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
        let out = match lock(&self.encoder).as_mut() {
            Some(encoder) => compress(py, encoder, data)?,
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
                    let mut encoder = lock(&self.encoder);
                    let Some(encoder) = encoder.as_mut() else {
                        return Ok(Some(chunk.clone()));
                    };
                    let out = compress(py, encoder, chunk.as_bytes())?;
                    if !out.is_empty() {
                        return Ok(Some(PyBytes::new(py, &out)));
                    }
                }
                Err(error) if error.is_instance_of::<PyStopIteration>(py) => {
                    return match lock(&self.encoder).take() {
                        Some(encoder) => Ok(Some(PyBytes::new(py, &encoder.finish()?))),
                        None => Ok(None),
                    };
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
