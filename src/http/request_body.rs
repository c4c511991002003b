//! `RequestBody`: the receiving end a handler reads a request body from, on any thread. Fed
//! by the connection (`h1::body_pump`), or read off the socket by the handler's thread itself
//! (`h1::direct_body`).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use super::error::BodyReadError;
use super::h1::DirectBody;

/// What a handler reads a request body from.
pub struct RequestBody {
    /// Data at hand when the request was dispatched (often the whole body).
    first: Option<Bytes>,
    /// The rest, fed by the connection; `None` when `first` is all there is.
    rest: Option<mpsc::Receiver<Result<Bytes, BodyReadError>>>,
    /// Or the rest, read by the handler's thread off the socket itself.
    direct: Option<DirectBody>,
    /// Set while the client waits for `100 Continue`: the first read asks the connection to send it.
    continue_wanted: Option<Arc<Notify>>,
}

impl RequestBody {
    /// A body that arrived whole with its head.
    pub fn complete(data: Bytes) -> RequestBody {
        RequestBody {
            first: Some(data),
            rest: None,
            direct: None,
            continue_wanted: None,
        }
    }

    /// A body whose rest the handler's thread reads off the socket.
    pub(super) fn direct(first: Option<Bytes>, rest: DirectBody) -> RequestBody {
        RequestBody {
            first,
            rest: None,
            direct: Some(rest),
            continue_wanted: None,
        }
    }

    pub(super) fn streamed(
        first: Option<Bytes>,
        rest: mpsc::Receiver<Result<Bytes, BodyReadError>>,
        continue_wanted: Option<Arc<Notify>>,
    ) -> RequestBody {
        RequestBody {
            first,
            rest: Some(rest),
            direct: None,
            continue_wanted,
        }
    }

    /// What arrived with the head, if it was not taken yet.
    pub fn take_first(&mut self) -> Option<Bytes> {
        self.first.take()
    }

    /// Where the rest of the body is read from by blocking reads, once `first` is taken; when
    /// `None`, it comes through `poll_next`.
    pub fn direct_mut(&mut self) -> Option<&mut DirectBody> {
        if self.first.is_some() {
            return None;
        }
        self.direct.as_mut()
    }

    /// The next piece of the body, or `None` at its end. For a body with a `DirectBody`,
    /// only `first` comes this way.
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BodyReadError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        if let Some(wanted) = self.continue_wanted.take() {
            wanted.notify_one();
        }
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let next = rest.poll_recv(cx);
        if let Poll::Ready(None | Some(Err(_))) = next {
            self.rest = None;
        }
        next
    }

    /// Whether the body is known to be over without waiting.
    pub fn is_end_stream(&self) -> bool {
        self.first.is_none()
            && self.direct.as_ref().is_none_or(DirectBody::is_over)
            && self
                .rest
                .as_ref()
                .is_none_or(|rest| rest.is_closed() && rest.is_empty())
    }
}
