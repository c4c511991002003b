//! Settings: declared once (in `settings.rs`), loaded from the command line, `FERROGATE_*`
//! variables and a config file (`sources.rs`, `file.rs`), with gunicorn's names understood
//! (`gunicorn.rs`). Used by every layer; knows nothing of HTTP, WSGI or Python.

mod bind;
mod file;
mod gunicorn;
mod http2_settings;
mod ip_ranges;
mod middleware_settings;
mod observe_settings;
mod pipeline_layers;
mod settings;
mod sources;
mod tls_settings;

pub use bind::{BindAddress, BindParseError, BindScheme};
pub use file::{FileEntry, FileValue};
pub use gunicorn::{Mapping as GunicornMapping, GUNICORN_SETTINGS};
pub use http2_settings::Http2Settings;
pub use ip_ranges::IpRanges;
pub use middleware_settings::MiddlewareSettings;
pub use observe_settings::ObserveSettings;
pub use settings::{HttpVersions, LogLevel, Protocol, Settings, DEFAULT_THREADS};
pub use sources::{command, load, report, LoadError, Loaded, Source, RESTART_ONLY};
pub use tls_settings::{CertReqs, TlsSettings, TlsVersion};
