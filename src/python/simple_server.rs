//! `ferrogate.make_server(host, port, app)`: the `wsgiref.simple_server` interface, served by
//! ferrogate in the calling process (no fork), so tutorial scripts only change their import.
//! With `certfile=` (and `keyfile=`) it serves https.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;
use tokio::sync::Notify;

use super::errors::to_python;
use super::serving::AppRuntime;
use std::path::PathBuf;

use crate::config::{BindAddress, Settings};
use crate::error::Error;
use crate::observe::{error_log, AccessLog};
use crate::server::tls::ServerTls;
use crate::server::{self, Endpoint, Listener};

/// Lets `shutdown()` (another thread) stop `serve_forever()` and wait until it has.
#[derive(Default)]
struct ServeControl {
    /// `shutdown()`: finish in-flight requests first.
    stop: Notify,
    /// Ctrl-C: stop now.
    interrupt: Notify,
    running: Mutex<bool>,
    stopped: Condvar,
}

#[pyclass(module = "ferrogate", frozen)]
pub struct SimpleServer {
    app: Py<PyAny>,
    listener: Mutex<Option<Listener>>,
    #[pyo3(get)]
    server_address: (String, u16),
    control: Arc<ServeControl>,
    settings: Settings,
    /// `certfile=`: every connection speaks TLS.
    tls: Option<ServerTls>,
}

impl SimpleServer {
    fn endpoint(&self) -> PyResult<Endpoint> {
        Ok(Endpoint {
            listener: self.listener()?,
            tls: self.tls.clone(),
            protocol: self.settings.protocol,
        })
    }

    fn listener(&self) -> PyResult<Listener> {
        let guard = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        let listener = guard
            .as_ref()
            .ok_or_else(|| PyOSError::new_err("the server socket is closed"))?;
        listener
            .try_clone()
            .map_err(|e| PyOSError::new_err(e.to_string()))
    }

    /// `--access-log` when the settings name one (`adopt`); `make_server` logs no access.
    fn access_log(&self) -> PyResult<Option<Arc<AccessLog>>> {
        // The same as the command's: --access-log-format and --log-slow-requests apply.
        super::serving::open_access_log(&self.settings).map_err(to_python)
    }

    fn set_running(&self, running: bool) {
        *self
            .control
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = running;
        self.control.stopped.notify_all();
    }
}

#[pymethods]
impl SimpleServer {
    #[new]
    #[pyo3(signature = (host, port, app, certfile = None, keyfile = None))]
    fn new(
        host: &str,
        port: u16,
        app: Py<PyAny>,
        certfile: Option<PathBuf>,
        keyfile: Option<PathBuf>,
    ) -> PyResult<SimpleServer> {
        let _ = error_log::init("-", crate::config::LogLevel::Info);
        let mut settings = Settings::defaults();
        settings.tls.certfile = certfile;
        settings.tls.keyfile = keyfile;
        let tls = ServerTls::from_settings(&settings.tls, settings.http)
            .map_err(|error| to_python(Error::Config(error.to_string())))?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        let address = BindAddress::Tcp {
            host: host.to_string(),
            port,
            scheme: crate::config::BindScheme::Unspecified,
        };
        let listener = server::bind(&address, Settings::defaults().backlog)
            .map_err(|e| to_python(e.into()))?;
        let local = listener
            .local_addr()
            .expect("invariant: a TCP listener has a local address");
        // wsgiref serves one request at a time; ferrogate's default threads keep it responsive.
        settings.workers = 1;
        Ok(SimpleServer {
            app,
            listener: Mutex::new(Some(listener)),
            server_address: (local.ip().to_string(), local.port()),
            control: Arc::default(),
            settings,
            tls,
        })
    }

