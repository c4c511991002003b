//! `ferrogate.middleware.IPFilter`: allow and deny lists on the client address, as a WSGI
//! object; lifted into a native `IpFilter` (a refused client never reaches Python). Lists may
//! come from files, read when the object is made: a SIGHUP's new workers read them again.

use std::path::PathBuf;
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

/// A list file: one address or CIDR range a line, `#` comments and blank lines ignored;
/// joined with the entries given inline.
fn with_file(inline: IpRanges, file: Option<PathBuf>, what: &str) -> PyResult<IpRanges> {
    let Some(file) = file else {
        return Ok(inline);
    };
    let text = std::fs::read_to_string(&file).map_err(|error| {
        PyValueError::new_err(format!("{what}: cannot read {}: {error}", file.display()))
    })?;
    let mut entries: Vec<String> = vec![inline.to_string()];
    for (number, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        entry.parse::<IpRanges>().map_err(|error| {
            PyValueError::new_err(format!("{}, line {}: {error}", file.display(), number + 1))
        })?;
        entries.push(entry.to_string());
    }
    entries
        .join(",")
        .parse()
        .map_err(|error| PyValueError::new_err(format!("{what}: {error}")))
}

#[pymethods]
impl IpFilter {
    #[new]
    #[pyo3(signature = (app, allow = None, deny = None, allow_file = None, deny_file = None))]
    fn new(
        app: Py<PyAny>,
        allow: Option<&Bound<'_, PyAny>>,
        deny: Option<&Bound<'_, PyAny>>,
        allow_file: Option<PathBuf>,
        deny_file: Option<PathBuf>,
    ) -> PyResult<IpFilter> {
        let allow = with_file(ranges(allow, "allow")?, allow_file, "allow_file")?;
        let deny = with_file(ranges(deny, "deny")?, deny_file, "deny_file")?;
        let filter = Filter::new(allow, deny);
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
