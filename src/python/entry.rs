//! `ferrogate._ferrogate.main` (the command) and `run` (serve an app object): parse settings,
//! open the logs, bind, and hand over to the supervisor.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::hooks;
use super::launcher::{ForkLauncher, Prepared, Restart, ServedTls};
use super::paste;
use super::serving::{
    configure_logging, load_app, open_access_log, prepare_path, slice_sleep_for_timeouts, AppSource,
};
use crate::config::{
    self, BindAddress, FileEntry, FileValue, LoadError, Loaded, Protocol, Settings,
};
use crate::error::{Error, EXIT_BIND, EXIT_USAGE};
use crate::middleware::rate_limit;
use crate::observe::error_log;
use crate::observe::metrics::{self, MetricsTable};
use crate::server::tls::ServerTls;
use crate::server::{self, Listener};
use crate::supervisor::upgrade::Successor;
use crate::supervisor::{self, control, PidFile, SupervisorOptions};

/// Parses `argv` as the `ferrogate` command and serves; returns the exit code.
#[pyfunction]
pub fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let start_dir = std::env::current_dir().unwrap_or_default();
    let mut loaded = match read_settings(py, &argv, &start_dir) {
        Ok(loaded) => loaded,
        Err(failure) => return failure.print(),
    };
    if loaded.settings.check_config {
        print!("{}", config::report(&loaded));
        return 0;
    }
    let spec = match paste::app_spec(py, &mut loaded.settings, &start_dir) {
        Ok(spec) => spec,
        Err(error) => {
            eprintln!("ferrogate: {error}");
            return error.exit_code();
        }
    };
    let Some(spec) = spec else {
        eprintln!("ferrogate: no app given; for example: ferrogate myproject.wsgi:application");
        return EXIT_USAGE;
    };
    let systemd = loaded.is_default("bind").then(systemd_sockets).flatten();
    let start = Start {
        argv,
        start_dir,
        systemd,
    };
    launch(py, loaded, AppSource::Spec(spec), start)
}

/// Serves an app object with the settings in `argv` (which names no app); returns the exit code.
#[pyfunction]
pub fn run(py: Python<'_>, app: Py<PyAny>, argv: Vec<String>) -> i32 {
    let start_dir = std::env::current_dir().unwrap_or_default();
    match read_settings(py, &argv, &start_dir) {
        Ok(loaded) if loaded.settings.check_config => {
            print!("{}", config::report(&loaded));
            0
        }
        Ok(loaded) if loaded.settings.paste.is_some() => {
            // Not silently ignored: a `paste` from the environment or a config file names an
            // app, and run() (or pserve's runner) was handed one.
            eprintln!(
                "ferrogate: --paste names an app to load, but ferrogate.run() was given an \
                 app object: remove the paste setting"
            );
            EXIT_USAGE
        }
        Ok(loaded) => {
            let start = Start {
                argv,
                start_dir,
                systemd: None,
            };
            launch(py, loaded, AppSource::Object(app), start)
        }
        Err(failure) => failure.print(),
    }
}

/// How this process was started, for what SIGHUP reads again and SIGUSR2 runs again.
struct Start {
    argv: Vec<String>,
    /// The working directory before `--chdir`: relative paths in `argv` are from there.
    start_dir: PathBuf,
    systemd: Option<Vec<BindAddress>>,
}

/// Why the settings could not be read.
pub(super) enum SettingsFailure {
    Load(LoadError),
    Hooks(String),
}

impl SettingsFailure {
    /// Prints the failure as the command does (clap's own format for usage errors, `--help`
    /// and `--version`) and returns the exit code.
    fn print(self) -> i32 {
        match self {
            SettingsFailure::Load(LoadError::Usage(error)) => {
                let _ = error.print();
                error.exit_code()
            }
            failure => {
                eprintln!("ferrogate: {failure}");
                EXIT_USAGE
            }
        }
    }
}

impl std::fmt::Display for SettingsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingsFailure::Load(error) => write!(f, "{}", error.to_string().trim_end()),
            SettingsFailure::Hooks(error) => {
                write!(f, "cannot install the config file's hooks: {error}")
            }
        }
    }
}

