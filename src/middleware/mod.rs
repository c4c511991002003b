//! Native middleware: the layers a request passes before (or instead of) reaching a Python
//! app: mount, static files, proxy headers, IP filter, rate limit, request id, compression, forwarding, and
//! the health and readiness probes. Each layer's decisions are plain Rust on protocol-neutral
//! inputs, so the same code answers whether the layer is lifted into the server's request
//! pipeline (no GIL) or called as a WSGI object under any server (src/python/middleware).
//! Knows nothing of Python or of the wire format.

pub mod compress;
mod compress_response;
pub mod forward;
pub mod health;
pub mod ip_filter;
pub mod limit_key;
pub mod mount;
mod node;
mod pipeline;
pub mod proxy_headers;
pub mod rate_limit;
mod refusal;
pub mod request_id;
mod static_body;
pub mod static_files;

pub use health::Probes;
pub use node::Node;
pub use pipeline::{refused, Pipeline, PipelineFuture};
pub use refusal::Refusal;
