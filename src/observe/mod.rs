//! Logging and probes: the error log (the `log` facade, written by `error_log`), the access
//! log (its format compiled once by `access_format`, written by `access_log`, which also logs
//! slow requests), the workers' counters for Prometheus (`metrics`), and the worker's
//! readiness as health probes see it (`readiness`). Both logs write from Rust, never under the GIL.
//! Used by every layer; knows nothing of HTTP framing or Python.

pub mod access_format;
pub mod access_log;
pub mod error_log;
pub mod metrics;
pub mod readiness;
mod sink;
mod throttle;

pub use access_format::AccessFormat;
pub use access_log::{AccessLog, AccessLogOptions, AccessRecord, ResponseNote};
pub use readiness::{Phase, Readiness};
pub use sink::Sink;
pub use throttle::LogThrottle;