/// The settings from `argv`, the environment and the config file (found from `dir`), with
/// the config file's hooks installed.
pub(super) fn read_settings(
    py: Python<'_>,
    argv: &[String],
    dir: &Path,
) -> Result<Loaded, SettingsFailure> {
    let mut read_python = |path: &Path| read_python_config(py, path);
    let loaded = config::load(argv, dir, &mut read_python).map_err(SettingsFailure::Load)?;
    hooks::install(py, &loaded).map_err(|error| SettingsFailure::Hooks(error.to_string()))?;
    Ok(loaded)
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

fn launch(py: Python<'_>, loaded: Loaded, app: AppSource, start: Start) -> i32 {
    let settings = &loaded.settings;
    // Before anything imports the app: its rate limiters' tables are named for this master.
    let table_owner = super::middleware::own_tables();
    // Tables named for this pid are a dead master's (one killed before it could remove
    // them, whose pid came round again): nobody's now, and never this master's to inherit.
    if let Err(error) = rate_limit::remove_tables(&table_owner.to_string()) {
        log::warn!("Cannot remove a former master's tables: {error}");
    }
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
    let tls = match ServerTls::from_settings(&settings.tls, settings.http) {
        Ok(tls) => tls,
        Err(error) => {
            log::error!("{error}");
            return EXIT_USAGE;
        }
    };
    let mut inherited = take_inherited_sockets(py);
    let binds = match &start.systemd {
        Some(sockets) => {
            forget_python_variables(py, &["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]);
            sockets.as_slice()
        }
        None => settings.bind.as_slice(),
    };
    // A successor started by SIGUSR2 under systemd (no --bind) keeps the sockets it inherited.
    let keep_all_inherited = loaded.is_default("bind") && !inherited.is_empty();
    // Relative to where ferrogate started, before --chdir (as --paste's ini).
    let log_config = settings
        .observe
        .log_config
        .as_ref()
        .map(|p| start.start_dir.join(p));
    let prepared = prepare_path(py, settings)
        .and_then(|()| configure_logging(py, log_config.as_deref()))
        .and_then(|()| slice_sleep_for_timeouts(py, settings))
        .and_then(|()| preload(py, settings, app))
        .and_then(|app| Ok((app, open_access_log(settings)?)))
        .and_then(|(app, access_log)| {
            let listeners = match keep_all_inherited {
                true => std::mem::take(&mut inherited),
                false => bind_all(binds, settings, &mut inherited)?,
            };
            Ok((app, access_log, listeners))
        });
    server::handover::close_unwanted(inherited);
    let (app, access_log, listeners) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            log::error!("{error}");
            return error.exit_code();
        }
    };
    let schemes = server::roles::listener_schemes(binds, &listeners);
    let encrypted =
        match server::roles::encrypted_listeners(&schemes, &listeners, tls.is_some(), settings) {
            Ok(encrypted) => encrypted,
            Err(error) => {
                log::error!("{error}");
                return EXIT_USAGE;
            }
        };
    if let Err(code) = give_socket_files(settings, &listeners, identity.as_ref()) {
        return code;
    }
    let pid_file = match settings.pid.as_deref().map(PidFile::write).transpose() {
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
    let mut shown_listeners = Vec::with_capacity(listeners.len());
    for ((listener, tls), scheme) in listeners.iter().zip(&encrypted).zip(&schemes) {
        let shown = listener.to_string();
        let shown = match (tls, scheme.protocol(settings.protocol)) {
            (true, _) => shown.replacen("http://", "https://", 1),
            (false, Protocol::Uwsgi) if shown.starts_with("http://") => {
                shown.replacen("http://", "uwsgi://", 1)
            }
            (false, Protocol::Uwsgi) => format!("uwsgi://{shown}"),
            (false, Protocol::Http) => shown,
        };
        shown_listeners.push(shown.clone());
        log::info!(
            "Listening at {shown} (workers: {}, threads: {})",
            settings.workers,
            settings.threads
        );
    }
    if let Err(error) = hooks::run(py, "when_ready", 0) {
        log::error!("{error}");
        return EXIT_USAGE;
    }
    // The workers' Forward tables are named for this master (own_tables).
    let owner = super::middleware::own_tables();
    let labels = metrics::Labels {
        listeners: shown_listeners,
        tls: encrypted.clone(),
        more: vec![Box::new(move |out: &mut String| {
            crate::middleware::forward::render_upstreams(owner, out)
        })],
    };
    let metrics = match start_metrics(settings, labels) {
        Ok(metrics) => metrics,
        Err(code) => return code,
    };
    let control_socket = settings.observe.control_socket.clone();
    let options = supervisor_options(settings);
    let socket_files: Vec<PathBuf> = listeners
        .iter()
        .filter_map(|l| l.socket_file().map(Path::to_path_buf))
        .collect();
    let successor = successor_command(py, &start.start_dir);
    let prepared = Prepared {
        loaded,
        app,
        access_log,
        listeners,
        identity,
        pid_file,
        tls: tls.map(|tls| ServedTls { tls, encrypted }),
        schemes,
        metrics,
    };
    let restart = Restart {
        argv: start.argv,
        start_dir: start.start_dir,
        successor,
    };
    let mut launcher = ForkLauncher::new(py, prepared, restart);
    let code = supervisor::supervise(options, &mut launcher);
    // The new master started by SIGUSR2 serves on these files now.
    if !launcher.handed_over() {
        for path in socket_files {
            let _ = std::fs::remove_file(path);
        }
        // Likewise its control socket, which the new master bound again at that path.
        if let Some(path) = &control_socket {
            control::remove(path);
        }
    }
    if let Err(error) = rate_limit::remove_tables(&table_owner.to_string()) {
        log::warn!("Cannot remove the rate limit tables: {error}");
    }
    hooks::run_logged(py, "on_exit", 0);
    code
}

/// The workers' shared counters (for `--metrics-bind` and `--control-socket`), the master's
/// endpoint serving them, and its control socket.
fn start_metrics(
    settings: &Settings,
    labels: metrics::Labels,
) -> Result<Option<MetricsTable>, i32> {
    let observe = &settings.observe;
    if observe.metrics_bind.is_none() && observe.control_socket.is_none() {
        return Ok(None);
    }
    let capacity = supervisor::slot_capacity(settings.workers as usize);
    let table = MetricsTable::new(capacity).map_err(|error| {
        log::error!("Cannot map the metrics table: {error}");
        1
    })?;
    if let Some(address) = observe.metrics_bind {
        match metrics::start(address, table.clone(), labels) {
            Ok(bound) => log::info!("Serving metrics at http://{bound}/metrics"),
            Err(error) => {
                log::error!("cannot serve metrics on {address} (--metrics-bind): {error}");
                return Err(EXIT_BIND);
            }
        }
    }
    if let Some(path) = &observe.control_socket {
        let control = control::Control {
            path: path.clone(),
            metrics: Some(table.clone()),
        };
        match control::start(control) {
            Ok(()) => log::info!("Control socket at {} (ferrogate ctl)", path.display()),
            Err(error) => {
                log::error!(
                    "cannot listen on {} (--control-socket): {error}",
                    path.display()
                );
                return Err(EXIT_BIND);
            }
        }
    }
    Ok(Some(table))
}

pub(super) fn supervisor_options(settings: &Settings) -> SupervisorOptions {
    SupervisorOptions {
        workers: settings.workers as usize,
        // A worker first serves for the drain delay, then gets the graceful timeout.
        graceful_timeout: settings.graceful_timeout() + settings.observe.drain_delay(),
        timeout: settings.timeout(),
    }
}

/// `--unix-socket-perms`, then `--user`/`--group` as the socket files' owner.
fn give_socket_files(
    settings: &Settings,
    listeners: &[Listener],
    identity: Option<&supervisor::Identity>,
) -> Result<(), i32> {
    if let Some(mode) = settings.unix_socket_perms {
        for path in listeners.iter().filter_map(Listener::socket_file) {
            let permissions = std::fs::Permissions::from_mode(mode);
            if let Err(error) = std::fs::set_permissions(path, permissions) {
                log::error!(
                    "--unix-socket-perms: cannot set {}: {error}",
                    path.display()
                );
                return Err(EXIT_USAGE);
            }
        }
    }
    if let Some(identity) = identity {
        for path in listeners.iter().filter_map(Listener::socket_file) {
            if let Err(error) = identity.give(path) {
                log::error!(
                    "Cannot give {} to {}: {error}",
                    path.display(),
                    identity.describe()
                );
                return Err(EXIT_USAGE);
            }
        }
    }
    Ok(())
}

/// The sockets an old master handed over (SIGUSR2), if this process is its successor.
fn take_inherited_sockets(py: Python<'_>) -> Vec<Listener> {
    let fds = supervisor::upgrade::take_inherited();
    forget_python_variables(py, &[supervisor::upgrade::INHERITED_FDS]);
    if !fds.is_empty() {
        log::info!("Started by the old master's SIGUSR2: taking over its sockets");
    }
    server::handover::adopt(&fds)
}

/// What SIGUSR2 runs: this Python with the arguments it was started with (`sys.orig_argv`),
/// the program named by its absolute path so that the same virtualenv is found.
fn successor_command(py: Python<'_>, start_dir: &Path) -> Option<Successor> {
    let sys = py.import("sys").ok()?;
    let program: PathBuf = sys.getattr("executable").ok()?.extract().ok()?;
    let mut argv: Vec<std::ffi::OsString> = sys.getattr("orig_argv").ok()?.extract().ok()?;
    if program.as_os_str().is_empty() || argv.is_empty() {
        return None;
    }
    argv[0] = program.clone().into_os_string();
    Some(Successor {
        program,
        argv,
        start_dir: start_dir.to_path_buf(),
    })
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

/// Python's copy of the environment, taken at startup, still holds variables removed since.
fn forget_python_variables(py: Python<'_>, names: &[&str]) {
    if let Ok(environ) = py.import("os").and_then(|os| os.getattr("environ")) {
        for name in names {
            let _ = environ.call_method1("pop", (*name, py.None()));
        }
    }
}

/// Binds every address, taking the sockets inherited from an old master where they match.
fn bind_all(
    binds: &[BindAddress],
    settings: &Settings,
    inherited: &mut Vec<Listener>,
) -> Result<Vec<Listener>, Error> {
    let sharing = match settings.reuse_port {
        true => server::Sharing::PerWorker,
        false => server::Sharing::Shared,
    };
    for (i, address) in binds.iter().enumerate() {
        if matches!(address, BindAddress::Fd(_)) && binds[..i].contains(address) {
            return Err(Error::Config(format!("--bind {address} is given twice")));
        }
    }
    binds
        .iter()
        .map(
            |address| match server::handover::take_matching(inherited, address) {
                Some(listener) => Ok(listener),
                None => {
                    server::bind_shared(address, settings.backlog, sharing).map_err(Error::from)
                }
            },
        )
        .collect()
}