    /// A server on a listening socket the caller made (`ferrogate.wsgi.server`, eventlet's
    /// API), with the settings of a command line (`argv[0]` is the program name). The
    /// descriptor becomes the server's: pass a duplicate.
    #[staticmethod]
    fn adopt(fd: i32, app: Py<PyAny>, argv: Vec<String>) -> PyResult<SimpleServer> {
        let settings = <Settings as clap::Parser>::try_parse_from(&argv)
            .map_err(|error| PyValueError::new_err(error.to_string()))?;
        let _ = error_log::init(&settings.error_log, settings.log_level);
        let listener = server::bind(&BindAddress::Fd(fd), settings.backlog)
            .map_err(|e| to_python(e.into()))?;
        let server_address = listener.local_addr().map_or((String::new(), 0), |local| {
            (local.ip().to_string(), local.port())
        });
        // `--certfile` in argv: every connection speaks TLS (`ferrogate.wrap_ssl`).
        let tls = ServerTls::from_settings(&settings.tls, settings.http)
            .map_err(|error| to_python(Error::Config(error.to_string())))?;
        Ok(SimpleServer {
            app,
            listener: Mutex::new(Some(listener)),
            server_address,
            control: Arc::default(),
            settings,
            tls,
        })
    }

    /// Serves until `shutdown()` is called or the process gets Ctrl-C (KeyboardInterrupt).
    #[pyo3(signature = (poll_interval = 0.5))]
    fn serve_forever(&self, py: Python<'_>, poll_interval: f64) -> PyResult<()> {
        let endpoint = self.endpoint()?;
        let runtime = AppRuntime::start(
            py,
            self.app.clone_ref(py),
            &self.settings,
            self.access_log()?,
        )
        .map_err(to_python)?;
        let interval =
            Duration::try_from_secs_f64(poll_interval).unwrap_or(Duration::from_millis(500));
        let grace = self.settings.graceful_timeout();
        let max_connections = self.settings.max_connections as usize;
        let control = self.control.clone();
        self.set_running(true);
        // I/O runs on its own thread so it never waits for the GIL; this thread, which may be
        // the main thread, asks Python to run signal handlers (Ctrl-C) between waits.
        let (served, interrupted) = py.detach(|| {
            std::thread::scope(|scope| {
                let caller = std::thread::current();
                let io_control = control.clone();
                let io = scope.spawn(move || {
                    let served = runtime.run_detached(move |handler, options| async move {
                        let stop = async {
                            tokio::select! {
                                _ = io_control.stop.notified() => grace,
                                _ = io_control.interrupt.notified() => Duration::ZERO,
                            }
                        };
                        server::serve(vec![endpoint], handler, options, max_connections, stop).await
                    });
                    caller.unpark();
                    served
                });
                let mut interrupted = None;
                while !io.is_finished() {
                    std::thread::park_timeout(interval);
                    if interrupted.is_none() {
                        if let Err(error) = Python::attach(|py| py.check_signals()) {
                            interrupted = Some(error);
                            control.interrupt.notify_one();
                        }
                    }
                }
                let served = io
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the server thread panicked")));
                (served, interrupted)
            })
        });
        self.set_running(false);
        if let Some(error) = interrupted {
            return Err(error);
        }
        served.map_err(|e| to_python(e.into()))
    }

    /// Waits for one connection, answers its request, and returns.
    fn handle_request(&self, py: Python<'_>) -> PyResult<()> {
        let endpoint = self.endpoint()?;
        let runtime = AppRuntime::start(
            py,
            self.app.clone_ref(py),
            &self.settings,
            self.access_log()?,
        )
        .map_err(to_python)?;
        runtime
            .run(py, move |handler, mut options| async move {
                options.limits.keep_alive = None;
                server::serve_one_connection(endpoint, handler, options).await
            })
            .map_err(|e| to_python(e.into()))
    }

    /// Stops `serve_forever()` (running in another thread) and waits until it has returned.
    fn shutdown(&self, py: Python<'_>) {
        self.control.stop.notify_one();
        let control = self.control.clone();
        py.detach(move || {
            let mut running = control.running.lock().unwrap_or_else(|e| e.into_inner());
            while *running {
                running = control
                    .stopped
                    .wait(running)
                    .unwrap_or_else(|e| e.into_inner());
            }
        });
    }

    fn server_close(&self) {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _traceback = None))]
    fn __exit__(
        &self,
        _exc_type: Option<Bound<'_, PyType>>,
        _exc: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) {
        self.server_close();
    }
}
