//! `ferrogate.middleware.RateLimit`: a request rate per client (or per header value) as a
//! WSGI object; lifted into the native pipeline, where a refusal never takes the GIL. The
//! counters live in a table in /dev/shm shared by every worker of the server, or in Redis
//! shared by every host (`store=`; rate_limit/).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::environ::{bytes_of, client_ip, refuse};
use super::request_id::AddHeaders;
use crate::middleware::limit_key::{client_key, RateKey, RateLimit as Layer, Store, Verdict};
use crate::middleware::rate_limit::{
    LimitOptions, Limiter, Rate, RedisStore, TableName, DEFAULT_SLOTS,
};

/// How long a request waits for Redis by default: a round trip on a LAN is well under a
/// millisecond, and a limit should never be what makes a request slow.
const DEFAULT_REDIS_TIMEOUT_S: f64 = 0.05;

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

/// The pid the host's shared tables are named for (rate limits, Forward's upstream health).
pub(super) fn table_owner() -> u32 {
    // SAFETY: getppid has no preconditions.
    *TABLE_OWNER
        .get()
        .unwrap_or(&(unsafe { libc::getppid() } as u32))
}

/// A request rate per client address or per header value (GCRA): over it, 429 with
/// Retry-After. Counters are shared by the server's processes through /dev/shm, or by every
/// host through Redis with `store="redis://host:6379/0"`; a Redis that does not answer within
/// `redis_timeout` seconds lets the request through uncounted (`fail_open=True`) or answers
/// 503 with `Retry-After: 1`.
#[pyclass(name = "RateLimit", module = "ferrogate.middleware", frozen)]
pub struct RateLimit {
    pub(super) app: Py<PyAny>,
    pub(super) layer: Arc<Layer>,
}

#[pymethods]
impl RateLimit {
    #[new]
    #[pyo3(signature = (
        app, rate, burst = None, key = "client_ip", slots = DEFAULT_SLOTS, *, store = None,
        redis_timeout = DEFAULT_REDIS_TIMEOUT_S, fail_open = true,
    ))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one per option.
    fn new(
        app: Py<PyAny>,
        rate: &str,
        burst: Option<u32>,
        key: &str,
        slots: usize,
        store: Option<&str>,
        redis_timeout: f64,
        fail_open: bool,
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
        let store = match store {
            Some(url) => Store::Redis {
                store: Box::new(redis_store(options, url, redis_timeout)?),
                fail_open,
            },
            None => Store::Local(shared_limiter(options, slots)),
        };
        Ok(RateLimit {
            app,
            layer: Arc::new(Layer { store, key }),
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
            None => client_key(client_ip(environ)?).into_vec(),
        };
        // PEP 3333 servers call this with the GIL: a round trip to Redis must not hold it.
        let layer = &self.layer;
        let verdict = match layer.is_remote() {
            true => py.detach(|| layer.check(&key)),
            false => layer.check(&key),
        };
        match verdict {
            Verdict::Refuse(refusal) => refuse(py, start_response, &refusal, &[]),
            Verdict::Pass(headers) => {
                let adding = AddHeaders::new(start_response, headers);
                self.app.bind(py).call1((environ, Bound::new(py, adding)?))
            }
        }
    }
}

fn redis_store(options: LimitOptions, url: &str, timeout_s: f64) -> PyResult<RedisStore> {
    let timeout = Duration::try_from_secs_f64(timeout_s)
        .ok()
        .filter(|timeout| !timeout.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "RateLimit: redis_timeout must be a positive number of seconds, not {timeout_s}"
            ))
        })?;
    RedisStore::new(options, url, timeout)
        .map_err(|error| PyValueError::new_err(format!("RateLimit: {error}")))
}

/// The host's table for this limiter (the n-th made in this process), or the process's own
/// when /dev/shm cannot be used.
fn shared_limiter(options: LimitOptions, slots: usize) -> Limiter {
    let number = LIMITERS_MADE.fetch_add(1, Ordering::Relaxed);
    let scope = TableName::new(&format!(
        "{}-{number}-{}-{}",
        table_owner(),
        options.rate,
        options.burst
    ));
    Limiter::shared(options, &scope, slots).unwrap_or_else(|error| {
        log::warn!(
            "RateLimit: cannot share counters in {} ({error}); counting per process",
            scope.path().display()
        );
        Limiter::local(options, slots)
    })
}
