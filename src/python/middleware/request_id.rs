//! `ferrogate.middleware.RequestId`: a request id in `HTTP_X_REQUEST_ID` and in the response's
//! `X-Request-ID`, as a WSGI object; lifted into the native pipeline.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::environ::{bytes_of, client_ip};
use super::ip_filter::ranges;
use crate::config::IpRanges;
use crate::middleware::request_id::request_id;

/// Whose own `X-Request-ID` is kept when no list is given: this host's proxies.
const DEFAULT_TRUSTED: &str = "127.0.0.1,::1,unix";

#[pyclass(name = "RequestId", module = "ferrogate.middleware", frozen)]
pub struct RequestId {
    pub(super) app: Py<PyAny>,
    pub(super) trusted: Arc<IpRanges>,
}

#[pymethods]
impl RequestId {
    #[new]
    #[pyo3(signature = (app, trusted = None))]
    fn new(app: Py<PyAny>, trusted: Option<&Bound<'_, PyAny>>) -> PyResult<RequestId> {
        let trusted = match trusted {
            Some(trusted) => ranges(Some(trusted), "trusted")?,
            None => DEFAULT_TRUSTED
                .parse()
                .expect("invariant: the default list parses"),
        };
        Ok(RequestId {
            app,
            trusted: Arc::new(trusted),
        })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        environ: &Bound<'py, PyDict>,
        start_response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let incoming = bytes_of(environ, "HTTP_X_REQUEST_ID")?;
        let trusted = match client_ip(environ)? {
            Some(ip) => self.trusted.contains(ip),
            None => self.trusted.contains_peer(None),
        };
        let id = request_id(incoming.as_deref(), trusted);
        environ.set_item("HTTP_X_REQUEST_ID", &id)?;
        let adding = AddHeaders::new(start_response, vec![("X-Request-ID", id)]);
        self.app.bind(py).call1((environ, Bound::new(py, adding)?))
    }
}

/// The server's start_response with more response headers.
#[pyclass(frozen)]
pub struct AddHeaders {
    start_response: Py<PyAny>,
    headers: Vec<(&'static str, String)>,
}

impl AddHeaders {
    pub fn new(start_response: &Bound<'_, PyAny>, headers: Vec<(&'static str, String)>) -> Self {
        AddHeaders {
            start_response: start_response.clone().unbind(),
            headers,
        }
    }
}

#[pymethods]
impl AddHeaders {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyList>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        for (name, value) in &self.headers {
            headers.append(PyTuple::new(py, [*name, value.as_str()])?)?;
        }
        let start_response = self.start_response.bind(py);
        match exc_info {
            Some(exc_info) => start_response.call1((status, headers, exc_info)),
            None => start_response.call1((status, headers)),
        }
    }
}
