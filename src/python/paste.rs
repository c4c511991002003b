//! `--paste FILE[#NAME]` and `config:FILE[#NAME]` app specs: the master hands the ini to
//! ferrogate/_paste.py once (it checks PasteDeploy, applies the ini's logging sections and
//! keeps `--paste-global`), and the workers load the `config:` spec it returns, as any app
//! spec. The ini is watched by `--reload` like the app's modules.

use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::config::Settings;
use crate::error::Error;

/// The app spec the workers load: `settings.app`, or for a paste.deploy ini the `config:`
/// spec with an absolute path; `None` when no app is named.
pub fn app_spec(
    py: Python<'_>,
    settings: &mut Settings,
    start_dir: &Path,
) -> Result<Option<String>, Error> {
    let ini = match (&settings.paste, &settings.app) {
        (Some(_), Some(app)) => {
            return Err(Error::Config(format!(
                "--paste and the app {app:?} name two apps: give one"
            )))
        }
        (Some(ini), None) => ini.clone(),
        (None, Some(app)) if app.starts_with("config:") => app.clone(),
        (None, app) => return Ok(app.clone()),
    };
    let ini = ini.strip_prefix("config:").unwrap_or(&ini);
    // Relative to where ferrogate started, before --chdir (as gunicorn reads it).
    let ini = start_dir.join(ini).to_string_lossy().into_owned();
    let spec: String = py
        .import("ferrogate._paste")
        .and_then(|paste| {
            let globals = PyList::new(py, &settings.paste_global)?;
            paste.call_method1("configure", (ini.as_str(), globals))
        })
        .and_then(|spec| spec.extract())
        .map_err(|error| Error::AppLoad(format!("Failed to load the app {ini:?}: {error}")))?;
    if settings.reload {
        let (file, _) = spec["config:".len()..]
            .rsplit_once('#')
            .expect("invariant: _paste.configure returns config:PATH#NAME");
        settings.reload_extra_file.push(file.into());
    }
    Ok(Some(spec))
}
