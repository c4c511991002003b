//! `ferrogate._ferrogate.main` (the command) and `run` (serve an app object): parse settings,
//! open the logs, bind, and hand over to the supervisor.

use pyo3::prelude::*;

use clap::{ArgAction, CommandFactory, Parser};

use super::launcher::ForkLauncher;
use super::serving::{open_access_log, prepare_path, AppSource};
use crate::config::Settings;
use crate::error::{Error, EXIT_USAGE};
use crate::observe::error_log;
use crate::server::{self, Listener};
use crate::supervisor::{self, SupervisorOptions};

/// Parses `argv` as the `ferrogate` command and serves; returns the exit code.
#[pyfunction]
pub fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let settings = match Settings::try_parse_from(&argv) {
        Ok(settings) => settings,
        Err(error) => {
            let _ = error.print();
            return error.exit_code();
        }
    };
    let Some(spec) = settings.app.clone() else {
        eprintln!("ferrogate: no app given; for example: ferrogate myproject.wsgi:application");
        return EXIT_USAGE;
    };
    launch(py, &settings, AppSource::Spec(spec))
}

/// Serves an app object with the settings in `argv` (which names no app); returns the exit code.
#[pyfunction]
pub fn run(py: Python<'_>, app: Py<PyAny>, argv: Vec<String>) -> i32 {
    match Settings::try_parse_from(&argv) {
        Ok(settings) => launch(py, &settings, AppSource::Object(app)),
        Err(error) => {
            let _ = error.print();
            error.exit_code()
        }
    }
}

/// Every setting's long option name and whether it is a switch (takes no value): what
/// `ferrogate.run(**kwargs)` checks keywords against, so the list lives only in the settings.
#[pyfunction]
pub fn setting_names() -> Vec<(String, bool)> {
    Settings::command()
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
            Some((long.replace('-', "_"), is_switch))
        })
        .filter(|(name, _)| name != "help" && name != "version")
        .collect()
}

fn launch(py: Python<'_>, settings: &Settings, app: AppSource) -> i32 {
    if let Err(error) = error_log::init(&settings.error_log, settings.log_level) {
        eprintln!(
            "ferrogate: cannot open the error log {:?}: {error}",
            settings.error_log
        );
        return EXIT_USAGE;
    }
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
    log::info!("Starting ferrogate {}", env!("CARGO_PKG_VERSION"));
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
    };
    let mut launcher = ForkLauncher {
        py,
        settings,
        access_log,
        listeners: &listeners,
        app: &app,
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
