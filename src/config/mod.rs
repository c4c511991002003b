//! Settings: declared once (in `settings.rs`), parsed from the command line and `FERROGATE_*`
//! environment variables by clap; the Python keyword API is turned into the same flags.
//! Used by every layer; knows nothing of HTTP, WSGI or Python.

mod bind;
mod ip_ranges;
mod settings;

pub use bind::{BindAddress, BindParseError};
pub use ip_ranges::IpRanges;
pub use settings::{LogLevel, Settings, DEFAULT_THREADS};
