//! `ferrogate.middleware.Mount`: URL dispatch to mounted apps (werkzeug's
//! DispatcherMiddleware, Paste's urlmap), as a WSGI object; lifted into a native `Mount`.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::environ::{bytes_of, refuse, set_bytes};
use crate::handler::Scheme;
use crate::middleware::mount::{Mount as MountTable, MountKey};
use crate::middleware::Refusal;

/// Dispatches to the app mounted at the longest matching path prefix (or host key).
#[pyclass(name = "Mount", module = "ferrogate.middleware", frozen)]
pub struct Mount {
    pub(super) table: Arc<MountTable<Py<PyAny>>>,
}

#[pymethods]
impl Mount {
    #[new]
    #[pyo3(signature = (apps, default = None))]
    fn new(apps: &Bound<'_, PyDict>, default: Option<Py<PyAny>>) -> PyResult<Mount> {
        let mut entries = Vec::with_capacity(apps.len());
        for (key, app) in apps.iter() {
            let key: String = key.extract()?;
            if let Ok(forward) = app.cast::<super::Forward>() {
                forward.get().layer.mounted_at(&key);
            }
            let key = MountKey::parse(&key).map_err(PyValueError::new_err)?;
            entries.push((key, app.unbind()));
        }
        Ok(Mount {
            table: Arc::new(MountTable::new(entries, default)),
        })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        environ: &Bound<'py, PyDict>,
        start_response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let path = bytes_of(environ, "PATH_INFO")?.unwrap_or_default();
        let host = bytes_of(environ, "HTTP_HOST")?;
        let scheme = match bytes_of(environ, "wsgi.url_scheme")?.as_deref() {
            Some(b"https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let Some(routed) = self.table.route(&path, host.as_deref(), scheme) else {
            return refuse(py, start_response, &Refusal::NotFound, &[]);
        };
        if routed.prefix_len > 0 {
            let mut script = bytes_of(environ, "SCRIPT_NAME")?.unwrap_or_default();
            script.extend_from_slice(&path[..routed.prefix_len]);
            set_bytes(environ, "SCRIPT_NAME", &script)?;
            set_bytes(environ, "PATH_INFO", &path[routed.prefix_len..])?;
        }
        routed.target.bind(py).call1((environ, start_response))
    }

    pub(super) fn __repr__(&self) -> String {
        let keys: Vec<String> = self.table.entries().map(|(k, _)| k.to_string()).collect();
        format!("Mount({})", keys.join(", "))
    }
}
