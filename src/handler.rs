//! The seam between the HTTP layer and what answers requests: request head and body in,
//! response out. `http` calls a `Handler`, middleware wraps one, `wsgi` implements one.

use std::future::Future;
use std::net::SocketAddr;

use http::request::Parts;

use crate::http::{RequestBody, Response};

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    /// The client's address; `None` on a Unix socket.
    pub peer: Option<SocketAddr>,
    /// The address the client connected to; `None` on a Unix socket.
    pub local: Option<SocketAddr>,
}

pub trait Handler: Clone + Send + Sync + 'static {
    /// Resolves to the response head; the body may still be streaming when it resolves.
    /// `Unpin` so the HTTP layer can poll it without boxing every request.
    type Future: Future<Output = Response> + Send + Unpin + 'static;

    /// `body` is `None` when the request has none.
    fn call(
        &self,
        head: Parts,
        body: Option<RequestBody>,
        connection: &ConnectionInfo,
    ) -> Self::Future;
}
