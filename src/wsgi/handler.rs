//! `WsgiHandler`: the I/O side of the bridge. Packs each request into a `Job` for the Python
//! threads and resolves when they send the response head back. Never touches Python.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::{Duration, SystemTime};

use http::header::HeaderName;
use http::request::Parts;
use tokio::sync::oneshot;

use super::pool::{Pool, Refused};
use super::reply::Reply;
use crate::handler::{ConnectionInfo, Handler};
use crate::http::request_start::upstream_wait;
use crate::http::status::Failure;
use crate::http::{RequestBody, Response};

const X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");

/// One request, on its way to a Python thread.
pub struct Job {
    pub head: Parts,
    pub connection: ConnectionInfo,
    /// `None` when the request has no body.
    pub input: Option<RequestBody>,
    pub reply: Reply,
    /// Time waited for a Python thread: what a trusted proxy in front reported
    /// (`X-Request-Start`), to which the pool adds the wait in its queue when a thread takes
    /// the request (`ferrogate.queue_time`).
    pub queue_time: Duration,
}

impl Job {
    /// The index of the Python app that answers it: a native Mount names it; without one,
    /// the worker's only app.
    pub fn app_index(&self) -> usize {
        self.connection.mount.map_or(0, |mount| mount.app as usize)
    }
}

#[derive(Clone)]
pub struct WsgiHandler {
    pool: Arc<Pool>,
}

impl WsgiHandler {
    pub fn new(pool: Arc<Pool>) -> WsgiHandler {
        WsgiHandler { pool }
    }
}

impl Handler for WsgiHandler {
    type Future = ReplyFuture;

    fn call(
        &self,
        head: Parts,
        input: Option<RequestBody>,
        connection: &ConnectionInfo,
    ) -> ReplyFuture {
        let (reply, response) = Reply::new(self.pool.outbox());
        let upstream = match connection.from_trusted_proxy {
            true => head.headers.get(&X_REQUEST_START),
            false => None,
        };
        let upstream =
            upstream.and_then(|start| upstream_wait(start.as_bytes(), SystemTime::now()));
        let job = Job {
            head,
            connection: connection.clone(),
            input,
            reply,
            queue_time: upstream.unwrap_or_default(),
        };
        let response = match self.pool.submit(job) {
            Ok(()) => Ok(response),
            // The Python threads are gone when the worker is stopping.
            Err(Refused::Closed) => Err(Some(Failure::Unavailable)),
            Err(Refused::Overloaded) => Err(Some(Failure::Overloaded)),
        };
        ReplyFuture { response }
    }
}

pub struct ReplyFuture {
    /// The reply to come, or the failure to answer at once (taken when polled).
    response: Result<oneshot::Receiver<Response>, Option<Failure>>,
}

impl Future for ReplyFuture {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = match &mut self.response {
            Ok(response) => response,
            Err(failure) => {
                let failure = failure.take().unwrap_or(Failure::Unavailable);
                return Poll::Ready(failure.into_response());
            }
        };
        Pin::new(response).poll(cx).map(|result| {
            // A dropped reply means the Python side ended without answering (it always
            // answers, even on errors), so this is a server bug or a dying thread.
            result.unwrap_or_else(|_| Failure::Application { detail: None }.into_response())
        })
    }
}
