//! The PEP 3333 bridge: the `Handler` that queues requests for Python threads, and everything
//! those threads do under the GIL (environ, start_response, input, errors, the response body).
//! See docs/architecture.md for one request's journey.

pub(crate) mod address_strings;
mod blocking;
mod body_bytes;
mod cpu_share;
pub(crate) mod environ;
mod errors;
mod file_body;
mod file_wrapper;
mod handler;
pub(crate) mod input;
mod job;
mod pool;
mod reply;
mod response;
mod response_head;
mod shedding;
mod start_response;

pub use file_wrapper::FileWrapper;
pub use handler::WsgiHandler;
pub use pool::{OldestRequest, PoolProgress, ProgressProbe, PythonThreads, RequestTimeouts};

/// What the Python threads need to know about the server they run in.
#[derive(Debug, Clone)]
pub struct WsgiConfig {
    pub threads: usize,
    pub workers: usize,
    /// SCRIPT_NAME: the mount prefix, without a trailing '/'.
    pub root_path: String,
    /// Show tracebacks in 500 responses.
    pub debug: bool,
    /// `--socket-timeout`: how long a thread waits on its client (body data, room to send).
    pub socket_timeout: std::time::Duration,
    /// `--max-queue` and `--max-queue-time`: when the pool sheds load (pool/mod.rs).
    pub shedding: Shedding,
    /// `--request-timeout`, and the mounts' own: how long an app call may run before it is
    /// interrupted.
    pub request_timeout: RequestTimeouts,
}

/// When a worker answers 503 rather than queue a request for its Python threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shedding {
    /// Most requests waiting in the queue.
    pub max_queue: Option<usize>,
    /// Longest wait for a thread, counting a trusted proxy's `X-Request-Start`.
    pub max_queue_time: Option<std::time::Duration>,
}
