//! `ResponseBody`: what every handler returns. A whole body known up front, a list of chunks,
//! or a stream fed from another thread through a bounded channel (backpressure: the producer
//! blocks while the client is slow). It enforces a declared Content-Length and reports the
//! finished response to the access log.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::service::RequestGuards;
use crate::observe::{AccessLog, AccessRecord};

/// Chunks a streaming producer may run ahead of the socket. Bounds memory per response to
/// this many chunks while still letting small yields coalesce in hyper's write buffer.
pub const STREAM_CHANNEL_CHUNKS: usize = 16;

pub type BodySender = mpsc::Sender<Result<Bytes, BodyError>>;

/// Why a response body ended badly. Any of these makes hyper abort the connection, so the
/// client sees a truncated response, never a clean short one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The producer failed after the head was sent (the app raised mid-stream).
    Aborted,
    /// The body did not match the Content-Length the app declared.
    LengthMismatch { declared: u64, produced: u64 },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Aborted => f.write_str("response aborted after its headers were sent"),
            BodyError::LengthMismatch { declared, produced } if produced > declared => write!(
                f,
                "response body is longer than its Content-Length ({declared} bytes declared, at least {produced} produced)"
            ),
            BodyError::LengthMismatch { declared, produced } => write!(
                f,
                "response body is shorter than its Content-Length ({declared} bytes declared, {produced} produced)"
            ),
        }
    }
}

impl std::error::Error for BodyError {}

enum Source {
    Full(Bytes),
    Chunks(VecDeque<Bytes>),
    Stream {
        first: Option<Bytes>,
        rx: mpsc::Receiver<Result<Bytes, BodyError>>,
    },
    Done,
}

/// Writes the access-log line when the response is finished or abandoned.
struct AccessHook {
    log: Arc<AccessLog>,
    record: AccessRecord,
    status: u16,
}

pub struct ResponseBody {
    source: Source,
    /// The app's Content-Length, when the server must hold the body to it.
    declared_length: Option<u64>,
    produced: u64,
    /// The chunk that completes the declared length, held back until the source ends.
    last_chunk: Option<Bytes>,
    /// An error to hand hyper on the next poll.
    failure: Option<BodyError>,
    access: Option<Box<AccessHook>>,
    /// Keeps the request counted as in progress while its body is being sent.
    guards: Option<RequestGuards>,
}

impl ResponseBody {
    fn new(source: Source) -> ResponseBody {
        ResponseBody {
            source,
            declared_length: None,
            produced: 0,
            last_chunk: None,
            failure: None,
            access: None,
            guards: None,
        }
    }

    /// A body known in full; hyper frames it with an exact Content-Length.
    pub fn full(bytes: Bytes) -> ResponseBody {
        ResponseBody::new(Source::Full(bytes))
    }

    /// Several ready chunks; without a declared length HTTP/1.1 sends them chunked.
    pub fn chunks(chunks: Vec<Bytes>) -> ResponseBody {
        ResponseBody::new(Source::Chunks(chunks.into()))
    }

