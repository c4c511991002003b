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
        ReplyFuture {
            state: ReplyState::Unqueued(self.pool.clone(), job, response),
        }
    }
}

pub struct ReplyFuture {
    state: ReplyState,
}

// The future lives inside hyper's connection state either way; boxing the job would cost an
// allocation per request.
#[allow(clippy::large_enum_variant)]
enum ReplyState {
    /// Queued at the first poll: hyper reads a body that came with its head in between, so the
    /// job takes it along (see `RequestBody::take_arrived_data`).
    Unqueued(Arc<Pool>, Job, oneshot::Receiver<Response<ResponseBody>>),
    Queued(oneshot::Receiver<Response<ResponseBody>>),
    /// The Python threads are gone (the worker is stopping).
    Unavailable,
    Done,
}

impl Future for ReplyFuture {
    type Output = Response<ResponseBody>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.state = match std::mem::replace(&mut self.state, ReplyState::Done) {
            ReplyState::Unqueued(pool, mut job, response) => {
                if let Some(input) = job.input.as_mut() {
                    input.take_arrived_data();
                }
                match pool.submit(job) {
                    Ok(()) => ReplyState::Queued(response),
                    Err(_) => ReplyState::Unavailable,
                }
            }
            other => other,
        };
        let response = match &mut self.state {
            ReplyState::Queued(response) => response,
            ReplyState::Unavailable => {
                self.state = ReplyState::Done;
                return Poll::Ready(Failure::Unavailable.into_response());
            }
            ReplyState::Unqueued(..) | ReplyState::Done => {
                unreachable!("polled after completion")
            }
        };
        Pin::new(response).poll(cx).map(|result| {
            // A dropped reply means the Python side ended without answering (it always
            // answers, even on errors), so this is a server bug or a dying thread.
            result.unwrap_or_else(|_| Failure::Application { detail: None }.into_response())
        })
    }
}
