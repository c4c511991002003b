//! `WsgiHandler`: the I/O side of the bridge. Packs each request into a `Job` for the Python
//! threads and resolves when they send the response head back. Never touches Python.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::Body;
use hyper::body::Incoming;
use hyper::header::EXPECT;
use hyper::http::request::Parts;
use hyper::{Request, Response};
use tokio::sync::oneshot;

use super::input::RequestBody;
use super::pool::Pool;
use super::reply::Reply;
use crate::handler::{ConnectionInfo, Handler};
use crate::http::status::Failure;
use crate::http::ResponseBody;

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

    fn call(&self, request: Request<Incoming>, connection: &ConnectionInfo) -> ReplyFuture {
        let (head, body) = request.into_parts();
        let expects_continue = head
            .headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let outbox = self.pool.outbox();
        let input = (!body.is_end_stream())
            .then(|| RequestBody::new(body, expects_continue, outbox.clone()));
        let (reply, response) = Reply::new(outbox);
        let job = Job {
            head,
            connection: *connection,
            input,
            reply,
        };
        match self.pool.submit(job) {
            Ok(()) => ReplyFuture {
                response: Some(response),
            },
            Err(_) => ReplyFuture { response: None },
        }
    }
}

pub struct ReplyFuture {
    /// `None` when the Python threads are gone (the worker is stopping).
    response: Option<oneshot::Receiver<Response<ResponseBody>>>,
}

impl Future for ReplyFuture {
    type Output = Response<ResponseBody>;

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