    /// A body whose first chunk is ready and whose rest arrives through the returned sender.
    pub fn streaming(first: Bytes) -> (ResponseBody, BodySender) {
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL_CHUNKS);
        let first = (!first.is_empty()).then_some(first);
        (ResponseBody::new(Source::Stream { first, rx }), tx)
    }

    /// Holds the body to `length` bytes: a longer or shorter body aborts the connection.
    pub fn with_declared_length(mut self, length: u64) -> ResponseBody {
        self.declared_length = Some(length);
        self
    }

    pub fn with_access_log(&mut self, log: Arc<AccessLog>, record: AccessRecord, status: u16) {
        self.access = Some(Box::new(AccessHook {
            log,
            record,
            status,
        }));
    }

    pub fn hold_until_done(&mut self, guards: RequestGuards) {
        self.guards = Some(guards);
    }

    fn check_length(&mut self, chunk: &Bytes) -> Result<(), BodyError> {
        self.produced += chunk.len() as u64;
        match self.declared_length {
            Some(declared) if self.produced > declared => Err(BodyError::LengthMismatch {
                declared,
                produced: self.produced,
            }),
            _ => Ok(()),
        }
    }

    fn check_end(&self) -> Result<(), BodyError> {
        match self.declared_length {
            Some(declared) if self.produced < declared => Err(BodyError::LengthMismatch {
                declared,
                produced: self.produced,
            }),
            _ => Ok(()),
        }
    }

    /// Reports `error` to hyper (which then aborts the connection) on the next poll, after
    /// hyper has flushed what it already has: the client sees the head and a truncated body.
    fn fail(
        &mut self,
        error: BodyError,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let BodyError::LengthMismatch { .. } = error {
            log::error!("{error}; closing the connection");
        }
        self.source = Source::Done;
        self.last_chunk = None;
        self.failure = Some(error);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn next_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        match &mut self.source {
            Source::Done => Poll::Ready(None),
            Source::Full(_) => match std::mem::replace(&mut self.source, Source::Done) {
                Source::Full(bytes) => Poll::Ready(Some(Ok(bytes))),
                _ => unreachable!("matched Full above"),
            },
            Source::Chunks(chunks) => Poll::Ready(chunks.pop_front().map(Ok)),
            Source::Stream { first, rx } => match first.take() {
                Some(bytes) => Poll::Ready(Some(Ok(bytes))),
                None => rx.poll_recv(cx),
            },
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(error) = this.failure.take() {
            return Poll::Ready(Some(Err(error)));
        }
        loop {
            return match this.next_chunk(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => continue,
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(error) = this.check_length(&chunk) {
                        return this.fail(error, cx);
                    }
                    if this.declared_length == Some(this.produced) {
                        // hyper stops polling once Content-Length bytes are out, so the last
                        // chunk waits until the producer proves it has nothing more to send.
                        this.last_chunk = Some(chunk);
                        continue;
                    }
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
                Poll::Ready(Some(Err(error))) => this.fail(error, cx),
                Poll::Ready(None) => {
                    this.source = Source::Done;
                    if let Some(chunk) = this.last_chunk.take() {
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                    match this.check_end() {
                        Ok(()) => Poll::Ready(None),
                        Err(error) => this.fail(error, cx),
                    }
                }
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Done => self.last_chunk.is_none() && self.failure.is_none(),
            Source::Full(bytes) => bytes.is_empty() && self.declared_length.is_none(),
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.source, self.declared_length) {
            (_, Some(declared)) => SizeHint::with_exact(declared),
            (Source::Full(bytes), None) => SizeHint::with_exact(bytes.len() as u64),
            (Source::Done, None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(hook) = self.access.take() {
            hook.log.write(&hook.record, hook.status, self.produced);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    async fn collect(body: ResponseBody) -> Result<Vec<u8>, BodyError> {
        body.collect().await.map(|c| c.to_bytes().to_vec())
    }

    #[test]
    fn stream_delivers_first_chunk_then_channel_then_end() {
        runtime().block_on(async {
            let (body, tx) = ResponseBody::streaming(Bytes::from_static(b"a"));
            tx.send(Ok(Bytes::from_static(b"b"))).await.unwrap();
            tx.send(Ok(Bytes::new())).await.unwrap();
            tx.send(Ok(Bytes::from_static(b"c"))).await.unwrap();
            drop(tx);
            assert_eq!(collect(body).await.unwrap(), b"abc");
        });
    }

    #[test]
    fn body_longer_than_declared_length_is_an_error_before_the_excess_is_sent() {
        runtime().block_on(async {
            let body =
                ResponseBody::chunks(vec![Bytes::from_static(b"12"), Bytes::from_static(b"345")])
                    .with_declared_length(4);
            let err = collect(body).await.unwrap_err();
            assert_eq!(
                err,
                BodyError::LengthMismatch {
                    declared: 4,
                    produced: 5
                }
            );
        });
    }

    #[test]
    fn body_shorter_than_declared_length_is_an_error_at_the_end() {
        runtime().block_on(async {
            let body =
                ResponseBody::chunks(vec![Bytes::from_static(b"12")]).with_declared_length(4);
            assert!(matches!(
                collect(body).await,
                Err(BodyError::LengthMismatch { .. })
            ));
        });
    }

    #[test]
    fn producer_failure_reaches_the_connection_as_an_error() {
        runtime().block_on(async {
            let (body, tx) = ResponseBody::streaming(Bytes::from_static(b"a"));
            tx.send(Err(BodyError::Aborted)).await.unwrap();
            assert_eq!(collect(body).await.unwrap_err(), BodyError::Aborted);
        });
    }

    #[test]
    fn full_body_has_an_exact_size_hint() {
        assert_eq!(
            ResponseBody::full(Bytes::from_static(b"hello"))
                .size_hint()
                .exact(),
            Some(5)
        );
        assert_eq!(ResponseBody::chunks(vec![]).size_hint().exact(), None);
    }
}
