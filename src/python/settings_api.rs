//! What Python reads of the settings table: the keyword names `ferrogate.run()` accepts, the
//! rows the settings docs are generated from, and the gunicorn mapping table.

use clap::{Arg, ArgAction};
use pyo3::prelude::*;

use crate::config::{self, GunicornMapping};

fn settings_args() -> impl Iterator<Item = Arg> {
    config::command()
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
}

/// Every setting's long option name and whether it is a switch (takes no value): what
/// `ferrogate.run(**kwargs)` checks keywords against, so the list lives only in the settings.
#[pyfunction]
pub fn setting_names() -> Vec<(String, bool)> {
    settings_args()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
            Some((long.replace('-', "_"), is_switch))
        })
        .collect()
}

/// One row per setting, in declaration order, for the generated docs: a dict with `name`,
/// `flags` (as `--help` shows them), `aliases`, `env`, `default`, `section`, `help`,
/// `switch`, `list` and `hidden`.
#[pyfunction]
pub fn settings_table(py: Python<'_>) -> PyResult<Vec<Py<pyo3::types::PyDict>>> {
    settings_args()
        .map(|arg| {
            let row = pyo3::types::PyDict::new(py);
            let mut flags = Vec::new();
            if let Some(short) = arg.get_short() {
                flags.push(format!("-{short}"));
            }
            if let Some(long) = arg.get_long() {
                flags.push(format!("--{long}"));
            }
            let value_name = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map(|name| name.to_string());
            let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let aliases: Vec<String> = arg
                .get_all_aliases()
                .unwrap_or_default()
                .into_iter()
                .map(|alias| format!("--{alias}"))
                .collect();
            row.set_item("name", arg.get_id().as_str())?;
            row.set_item("flags", flags)?;
            row.set_item("value_name", value_name)?;
            row.set_item("aliases", aliases)?;
            row.set_item(
                "env",
                arg.get_env().map(|e| e.to_string_lossy().into_owned()),
            )?;
            row.set_item("default", defaults)?;
            row.set_item(
                "section",
                arg.get_help_heading().unwrap_or("App").to_string(),
            )?;
            row.set_item(
                "help",
                arg.get_long_help()
                    .or_else(|| arg.get_help())
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
            )?;
            row.set_item("switch", is_switch)?;
            row.set_item("list", matches!(arg.get_action(), ArgAction::Append))?;
            row.set_item("hidden", arg.is_hide_set())?;
            Ok(row.unbind())
        })
        .collect()
}

/// gunicorn's settings and what each is in ferrogate, as (gunicorn name, kind, ours or why):
/// the README's mapping table is printed from it.
#[pyfunction]
pub fn gunicorn_table() -> Vec<(&'static str, &'static str, &'static str)> {
    config::GUNICORN_SETTINGS
        .iter()
        .map(|(name, mapping)| match *mapping {
            GunicornMapping::Same => (*name, "same", *name),
            GunicornMapping::Renamed(ours) => (*name, "renamed", ours),
            GunicornMapping::Ignored(why) => (*name, "ignored", why),
            GunicornMapping::Unsupported(why) => (*name, "unsupported", why),
            GunicornMapping::Hook => (*name, "hook", "a function in a Python config file"),
        })
        .collect()
}
