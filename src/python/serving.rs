//! Serving an app inside this process: load it, start its Python threads and an I/O runtime,
//! and run a serving future with the GIL released. Used by workers and by `make_server`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::middleware;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::http::h2::Http2Options;
use crate::http::{ConnectionOptions, Limits};
use crate::middleware::{Node, Pipeline, Probes};
use crate::observe::metrics::WorkerMetrics;
use crate::observe::{AccessLog, AccessLogOptions, Readiness};
use crate::wsgi::{
    ProgressProbe, PythonThreads, RequestTimeouts, Shedding, WsgiConfig, WsgiHandler,
};

/// Where a worker's app comes from.
pub enum AppSource {
    /// An import string, loaded in each worker after the fork.
    Spec(String),
    /// An app object already loaded by the caller (`ferrogate.run(app)`), shared by fork.
    Object(Py<PyAny>),
}

/// Opens `--access-log`, if given, with its format and the slow-request threshold; done
/// once, in the master. `None` when neither an access log nor slow requests are wanted.
pub fn open_access_log(settings: &Settings) -> Result<Option<Arc<AccessLog>>> {
    let slow_after = settings.observe.log_slow_requests();
    let target = settings.access_log.as_deref();
    if target.is_none() && slow_after.is_none() {
        return Ok(None);
    }
    let options = AccessLogOptions {
        target,
        format: settings.observe.access_format(),
        slow_after,
    };
    AccessLog::open_with(options)
        .map(|log| Some(Arc::new(log)))
        .map_err(|error| {
            let target = target.unwrap_or_default();
            Error::Config(format!("cannot open the access log {target:?}: {error}"))
        })
}

/// Applies --env, --chdir and --pythonpath; done once, in the master, before binding.
pub fn prepare_path(py: Python<'_>, settings: &Settings) -> Result<()> {
    let chdir = settings
        .chdir
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    py.import("ferrogate._loader")
        .and_then(|loader| {
            loader.call_method1(
                "prepare_path",
                (
                    chdir,
                    PyList::new(py, &settings.pythonpath)?,
                    PyList::new(py, &settings.env)?,
                ),
            )
        })
        .map(|_| ())
        .map_err(|error| Error::Config(format!("cannot apply --env/--chdir/--pythonpath: {error}")))
}

/// With `--request-timeout`, `time.sleep` sleeps in slices the timeout can interrupt
/// (ferrogate/_timeouts.py); done before the app is imported (master and worker).
pub fn slice_sleep_for_timeouts(py: Python<'_>, settings: &Settings) -> Result<()> {
    if settings.observe.request_timeout().is_none()
        && !settings.middleware.mounts_set_request_timeouts()
    {
        return Ok(());
    }
    py.import("ferrogate._timeouts")
        .and_then(|timeouts| timeouts.call_method0("install"))
        .map(|_| ())
        .map_err(|error| Error::Config(format!("cannot prepare --request-timeout: {error}")))
}

/// `--log-config`: Python's logging configured from the file at `path` (ferrogate/
/// _log_config.py), in the master before the app is imported; the workers inherit it. A
/// file that is missing or not a logging configuration is a configuration error naming it.
pub fn configure_logging(py: Python<'_>, path: Option<&Path>) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    py.import("ferrogate._log_config")
        .and_then(|module| module.call_method1("configure", (path,)))
        .map(|_| ())
        .map_err(|error| Error::Config(error.value(py).to_string()))
}

/// Imports the app named by `source`, or hands back the object given.
pub fn load_app(py: Python<'_>, source: &AppSource) -> Result<Py<PyAny>> {
    match source {
        AppSource::Object(app) => Ok(app.clone_ref(py)),
        AppSource::Spec(spec) => py
            .import("ferrogate._loader")
            .and_then(|loader| loader.call_method1("load", (spec.as_str(),)))
            .map(Bound::unbind)
            .map_err(|error| {
                // An AppLoadError's message says what is wrong; its traceback only shows
                // the loader's own frames.
                let traceback = error
                    .traceback(py)
                    .filter(|_| !is_app_load_error(py, &error))
                    .and_then(|tb| tb.format().ok())
                    .unwrap_or_default();
                Error::AppLoad(format!(
                    "Failed to load the app {spec:?}:\n{traceback}{error}"
                ))
            }),
    }
}

fn is_app_load_error(py: Python<'_>, error: &PyErr) -> bool {
    py.import("ferrogate._loader")
        .and_then(|loader| loader.getattr("AppLoadError"))
        .is_ok_and(|class| error.get_type(py).is_subclass(&class).unwrap_or(false))
}

/// An app ready to serve in this process: its Python threads and an I/O runtime.
pub struct AppRuntime {
    threads: PythonThreads,
    runtime: tokio::runtime::Runtime,
    options: ConnectionOptions,
    /// The native middleware lifted from the app, in front of its Python apps.
    pipeline: Arc<Node>,
    root_path: String,
    /// What `--health-path`/`--ready-path` answer; the launcher begins the drain on it.
    readiness: Arc<Readiness>,
    probes: Option<Probes>,
}

/// What a worker's connections call: the native middleware, then the Python threads.
pub type AppHandler = Pipeline<WsgiHandler>;

