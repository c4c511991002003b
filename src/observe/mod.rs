//! Logging: the error log (the `log` facade, written by `error_log`) and the access log
//! (Apache combined format, written by `access_log`). Both write from Rust, never under the GIL.
//! Used by every layer; knows nothing of HTTP framing or Python.

pub mod access_log;
pub mod error_log;
mod sink;
mod throttle;

pub use access_log::{AccessLog, AccessRecord};
pub use sink::Sink;
pub use throttle::LogThrottle;
