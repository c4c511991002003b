//! `ferrogate.middleware.RateLimit`: a request rate per client (or per header value) as a
//! WSGI object; lifted into the native pipeline, where a refusal never takes the GIL. The
//! counters live in a table in /dev/shm shared by every worker of the server (rate_limit/).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::environ::{bytes_of, client_ip, refuse};
use super::request_id::AddHeaders;
use crate::middleware::limit_key::{client_key, RateKey, RateLimit as Layer};
use crate::middleware::rate_limit::{
    Decision, LimitOptions, Limiter, Rate, TableName, DEFAULT_SLOTS,
};
use crate::middleware::Refusal;

/// Whose tables these are: set by a ferrogate master before it forks (its pid), so every
/// worker opens the same tables and the master removes them at exit; under another server,
/// the parent process (its master).
static TABLE_OWNER: OnceLock<u32> = OnceLock::new();

/// Limiters made so far in this process: the same import makes them in the same order in
/// every worker, so the n-th limiter of each worker shares one table.
static LIMITERS_MADE: AtomicU32 = AtomicU32::new(0);

/// Called by the master: this process's pid owns the tables its workers open.
pub fn own_tables() -> u32 {
    *TABLE_OWNER.get_or_init(std::process::id)
}

fn table_owner() -> u32 {
    // SAFETY: getppid has no preconditions.
    *TABLE_OWNER
        .get()
        .unwrap_or(&(unsafe { libc::getppid() } as u32))
}

#[pyclass(name = "RateLimit", module = "ferrogate.middleware", frozen)]
pub struct RateLimit {
    pub(super) app: Py<PyAny>,
    pub(super) layer: Arc<Layer>,
}

#[pymethods]
impl RateLimit {
    #[new]
    #[pyo3(signature = (app, rate, burst = None, key = "client_ip", slots = DEFAULT_SLOTS))]
    fn new(
        app: Py<PyAny>,
        rate: &str,
        burst: Option<u32>,
        key: &str,
        slots: usize,
    ) -> PyResult<RateLimit> {
        let rate: Rate = rate
            .parse()
            .map_err(|error| PyValueError::new_err(format!("RateLimit: {error}")))?;
        let options = match burst {
            Some(0) => return Err(PyValueError::new_err("RateLimit: burst must be at least 1")),
            Some(burst) => LimitOptions::new(rate).with_burst(burst),
            None => LimitOptions::new(rate),
        };
        let key: RateKey = key.parse().map_err(PyValueError::new_err)?;
        let number = LIMITERS_MADE.fetch_add(1, Ordering::Relaxed);
        let scope = TableName::new(&format!(
            "{}-{number}-{rate}-{}",
            table_owner(),
            options.burst
        ));
        let limiter = Limiter::shared(options, &scope, slots).unwrap_or_else(|error| {
            log::warn!(
                "RateLimit: cannot share counters in {} ({error}); counting per process",
                scope.path().display()
            );
            Limiter::local(options, slots)
        });
        Ok(RateLimit {
            app,
            layer: Arc::new(Layer { limiter, key }),
        })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        environ: &Bound<'py, PyDict>,
        start_response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let from_header = match self.layer.key.environ_key() {
            Some(key) => bytes_of(environ, &key)?,
            None => None,
        };
        let key = match from_header {
            Some(value) => value,
            None => client_key(client_ip(environ)?),
        };
        let (decision, headers) = self.layer.check(&key);
        if let Decision::Refused { .. } = decision {
            return refuse(
                py,
                start_response,
                &Refusal::TooManyRequests { headers },
                &[],
            );
        }
        let adding = AddHeaders::new(start_response, headers);
        self.app.bind(py).call1((environ, Bound::new(py, adding)?))
    }
}
