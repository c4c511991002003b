//! The native middleware as WSGI objects (`ferrogate.middleware`): each runs the same Rust
//! decisions as the lifted layer when any server calls it, and `lift` turns the outer layers
//! of a served app into the native pipeline, so that what they answer never takes the GIL.
//! A Python object that is not one of ours ends the lifting: it and all behind it are a
//! Python app of the pipeline.

mod compress;
mod environ;
mod forward;
mod ip_filter;
mod mount;
mod proxy_headers;
mod rate_limit;
mod request_id;
mod static_files;

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::Settings;
use crate::error::Error;
use crate::middleware::mount::Mount as MountTable;
use crate::middleware::Node;

pub use compress::{Compress, CompressStart, CompressWrite, CompressedBody};
pub use forward::{Forward, UpstreamBody};
pub use ip_filter::IpFilter;
pub use mount::Mount;
pub use proxy_headers::ProxyHeaders;
pub use rate_limit::{own_tables, RateLimit};
pub use request_id::{AddHeaders, RequestId};
pub use static_files::{FileChunks, StaticFiles};

pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Mount>()?;
    module.add_class::<IpFilter>()?;
    module.add_class::<ProxyHeaders>()?;
    module.add_class::<RequestId>()?;
    module.add_class::<RateLimit>()?;
    module.add_class::<StaticFiles>()?;
    module.add_class::<Compress>()?;
    module.add_class::<CompressStart>()?;
    module.add_class::<CompressWrite>()?;
    module.add_class::<CompressedBody>()?;
    module.add_class::<AddHeaders>()?;
    module.add_class::<FileChunks>()?;
    module.add_class::<Forward>()?;
    module.add_class::<UpstreamBody>()?;
    Ok(())
}

/// The app inside the layers the middleware settings declare (`--mount`, `--static`, ...),
/// built as `ferrogate.middleware` objects so that lifting (or not) treats them as if the
/// app's own code had written them. Mounted apps are imported here.
pub fn wrap_with_settings(
    py: Python<'_>,
    app: Py<PyAny>,
    settings: &Settings,
) -> Result<Py<PyAny>, Error> {
    let layers = &settings.middleware;
    if !layers.declares_layers() {
        return Ok(app);
    }
    let options = PyDict::new(py);
    let built = (|| {
        options.set_item("mounts", &layers.mount)?;
        options.set_item("forwards", &layers.forward)?;
        options.set_item("statics", &layers.static_files)?;
        options.set_item("static_max_age", layers.static_max_age)?;
        options.set_item("allow", layers.allow.to_string())?;
        options.set_item("deny", layers.deny.to_string())?;
        options.set_item("allow_file", &layers.allow_file)?;
        options.set_item("deny_file", &layers.deny_file)?;
        options.set_item("rate_limit", &layers.rate_limit)?;
        options.set_item("request_id", layers.request_id)?;
        options.set_item(
            "request_id_trusted",
            settings.forwarded_allow_ips.to_string(),
        )?;
        options.set_item("compress", layers.compress)?;
        options.set_item("pipeline", &layers.pipeline)?;
        py.import("ferrogate._pipeline")?
            .call_method("build", (app,), Some(&options))
            .map(Bound::unbind)
    })();
    built.map_err(|error| {
        let traceback = error
            .traceback(py)
            .and_then(|tb| tb.format().ok())
            .unwrap_or_default();
        Error::AppLoad(format!(
            "Cannot build the middleware settings' layers:\n{traceback}{error}"
        ))
    })
}

/// An app as the worker serves it: the native chain and the Python apps it ends in.
pub struct Lifted {
    pub root: Arc<Node>,
    pub apps: Vec<Py<PyAny>>,
    /// By app index: what replaces `--request-timeout` for it (a lifted Mount's
    /// `request_timeouts`; zero: none), `None` where the Mount said nothing.
    pub request_timeouts: Vec<Option<Duration>>,
}

