//! `ferrogate.middleware.Mount`: URL dispatch to mounted apps (werkzeug's
//! DispatcherMiddleware, Paste's urlmap), as a WSGI object; lifted into a native `Mount`.

use std::sync::Arc;
use std::time::Duration;

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
    /// `request_timeouts`: per mount key, what replaces `--request-timeout` for the app
    /// mounted there (zero: none). Applied by the pool once the Mount is lifted.
    pub(super) request_timeouts: Vec<(MountKey, Duration)>,
}

#[pymethods]
impl Mount {
    #[new]
    #[pyo3(signature = (apps, default = None, request_timeouts = None))]
    fn new(
        apps: &Bound<'_, PyDict>,
        default: Option<Py<PyAny>>,
        request_timeouts: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Mount> {
        let mut entries = Vec::with_capacity(apps.len());
        for (key, app) in apps.iter() {
            let key: String = key.extract()?;
            if let Ok(forward) = app.cast::<super::Forward>() {
                forward.get().layer.mounted_at(&key);
            }
            let key = MountKey::parse(&key).map_err(PyValueError::new_err)?;
            entries.push((key, app.unbind()));
        }
        let mut timeouts = Vec::new();
        for (key, seconds) in request_timeouts.into_iter().flat_map(|d| d.iter()) {
            let text: String = key.extract()?;
            let key = MountKey::parse(&text).map_err(PyValueError::new_err)?;
            if !entries.iter().any(|(mounted, _)| *mounted == key) {
                return Err(PyValueError::new_err(format!(
                    "request_timeouts names {text:?}, which no app is mounted at"
                )));
            }
            let seconds: f64 = seconds.extract()?;
            let timeout = Duration::try_from_secs_f64(seconds).map_err(|_| {
                PyValueError::new_err(format!(
                    "request_timeouts[{text:?}]: {seconds} is not a number of seconds (0: none)"
                ))
            })?;
            timeouts.push((key, timeout));
        }
        if !timeouts.is_empty() {
            // time.sleep in slices, as for --request-timeout, so a timeout can end a sleep
            // (modules that imported `sleep` before this keep the unsliced one).
            apps.py()
                .import("ferrogate._timeouts")?
                .call_method0("install")?;
        }
        Ok(Mount {
            table: Arc::new(MountTable::new(entries, default)),
            request_timeouts: timeouts,
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

impl Mount {
    /// What replaces `--request-timeout` for the app mounted at `key`, if the Mount says.
    pub(super) fn request_timeout_of(&self, key: &MountKey) -> Option<Duration> {
        self.request_timeouts
            .iter()
            .find(|(mounted, _)| mounted == key)
            .map(|(_, timeout)| *timeout)
    }
}
