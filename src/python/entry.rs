//! `ferrogate._ferrogate.main` (the command) and `run` (serve an app object): parse settings,
//! open the logs, bind, and hand over to the supervisor.

use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::launcher::ForkLauncher;
use super::serving::{open_access_log, prepare_path, AppSource};
use crate::config::{self, FileEntry, FileValue, LoadError, Loaded, Settings};
use crate::error::{Error, EXIT_USAGE};
use crate::observe::error_log;
use crate::server::{self, Listener};
use crate::supervisor::{self, PidFile, SupervisorOptions};

/// Parses `argv` as the `ferrogate` command and serves; returns the exit code.
#[pyfunction]
pub fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let loaded = match load_settings(py, &argv) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if loaded.settings.check_config {
        print!("{}", config::report(&loaded));
        return 0;
    }
    let Some(spec) = loaded.settings.app.clone() else {
        eprintln!("ferrogate: no app given; for example: ferrogate myproject.wsgi:application");
        return EXIT_USAGE;
    };
    launch(py, &loaded.settings, AppSource::Spec(spec))
}

/// Serves an app object with the settings in `argv` (which names no app); returns the exit code.
#[pyfunction]
pub fn run(py: Python<'_>, app: Py<PyAny>, argv: Vec<String>) -> i32 {
    match load_settings(py, &argv) {
        Ok(loaded) if loaded.settings.check_config => {
            print!("{}", config::report(&loaded));
            0
        }
        Ok(loaded) => launch(py, &loaded.settings, AppSource::Object(app)),
        Err(code) => code,
    }
}

/// The settings from `argv`, the environment and the config file; a bad one is printed
/// (naming it and where it came from) and turned into the exit code.
fn load_settings(py: Python<'_>, argv: &[String]) -> Result<Loaded, i32> {
    let dir = std::env::current_dir().unwrap_or_default();
    let mut read_python = |path: &Path| read_python_config(py, path);
    match config::load(argv, &dir, &mut read_python) {
        Ok(loaded) => Ok(loaded),
        Err(LoadError::Usage(error)) => {
            let _ = error.print();
            Err(error.exit_code())
        }
        Err(error) => {
            eprintln!("ferrogate: {error}");
            Err(EXIT_USAGE)
        }
    }
}

/// Executes a gunicorn-style Python config file (ferrogate/_pyconfig.py) into entries.
fn read_python_config(py: Python<'_>, path: &Path) -> Result<Vec<FileEntry>, String> {
    let read = py
        .import("ferrogate._pyconfig")
        .and_then(|module| module.call_method1("read", (path.to_string_lossy().as_ref(),)))
        .map_err(|error| {
            let traceback = error
                .traceback(py)
                .and_then(|tb| tb.format().ok())
                .unwrap_or_default();
            format!(
                "cannot run the config file {}:\n{traceback}{error}",
                path.display()
            )
        })?;
    let entries: Vec<(String, Bound<'_, PyAny>, usize)> = read
        .extract()
        .map_err(|error: PyErr| format!("{}: {error}", path.display()))?;
    Ok(entries
        .into_iter()
        .map(|(key, value, line)| FileEntry {
            key,
            value: file_value(&value),
            line,
        })
        .collect())
}

fn file_value(value: &Bound<'_, PyAny>) -> FileValue {
    if value.is_instance_of::<PyBool>() {
        return FileValue::Bool(value.extract().unwrap_or(false));
    }
    if value.is_instance_of::<PyInt>() {
        return value
            .extract()
            .map(FileValue::Int)
            .unwrap_or_else(|_| FileValue::Other("an integer out of range".into()));
    }
    if value.is_instance_of::<PyFloat>() {
        return FileValue::Float(value.extract().unwrap_or(f64::NAN));
    }
    if value.is_instance_of::<PyString>() {
        return FileValue::Text(value.extract().unwrap_or_default());
    }
    if let Ok(list) = value.cast::<PyList>() {
        return FileValue::List(list.iter().map(|item| file_value(&item)).collect());
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        let what: String = tuple
            .get_item(0)
            .and_then(|item| item.extract())
            .unwrap_or_else(|_| "a Python object".into());
        return FileValue::Other(what);
    }
    FileValue::Other("a Python object".into())
}

fn launch(py: Python<'_>, settings: &Settings, app: AppSource) -> i32 {
    if settings.daemon {
        eprintln!(
            "ferrogate: --daemon is not offered: run ferrogate under systemd or another \
             supervisor, which keeps its logs and restarts it (README, Deployment)"
        );
        return EXIT_USAGE;
    }
    if let Err(error) = error_log::init(&settings.error_log, settings.log_level) {
        eprintln!(
            "ferrogate: cannot open the error log {:?}: {error}",
            settings.error_log
        );
        return EXIT_USAGE;
    }
    if let Some(mask) = settings.umask {
        supervisor::set_umask(mask);
    }
    let identity =
        match supervisor::resolve_identity(settings.user.as_deref(), settings.group.as_deref()) {
            Ok(identity) => identity,
            Err(error) => {
                log::error!("{error}");
                return EXIT_USAGE;
            }
        };
    let prepared = prepare_path(py, settings)
        .and_then(|()| open_access_log(settings))
        .and_then(|access_log| Ok((access_log, bind_all(settings)?)));
    let (access_log, listeners) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            log::error!("{error}");
            return error.exit_code();
        }
    };
    let _pid_file = match settings.pid.as_deref().map(PidFile::write).transpose() {
        Ok(pid_file) => pid_file,
        Err(error) => {
            let path = settings.pid.as_deref().unwrap_or_else(|| Path::new(""));
            log::error!("Cannot write the pid file {}: {error}", path.display());
            return EXIT_USAGE;
        }
    };
    log::info!("Starting ferrogate {}", env!("CARGO_PKG_VERSION"));
    if let Some(identity) = &identity {
        log::info!("Workers run as {}", identity.describe());
    }
    supervisor::raise_open_file_limit(u64::from(settings.max_connections));
    for listener in &listeners {
        log::info!(
            "Listening at {listener} (workers: {}, threads: {})",
            settings.workers,
            settings.threads
        );
    }
    let options = SupervisorOptions {
        workers: settings.workers as usize,
        graceful_timeout: settings.graceful_timeout(),
        timeout: settings.timeout(),
    };
    let mut launcher = ForkLauncher {
        py,
        settings,
        access_log,
        listeners: &listeners,
        app: &app,
        identity,
    };
    let code = supervisor::supervise(options, &mut launcher);
    for listener in &listeners {
        listener.remove_socket_file();
    }
    code
}

fn bind_all(settings: &Settings) -> Result<Vec<Listener>, Error> {
    settings
        .bind
        .iter()
        .map(|address| server::bind(address).map_err(Error::from))
        .collect()
}
