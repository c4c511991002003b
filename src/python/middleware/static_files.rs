//! `ferrogate.middleware.StaticFiles`: files under directories mounted at path prefixes
//! (werkzeug's SharedDataMiddleware, whitenoise), as a WSGI object; lifted into the native
//! pipeline, where a static hit never takes the GIL.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::environ::{bytes_of, refuse};
use crate::middleware::static_files::{
    MultipartPiece, StaticAnswer, StaticBody, StaticFiles as Files, StaticOptions, StaticRequest,
};
use crate::middleware::Refusal;

#[pyclass(name = "StaticFiles", module = "ferrogate.middleware", frozen)]
pub struct StaticFiles {
    /// What falls through; `None`: 404 (405 for other methods).
    pub(super) app: Option<Py<PyAny>>,
    pub(super) files: Arc<Files>,
}

#[pymethods]
impl StaticFiles {
    #[new]
    #[pyo3(signature = (app, directories, *, max_age = None, index = false, follow_symlinks = false,
        allow_dotfiles = false, precompressed = true, immutable_hashed = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        app: Option<Py<PyAny>>,
        directories: &Bound<'_, PyDict>,
        max_age: Option<u32>,
        index: bool,
        follow_symlinks: bool,
        allow_dotfiles: bool,
        precompressed: bool,
        immutable_hashed: bool,
    ) -> PyResult<StaticFiles> {
        let mut mounts = Vec::with_capacity(directories.len());
        for (prefix, directory) in directories.iter() {
            let prefix: String = prefix.extract()?;
            let directory: PathBuf = directory.extract()?;
            mounts.push((prefix, directory));
        }
        let options = StaticOptions {
            max_age,
            immutable_hashed,
            index,
            follow_symlinks,
            allow_dotfiles,
            precompressed,
        };
        let files = Files::new(mounts, options)
            .map_err(|error| PyValueError::new_err(format!("StaticFiles: {error}")))?;
        Ok(StaticFiles {
            app,
            files: Arc::new(files),
        })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        environ: &Bound<'py, PyDict>,
        start_response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let path = bytes_of(environ, "PATH_INFO")?.unwrap_or_default();
        if self.files.claims(&path) {
            let text = |key: &str| -> PyResult<Option<String>> {
                Ok(bytes_of(environ, key)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
            };
            let method = text("REQUEST_METHOD")?.unwrap_or_default();
            let mut conditions: [Option<String>; 5] = Default::default();
            let keys = [
                "HTTP_IF_NONE_MATCH",
                "HTTP_IF_MODIFIED_SINCE",
                "HTTP_RANGE",
                "HTTP_IF_RANGE",
                "HTTP_ACCEPT_ENCODING",
            ];
            for (condition, key) in conditions.iter_mut().zip(keys) {
                *condition = text(key)?;
            }
            let [if_none_match, if_modified_since, range, if_range, accept_encoding] = &conditions;
            let request = StaticRequest {
                method: &method,
                path: &path,
                if_none_match: if_none_match.as_deref(),
                if_modified_since: if_modified_since.as_deref(),
                range: range.as_deref(),
                if_range: if_range.as_deref(),
                accept_encoding: accept_encoding.as_deref(),
            };
            // Disk work, without the GIL.
            let answer = py.detach(|| self.files.answer(&request));
            match answer {
                StaticAnswer::Respond(answer) => {
                    let headers = PyList::empty(py);
                    let query = text("QUERY_STRING")?.filter(|q| !q.is_empty());
                    for (name, value) in &answer.headers {
                        let value = match (*name, &query) {
                            ("Location", Some(query)) => format!("{value}?{query}"),
                            _ => value.clone(),
                        };
                        headers.append(PyTuple::new(py, [*name, value.as_str()])?)?;
                    }
                    let status = http::StatusCode::from_u16(answer.status)
                        .map_err(|e| PyValueError::new_err(e.to_string()))?;
                    let line = format!(
                        "{} {}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("")
                    );
                    start_response.call1((line, headers))?;
                    return Ok(Bound::new(py, FileChunks::new(answer.body))?.into_any());
                }
                StaticAnswer::MethodNotAllowed if self.app.is_none() => {
                    return refuse(py, start_response, &Refusal::MethodNotAllowed, &[]);
                }
                StaticAnswer::FallThrough | StaticAnswer::MethodNotAllowed => {}
            }
        }
        match &self.app {
            Some(app) => app.bind(py).call1((environ, start_response)),
            None => refuse(py, start_response, &Refusal::NotFound, &[]),
        }
    }
}

/// Reads a file at a time.
const CHUNK_BYTES: u64 = 64 * 1024;

/// A static answer's body as a WSGI iterable: the file's ranges read in 64 KiB pieces
/// without the GIL.
#[pyclass]
pub struct FileChunks {
    file: Option<File>,
    pieces: Mutex<VecDeque<MultipartPiece>>,
}

impl FileChunks {
    fn new(body: StaticBody) -> FileChunks {
        let (file, pieces) = match body {
            StaticBody::Empty => (None, VecDeque::new()),
            StaticBody::File { file, offset, len } => (
                Some(file),
                VecDeque::from([MultipartPiece::Range { offset, len }]),
            ),
            StaticBody::Multipart { file, parts } => (Some(file), parts.into()),
        };
        FileChunks {
            file,
            pieces: Mutex::new(pieces),
        }
    }
}

#[pymethods]
impl FileChunks {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut pieces = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
        let Some(piece) = pieces.pop_front() else {
            return Ok(None);
        };
        let bytes = match piece {
            MultipartPiece::Literal(bytes) => bytes,
            MultipartPiece::Range { offset, len } => {
                let take = len.min(CHUNK_BYTES);
                if take < len {
                    pieces.push_front(MultipartPiece::Range {
                        offset: offset + take,
                        len: len - take,
                    });
                }
                let file = self.file.as_ref().expect("invariant: a range has its file");
                let mut buf = vec![0; take as usize];
                py.detach(|| file.read_exact_at(&mut buf, offset))?;
                buf
            }
        };
        Ok(Some(PyBytes::new(py, &bytes)))
    }

    fn close(&self) {
        self.pieces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
