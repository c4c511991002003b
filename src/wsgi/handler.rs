//! `WsgiHandler`: the I/O side of the bridge. Packs each request into a `Job` for the Python
//! threads and resolves when they send the response head back. Never touches Python.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::request::Parts;
use tokio::sync::oneshot;

use super::pool::Pool;
use super::reply::Reply;
use crate::handler::{ConnectionInfo, Handler};
use crate::http::status::Failure;
use crate::http::{RequestBody, Response};

/// One request, on its way to a Python thread.
pub struct Job {
    pub head: Parts,
    pub connection: ConnectionInfo,
    /// `None` when the request has no body.
    pub input: Option<RequestBody>,
    pub reply: Reply,
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
        let job = Job {
            head,
            connection: connection.clone(),
            input,
            reply,
        };
        ReplyFuture {
            // The Python threads are gone when the worker is stopping.
            response: self.pool.submit(job).ok().map(|()| response),
        }
    }
}

pub struct ReplyFuture {
    response: Option<oneshot::Receiver<Response>>,
}

impl Future for ReplyFuture {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(response) = self.response.as_mut() else {
            return Poll::Ready(Failure::Unavailable.into_response());
        };
        Pin::new(response).poll(cx).map(|result| {
            // A dropped reply means the Python side ended without answering (it always
            // answers, even on errors), so this is a server bug or a dying thread.
            result.unwrap_or_else(|_| Failure::Application { detail: None }.into_response())
        })
    }
}