/// Threads for the disk work of the native middleware (static file lookups, compressing a
/// large body): each job takes microseconds, so a few per core keep up, where tokio's
/// default (512) let 64 clients of static files grow a worker to 125 threads
/// (benches/README.md, "middleware rows").
fn blocking_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    (cores * 2).max(4)
}

/// After the connections drained (or the graceful timeout passed), how long Python threads
/// still inside the app are waited for before the process moves on.
const THREAD_STOP_TIMEOUT: Duration = Duration::from_secs(1);

impl AppRuntime {
    pub fn start(
        py: Python<'_>,
        app: Py<PyAny>,
        settings: &Settings,
        access_log: Option<Arc<AccessLog>>,
    ) -> Result<AppRuntime> {
        let mut config = WsgiConfig {
            threads: settings.threads as usize,
            workers: settings.workers as usize,
            root_path: settings.root_path.trim_end_matches('/').to_string(),
            debug: settings.debug,
            socket_timeout: settings.socket_timeout(),
            shedding: Shedding {
                max_queue: settings.observe.max_queue(),
                max_queue_time: settings.observe.max_queue_time(),
            },
            request_timeout: RequestTimeouts {
                default: settings.observe.request_timeout(),
                by_app: Vec::new(),
            },
        };
        let options = ConnectionOptions {
            limits: Limits::from_settings(settings),
            access_log,
            trusted_proxies: settings.forwarded_allow_ips.clone(),
            proxy_protocol: settings.proxy_protocol,
            capitalize_header_names: settings.capitalize_response_headers,
            metrics: None,
            http2: Http2Options {
                versions: settings.http,
                max_concurrent_streams: settings.http2.http2_max_concurrent_streams,
                max_header_list_bytes: settings.http2.http2_max_header_list_size,
                stream_window_bytes: settings.http2.http2_initial_stream_window_size,
                connection_window_bytes: settings.http2.http2_initial_connection_window_size,
                max_frame_bytes: settings.http2.http2_max_frame_size,
            },
            // Deferring accepts only helps when another worker can take the connection.
            max_in_flight: if settings.workers > 1 {
                settings.threads as usize
            } else {
                0
            },
        };
        // PERF: one I/O thread per worker; with the app on other threads, a multi-threaded
        // runtime only adds cross-thread wake-ups (benches/e2e hello keep-alive).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(blocking_threads())
            .build()?;
        let root_path = config.root_path.clone();
        let app = middleware::wrap_with_settings(py, app, settings)?;
        let lifted = middleware::lift(py, app, !settings.middleware.no_native_middleware);
        config.request_timeout.by_app = lifted.request_timeouts;
        let threads = PythonThreads::start(lifted.apps, config)?;
        // The app was imported (here, or by the master with --preload) before we got here.
        let readiness = Arc::new(Readiness::default());
        readiness.mark_ready();
        let observe = &settings.observe;
        let probes = Probes::new(
            observe.health_path.clone(),
            observe.ready_path.clone(),
            readiness.clone(),
        );
        Ok(AppRuntime {
            threads,
            runtime,
            options,
            pipeline: lifted.root,
            root_path,
            readiness,
            probes,
        })
    }

    /// Samples the Python threads' progress, for the worker's heartbeat.
    pub fn progress_probe(&self) -> ProgressProbe {
        self.threads.progress_probe()
    }

    /// Counts this worker's requests and connections into `metrics` (`--metrics-bind`).
    pub fn set_metrics(&mut self, metrics: Option<WorkerMetrics>) {
        self.options.metrics = metrics;
    }

    /// The worker's phase as the probes report it; a graceful stop begins its drain here.
    pub fn readiness(&self) -> Arc<Readiness> {
        self.readiness.clone()
    }

    /// Runs the future `serve` builds until it ends, with the GIL released; then lets the
    /// Python threads finish what they were doing.
    pub fn run<F, Fut>(self, py: Python<'_>, serve: F) -> Fut::Output
    where
        F: FnOnce(AppHandler, ConnectionOptions) -> Fut + Send,
        Fut: Future,
        Fut::Output: Send,
    {
        py.detach(move || self.run_detached(serve))
    }

    /// `run` for a caller that does not hold the GIL (any thread).
    pub fn run_detached<F, Fut>(self, serve: F) -> Fut::Output
    where
        F: FnOnce(AppHandler, ConnectionOptions) -> Fut,
        Fut: Future,
    {
        let AppRuntime {
            threads,
            runtime,
            options,
            pipeline,
            root_path,
            readiness: _,
            probes,
        } = self;
        let layers = pipeline.clone();
        let handler = Pipeline::new(pipeline, threads.handler(), &root_path).with_probes(probes);
        let lingering = threads.watch_lingering();
        let replies = threads.deliver_replies();
        let timeouts = threads.watch_request_timeouts();
        let output = runtime.block_on(async move {
            tokio::spawn(lingering);
            tokio::spawn(replies);
            layers.start_tasks();
            if let Some(timeouts) = timeouts {
                tokio::spawn(timeouts);
            }
            serve(handler, options).await
        });
        drop(runtime);
        threads.stop(THREAD_STOP_TIMEOUT);
        output
    }
}