/// Lifts the outer layers of `app`; with `enabled` false (`--no-native-middleware`), the
/// whole object is one Python app, its layers running as plain WSGI middleware.
pub fn lift(py: Python<'_>, app: Py<PyAny>, enabled: bool) -> Lifted {
    let mut lifter = Lifter {
        apps: Vec::new(),
        request_timeouts: Vec::new(),
        timeout_scope: None,
        layers: Vec::new(),
    };
    let root = match enabled {
        true => lifter.node(app.bind(py)),
        false => lifter.python(app.bind(py)),
    };
    if !lifter.layers.is_empty() {
        log::debug!(
            "Native middleware: {} in front of {} Python app(s)",
            lifter.layers.join(", "),
            lifter.apps.len()
        );
    }
    Lifted {
        root,
        apps: lifter.apps,
        request_timeouts: lifter.request_timeouts,
    }
}

struct Lifter {
    apps: Vec<Py<PyAny>>,
    /// Parallel to `apps`.
    request_timeouts: Vec<Option<Duration>>,
    /// The request timeout of the Mount entry being lifted, for the apps found under it.
    timeout_scope: Option<Duration>,
    /// What was lifted, for the startup log line.
    layers: Vec<String>,
}

impl Lifter {
    fn node(&mut self, object: &Bound<'_, PyAny>) -> Arc<Node> {
        let py = object.py();
        if let Ok(mount) = object.cast::<Mount>() {
            self.layers.push(mount.get().__repr__());
            let table = &mount.get().table;
            let mut entries = Vec::new();
            for (key, app) in table.entries() {
                let outer = self.timeout_scope;
                if let Some(timeout) = mount.get().request_timeout_of(key) {
                    self.timeout_scope = Some(timeout);
                }
                entries.push((key.clone(), self.node(app.bind(py))));
                self.timeout_scope = outer;
            }
            let default = table.default().map(|app| self.node(app.bind(py)));
            return Arc::new(Node::Mount(Arc::new(MountTable::new(entries, default))));
        }
        if let Ok(filter) = object.cast::<IpFilter>() {
            self.layers.push("IPFilter".into());
            let filter = filter.get();
            return Arc::new(Node::IpFilter {
                filter: filter.filter.clone(),
                next: self.node(filter.app.bind(py)),
            });
        }
        if let Ok(proxy) = object.cast::<ProxyHeaders>() {
            self.layers.push("ProxyHeaders".into());
            let proxy = proxy.get();
            return Arc::new(Node::ProxyHeaders {
                layer: proxy.layer.clone(),
                next: self.node(proxy.app.bind(py)),
            });
        }
        if let Ok(request_id) = object.cast::<RequestId>() {
            self.layers.push("RequestId".into());
            let request_id = request_id.get();
            return Arc::new(Node::RequestId {
                trusted: request_id.trusted.clone(),
                next: self.node(request_id.app.bind(py)),
            });
        }
        if let Ok(files) = object.cast::<StaticFiles>() {
            self.layers.push("StaticFiles".into());
            let files = files.get();
            return Arc::new(Node::Static {
                files: files.files.clone(),
                next: files.app.as_ref().map(|app| self.node(app.bind(py))),
            });
        }
        if let Ok(compress) = object.cast::<Compress>() {
            self.layers.push("Compress".into());
            let compress = compress.get();
            return Arc::new(Node::Compress {
                options: compress.options.clone(),
                next: self.node(compress.app.bind(py)),
            });
        }
        if let Ok(forward) = object.cast::<Forward>() {
            self.layers.push(forward.get().__repr__());
            return Arc::new(Node::Forward(forward.get().layer.clone()));
        }
        if let Ok(limit) = object.cast::<RateLimit>() {
            self.layers.push("RateLimit".into());
            let limit = limit.get();
            return Arc::new(Node::RateLimit {
                limit: limit.layer.clone(),
                next: self.node(limit.app.bind(py)),
            });
        }
        self.python(object)
    }

    fn python(&mut self, object: &Bound<'_, PyAny>) -> Arc<Node> {
        // The same object mounted twice is one app (with the first mount's request timeout).
        let index = match self.apps.iter().position(|app| app.is(object)) {
            Some(index) => index,
            None => {
                self.apps.push(object.clone().unbind());
                self.request_timeouts.push(self.timeout_scope);
                self.apps.len() - 1
            }
        };
        Arc::new(Node::App(index as u32))
    }
}
