//! Metrics (`--metrics-bind`): counters each worker keeps in shared memory (`table.rs`), summed
//! by the master and served in Prometheus' text format (`render.rs`) from its own listener
//! (`endpoint.rs`). Nothing per request but relaxed atomic adds into the worker's own block:
//! no syscall, no lock, no Python. Knows nothing of HTTP framing or Python.

mod endpoint;
mod render;
mod table;

pub use endpoint::{close_inherited, start};
pub use render::{count_restart, Labels, MoreFamilies, RestartCause};
pub use table::{
    ConnectionRefusal, HandshakeFailure, MetricsTable, ResponseFacts, ThreadsSample, WorkerMetrics,
};
