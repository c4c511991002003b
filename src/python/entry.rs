//! `ferrogate._ferrogate.main` (the command) and `run` (serve an app object): parse settings,
//! open the logs, bind, and hand over to the supervisor.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::hooks;
use super::launcher::ForkLauncher;
use super::serving::{load_app, open_access_log, prepare_path, AppSource};
use crate::config::{self, BindAddress, FileEntry, FileValue, LoadError, Loaded, Settings};
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
    let systemd = loaded.is_default("bind").then(systemd_sockets).flatten();
    launch(py, &loaded.settings, AppSource::Spec(spec), systemd)
}

/// Serves an app object with the settings in `argv` (which names no app); returns the exit code.
#[pyfunction]
pub fn run(py: Python<'_>, app: Py<PyAny>, argv: Vec<String>) -> i32 {
    match load_settings(py, &argv) {
        Ok(loaded) if loaded.settings.check_config => {
            print!("{}", config::report(&loaded));
            0
        }
        Ok(loaded) => launch(py, &loaded.settings, AppSource::Object(app), None),
        Err(code) => code,
    }
}

/// The settings from `argv`, the environment and the config file; a bad one is printed
/// (naming it and where it came from) and turned into the exit code.
fn load_settings(py: Python<'_>, argv: &[String]) -> Result<Loaded, i32> {
    let dir = std::env::current_dir().unwrap_or_default();
    let mut read_python = |path: &Path| read_python_config(py, path);
    match config::load(argv, &dir, &mut read_python) {
        Ok(loaded) => match hooks::install(py, &loaded) {
            Ok(()) => Ok(loaded),
            Err(error) => {
                eprintln!("ferrogate: cannot install the config file's hooks: {error}");
                Err(EXIT_USAGE)
            }
        },
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

/// systemd socket activation: the sockets systemd passed (descriptors 3 to 3+LISTEN_FDS-1),
/// when LISTEN_PID names this process. The variables are removed so that the app and its
/// subprocesses do not take the sockets for theirs.
fn systemd_sockets() -> Option<Vec<BindAddress>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()?
        .trim()
        .parse::<u32>()
        .ok()?
        == std::process::id();
    let count = std::env::var("LISTEN_FDS")
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()?;
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    (for_us && count > 0).then(|| {
        (0..count)
            .map(|i| BindAddress::Fd(SD_LISTEN_FDS_START + i))
            .collect()
    })
}

/// The first descriptor systemd passes (sd_listen_fds(3)).
const SD_LISTEN_FDS_START: i32 = 3;

fn launch(
    py: Python<'_>,
    settings: &Settings,
    app: AppSource,
    systemd: Option<Vec<BindAddress>>,
) -> i32 {
    if settings.reload && settings.preload {
        eprintln!(
            "ferrogate: --reload and --preload do not go together: a preloaded app is not \
             imported again on reload"
        );
        return EXIT_USAGE;
    }
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
    if let Err(error) = hooks::run(py, "on_starting", 0) {
        log::error!("{error}");
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
    let binds = match &systemd {
        Some(sockets) => {
            forget_systemd_variables(py);
            sockets.as_slice()
        }
        None => settings.bind.as_slice(),
    };
    let prepared = prepare_path(py, settings)
        .and_then(|()| preload(py, settings, app))
        .and_then(|app| Ok((app, open_access_log(settings)?)))
        .and_then(|(app, access_log)| Ok((app, access_log, bind_all(binds, settings.backlog)?)));
    let (app, access_log, listeners) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            log::error!("{error}");
            return error.exit_code();
        }
    };
    if let Some(mode) = settings.unix_socket_perms {
        for path in listeners.iter().filter_map(Listener::socket_file) {
            let permissions = std::fs::Permissions::from_mode(mode);
            if let Err(error) = std::fs::set_permissions(path, permissions) {
                log::error!(
                    "--unix-socket-perms: cannot set {}: {error}",
                    path.display()
                );
                return EXIT_USAGE;
            }
        }
    }
    if let Some(identity) = &identity {
        for path in listeners.iter().filter_map(Listener::socket_file) {
            if let Err(error) = identity.give(path) {
                log::error!(
                    "Cannot give {} to {}: {error}",
                    path.display(),
                    identity.describe()
                );
                return EXIT_USAGE;
            }
        }
    }
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
    if let Err(error) = hooks::run(py, "when_ready", 0) {
        log::error!("{error}");
        return EXIT_USAGE;
    }
    let options = SupervisorOptions {
        workers: settings.workers as usize,
        graceful_timeout: settings.graceful_timeout(),
        timeout: settings.timeout(),
    };
    let socket_files: Vec<PathBuf> = listeners
        .iter()
        .filter_map(|l| l.socket_file().map(Path::to_path_buf))
        .collect();
    let mut launcher = ForkLauncher {
        py,
        settings,
        access_log,
        listeners,
        app: &app,
        identity,
    };
    let code = supervisor::supervise(options, &mut launcher);
    for path in socket_files {
        let _ = std::fs::remove_file(path);
    }
    hooks::run_logged(py, "on_exit", 0);
    code
}

/// `--preload`: the app is imported here, in the master, before anything is bound or forked:
/// an import error stops the start at once, and the workers share the loaded code by fork.
fn preload(py: Python<'_>, settings: &Settings, app: AppSource) -> Result<AppSource, Error> {
    match app {
        AppSource::Spec(_) if settings.preload => {
            let loaded = load_app(py, &app)?;
            log::info!("Preloaded the app in the master");
            Ok(AppSource::Object(loaded))
        }
        app => Ok(app),
    }
}

/// Python's copy of the environment, taken at startup, still holds systemd's variables.
fn forget_systemd_variables(py: Python<'_>) {
    if let Ok(environ) = py.import("os").and_then(|os| os.getattr("environ")) {
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            let _ = environ.call_method1("pop", (name, py.None()));
        }
    }
}

fn bind_all(binds: &[BindAddress], backlog: i32) -> Result<Vec<Listener>, Error> {
    for (i, address) in binds.iter().enumerate() {
        if matches!(address, BindAddress::Fd(_)) && binds[..i].contains(address) {
            return Err(Error::Config(format!("--bind {address} is given twice")));
        }
    }
    binds
        .iter()
        .map(|address| server::bind(address, backlog).map_err(Error::from))
        .collect()
}
