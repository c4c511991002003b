//! Calling the server hooks of a Python config file (ferrogate/hooks.py holds them) at their
//! moments in the master and the workers. No hook defined costs one dictionary look-up at
//! each moment, none per request.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::Loaded;

/// Hands the hooks the config file defined, and the settings `server.settings` shows, to
/// ferrogate/hooks.py.
pub fn install(py: Python<'_>, loaded: &Loaded) -> PyResult<()> {
    let settings = PyDict::new(py);
    for setting in &loaded.effective {
        if setting.is_list {
            settings.set_item(&setting.name, &setting.values)?;
        } else {
            settings.set_item(&setting.name, setting.values.first())?;
        }
    }
    let defined = py.import("ferrogate._pyconfig")?.getattr("HOOKS")?;
    py.import("ferrogate.hooks")?
        .call_method1("install", (defined, settings))?;
    Ok(())
}

/// Runs hook `name`; `Err` carries the hook's traceback. `worker_pid` names the worker for
/// `child_exit` (the one reaped); the others take the current process's.
pub fn run(py: Python<'_>, name: &str, worker_pid: i32) -> Result<(), String> {
    let outcome = py
        .import("ferrogate.hooks")
        .and_then(|hooks| hooks.call_method1("run", (name, worker_pid)))
        .and_then(|result| result.extract::<Option<String>>());
    match outcome {
        Ok(None) => Ok(()),
        Ok(Some(error)) => Err(error),
        Err(error) => Err(format!("Cannot run the {name} hook: {error}")),
    }
}

/// `nworkers_changed(server, new_value, old_value)`.
pub fn run_counts_logged(py: Python<'_>, name: &str, new: usize, old: usize) {
    let outcome = py
        .import("ferrogate.hooks")
        .and_then(|hooks| hooks.call_method1("run_counts", (name, new, old)))
        .and_then(|result| result.extract::<Option<String>>());
    match outcome {
        Ok(None) => {}
        Ok(Some(error)) => log::error!("{error}"),
        Err(error) => log::error!("Cannot run the {name} hook: {error}"),
    }
}

/// Runs hook `name` and logs its failure: for the hooks whose failure must not stop anything.
pub fn run_logged(py: Python<'_>, name: &str, worker_pid: i32) {
    if let Err(error) = run(py, name, worker_pid) {
        log::error!("{error}");
    }
}

/// `ferrogate._ferrogate.log_line(level, message)`: one line in the error log, from Python
/// (the hooks' `server.log`).
#[pyfunction]
pub fn log_line(level: &str, message: &str) {
    match level {
        "DEBUG" => log::debug!("{message}"),
        "INFO" => log::info!("{message}"),
        "WARNING" => log::warn!("{message}"),
        _ => log::error!("{message}"),
    }
}
