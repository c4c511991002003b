//! `ferrogate.middleware.IPFilter`: allow and deny lists on the client address, as a WSGI
//! object; lifted into a native `IpFilter` (a refused client never reaches Python).

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::environ::{client_ip, refuse};
use crate::config::IpRanges;
use crate::middleware::ip_filter::IpFilter as Filter;
use crate::middleware::Refusal;

#[pyclass(name = "IPFilter", module = "ferrogate.middleware", frozen)]
pub struct IpFilter {
    pub(super) app: Py<PyAny>,
    pub(super) filter: Arc<Filter>,
}

/// A list of addresses and CIDR ranges given as a list or a comma-separated string.
pub(super) fn ranges(value: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<IpRanges> {
    let text = match value {
        None => String::new(),
        Some(value) => match value.extract::<String>() {
            Ok(text) => text,
            Err(_) => value.extract::<Vec<String>>()?.join(","),
        },
    };
    text.parse()
        .map_err(|error| PyValueError::new_err(format!("{what}: {error}")))
}

#[pymethods]
impl IpFilter {
    #[new]
    #[pyo3(signature = (app, allow = None, deny = None))]
    fn new(
        app: Py<PyAny>,
        allow: Option<&Bound<'_, PyAny>>,
        deny: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<IpFilter> {
        let filter = Filter::new(ranges(allow, "allow")?, ranges(deny, "deny")?);
        Ok(IpFilter {
            app,
            filter: Arc::new(filter),
        })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        environ: &Bound<'py, PyDict>,
        start_response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.filter.admits(client_ip(environ)?) {
            return refuse(py, start_response, &Refusal::Forbidden, &[]);
        }
        self.app.bind(py).call1((environ, start_response))
    }
}
