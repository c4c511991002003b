//! The runtime the WSGI object forwards on when another server (wsgiref, gunicorn) calls it
//! from a Python thread: one small multi-threaded tokio runtime per process, made on first
//! use (after any fork), on which the same pool and code as the lifted layer run. The
//! caller waits on the returned receiver (with the GIL released).

use std::sync::{Arc, OnceLock};

use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use super::{Forward, ForwardRequest};
use crate::http::Response;
use crate::middleware::Refusal;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// One thread: it only moves bytes between sockets and channels.
fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ferrogate-forward")
            .enable_all()
            .build()
            .expect("invariant: a tokio runtime can be built")
    })
}

/// Starts forwarding `request` on the process's forwarding runtime; the answer comes
/// through the receiver, its body (if streamed) through the response's channel.
pub fn send_outside(
    forward: &Arc<Forward>,
    request: ForwardRequest,
) -> oneshot::Receiver<Result<Response, Refusal>> {
    let forward = forward.clone();
    let (tx, rx) = oneshot::channel();
    runtime().spawn(async move {
        let pool = forward
            .outside_pool
            .get_or_init(|| forward.new_pool())
            .clone();
        forward.start_probing();
        let _ = tx.send(forward.send_with(&pool, request).await);
    });
    rx
}
