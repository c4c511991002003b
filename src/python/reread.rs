//! SIGHUP's second reading of the settings (gunicorn's reload): what changed applies to the
//! workers the reload starts; the settings used once at startup (`config::RESTART_ONLY`)
//! keep their old effect until a restart, and the log says which.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::serving::{open_access_log, AppSource};
use crate::config::{Loaded, RESTART_ONLY};
use crate::observe::{error_log, AccessLog};
use crate::supervisor;

pub struct Applied {
    pub loaded: Loaded,
    /// The access log to hand the new workers, when `--access-log` changed and opened.
    pub access_log: Option<Option<Arc<AccessLog>>>,
}

/// Applies the settings read again (`newer`) over `current`; `app` becomes the newly named
/// app when it is imported by each worker (not preloaded, not an object given to `run`).
pub fn apply(py: Python<'_>, current: &Loaded, newer: Loaded, app: &mut AppSource) -> Applied {
    let changed = current.changed_in(&newer);
    let (waiting, applying): (Vec<&str>, Vec<&str>) =
        changed.iter().partition(|name| RESTART_ONLY.contains(name));
    if !applying.is_empty() {
        log::info!("SIGHUP: changed settings: {}", applying.join(", "));
    }
    if !waiting.is_empty() {
        log::warn!(
            "SIGHUP: {} changed, which takes effect only when ferrogate restarts (or upgrades \
             with SIGUSR2)",
            waiting.join(", ")
        );
    }
    let (old, new) = (&current.settings, &newer.settings);
    if (&old.error_log, old.log_level) != (&new.error_log, new.log_level) {
        if let Err(error) = error_log::init(&new.error_log, new.log_level) {
            log::error!(
                "SIGHUP: cannot open the error log {:?}: {error}",
                new.error_log
            );
        }
    }
    if new.env != old.env {
        set_environment(py, &new.env);
    }
    supervisor::raise_open_file_limit(u64::from(new.max_connections));
    if let (AppSource::Spec(spec), Some(named)) = (&*app, &new.app) {
        // The master made a `config:` spec's path absolute at start (python/paste.rs), before
        // --chdir; the new workers read the ini it names again.
        if spec != named && !named.starts_with("config:") {
            *app = AppSource::Spec(named.clone());
        }
    }
    let log_changed = new.access_log != old.access_log
        || new.observe.access_log_format != old.observe.access_log_format
        || new.observe.log_slow_requests != old.observe.log_slow_requests;
    let access_log = match log_changed {
        true => match open_access_log(new) {
            Ok(access_log) => Some(access_log),
            Err(error) => {
                log::error!("SIGHUP: {error}; the access log stays where it was");
                None
            }
        },
        false => None,
    };
    Applied {
        loaded: newer,
        access_log,
    }
}

/// `--env` pairs as read again, for the app imported by the new workers.
fn set_environment(py: Python<'_>, pairs: &[String]) {
    let applied = py.import("ferrogate._loader").and_then(|loader| {
        let no_path = PyList::empty(py);
        loader.call_method1(
            "prepare_path",
            (py.None(), no_path, PyList::new(py, pairs)?),
        )
    });
    if let Err(error) = applied {
        log::error!("SIGHUP: cannot apply --env: {error}");
    }
}
