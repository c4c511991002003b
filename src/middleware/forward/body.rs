//! Bodies through the proxy, both ways, with bounded buffers. A request body goes to the
//! upstream as the client sends it (from the connection's channel, or read off the socket on
//! a blocking thread when the handler owns the socket's reads); a response body comes back
//! through the server's bounded stream channel, so a slow client slows the upstream down
//! rather than filling memory. An upstream that fails mid-body aborts the client's response.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::headers::remove_hop_by_hop;
use super::pool::DrivenBody;
use crate::http::{BodyError, BodyReadError, BodySender, HeaderBlock, RequestBody};
use crate::http::{Response, ResponseBody};
use crate::middleware::Refusal;

/// The most read off a client's socket at once for an upstream.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A body up to this long is read whole before it is sent, so that it can be sent again to
/// another upstream after a failure (nginx buffers request bodies for the same reason).
pub const REPLAYABLE_BYTES: u64 = 64 * 1024;

/// Pieces of a streamed response body (each up to hyper's 64 KiB read buffer) that may wait
/// for a slow client: 256 KiB a response, with the one in hyper's buffer. The server's
/// default for app bodies (16 small yields) would let a proxied body hold 1 MiB per
/// connection.
// PERF: proxy1m held 4 against 16 pieces (benches/README.md, issue 16).
const PUMP_AHEAD_PIECES: usize = 4;

/// Pieces read off the socket that may wait for the upstream: two, so the next read
/// overlaps the write of the last one, and a slow upstream holds at most 128 KiB.
const READ_AHEAD_CHUNKS: usize = 2;

/// A request body on its way to an upstream.
pub enum OutgoingBody {
    Empty,
    /// All of it, known before sending: such a request can be sent again to another upstream.
    Full(Option<Bytes>),
    /// Fed as the client sends it.
    Streamed {
        first: Option<Bytes>,
        rest: Rest,
    },
}

pub enum Rest {
    /// The connection's body (fed by its pump).
    Client(RequestBody),
    /// Pieces read by another thread (off the socket, or from `wsgi.input`).
    Channel(mpsc::Receiver<Result<Bytes, BodyReadError>>),
}

impl OutgoingBody {
    /// The client's body as it arrives; one that arrived whole with its head, or that the
    /// handler reads off the socket and is at most `REPLAYABLE_BYTES` long, is `Full`. Must
    /// be called on a tokio runtime: a body the handler reads off the socket itself is read
    /// on its blocking pool.
    pub async fn from_client(body: Option<RequestBody>) -> Result<OutgoingBody, BodyReadError> {
        let Some(mut body) = body else {
            return Ok(OutgoingBody::Empty);
        };
        let first = body.take_first();
        if body.is_end_stream() {
            return Ok(OutgoingBody::Full(first));
        }
        let Some(direct) = body.direct_mut() else {
            return Ok(OutgoingBody::Streamed {
                first,
                rest: Rest::Client(body),
            });
        };
        let have = first.as_ref().map_or(0, |f| f.len() as u64);
        if have + direct.remaining() <= REPLAYABLE_BYTES {
            let read = tokio::task::spawn_blocking(move || read_whole(first, body)).await;
            return read.unwrap_or(Err(BodyReadError::Incomplete));
        }
        let (tx, rx) = mpsc::channel(READ_AHEAD_CHUNKS);
        tokio::task::spawn_blocking(move || {
            while let Some(direct) = body.direct_mut().filter(|d| !d.is_over()) {
                let chunk = direct.read_chunk(READ_CHUNK_BYTES);
                let failed = chunk.is_err();
                // The upstream's request ended (answered, failed): stop reading.
                if tx.blocking_send(chunk).is_err() || failed {
                    break;
                }
            }
        });
        Ok(OutgoingBody::Streamed {
            first,
            rest: Rest::Channel(rx),
        })
    }

    /// A body whose first piece is here and whose rest comes through `rest`.
    pub fn streamed(
        first: Bytes,
        rest: mpsc::Receiver<Result<Bytes, BodyReadError>>,
    ) -> OutgoingBody {
        OutgoingBody::Streamed {
            first: Some(first).filter(|f| !f.is_empty()),
            rest: Rest::Channel(rest),
        }
    }

    /// The same body again, for another upstream, if it is known whole.
    pub fn replay(&self) -> Option<OutgoingBody> {
        match self {
            OutgoingBody::Empty => Some(OutgoingBody::Empty),
            OutgoingBody::Full(data) => Some(OutgoingBody::Full(data.clone())),
            OutgoingBody::Streamed { .. } => None,
        }
    }
}

impl Body for OutgoingBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let next = match self.get_mut() {
            OutgoingBody::Empty => return Poll::Ready(None),
            OutgoingBody::Full(data) => {
                return Poll::Ready(data.take().map(|d| Ok(Frame::data(d))))
            }
            OutgoingBody::Streamed { first, rest } => {
                if let Some(first) = first.take() {
                    return Poll::Ready(Some(Ok(Frame::data(first))));
                }
                match rest {
                    Rest::Client(body) => body.poll_next(cx),
                    Rest::Channel(rx) => rx.poll_recv(cx),
                }
            }
        };
        next.map(|piece| piece.map(|piece| piece.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OutgoingBody::Empty => true,
            OutgoingBody::Full(data) => data.is_none(),
            OutgoingBody::Streamed { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutgoingBody::Empty => SizeHint::with_exact(0),
            OutgoingBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            OutgoingBody::Streamed { .. } => SizeHint::default(),
        }
    }
}

/// A request body that says when it has all been taken (or was dropped): the upstream's
/// timeout starts then. A flag rather than a channel: the connection that takes the body is
/// polled by the request's own task, which looks at the flag after each poll, so nothing
/// needs waking.
pub struct SentBody {
    body: OutgoingBody,
    sent: Option<Arc<AtomicBool>>,
}

impl SentBody {
    pub fn new(body: OutgoingBody, sent: Arc<AtomicBool>) -> SentBody {
        SentBody {
            body,
            sent: Some(sent),
        }
    }

    fn mark_sent(&mut self) {
        if let Some(sent) = self.sent.take() {
            sent.store(true, Ordering::Relaxed);
        }
    }
}

impl From<OutgoingBody> for SentBody {
    fn from(body: OutgoingBody) -> SentBody {
        SentBody { body, sent: None }
    }
}

impl Drop for SentBody {
    /// hyper drops a body it needs no more (all sent, none to send, or the connection
    /// failed): either way the upstream has all it will get.
    fn drop(&mut self) {
        self.mark_sent();
    }
}

impl Body for SentBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let this = self.get_mut();
        let next = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = next {
            this.mark_sent();
        }
        next
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The rest of a short body read off the socket, after `first` (blocking).
fn read_whole(first: Option<Bytes>, mut body: RequestBody) -> Result<OutgoingBody, BodyReadError> {
    let mut whole = BytesMut::from(first.unwrap_or_default());
    while let Some(direct) = body.direct_mut().filter(|d| !d.is_over()) {
        whole.extend_from_slice(&direct.read_chunk(READ_CHUNK_BYTES)?);
    }
    Ok(OutgoingBody::Full(Some(whole.freeze())))
}

/// How an upstream's response body is read (the `timeout` and `buffered_response_bytes`
/// keywords).
#[derive(Debug, Clone, Copy)]
pub struct ResponseReading {
    /// The longest wait for each piece of the body.
    pub read_timeout: Duration,
    /// A body declared this long or shorter is read whole before the response is answered
    /// (nginx's `proxy_buffering`, within one of its default buffers): one write to the
    /// client instead of a head and a body, no pump task, no stream channel, and an upstream
    /// that breaks off is a 502 rather than a cut-off 200.
    // PERF: proxy_hello (benches/callgrind/count_proxy.py; benches/README.md, issue 16).
    pub buffered_bytes: u64,
}

/// An upstream's response as the server's: hop-by-hop fields removed (`Server`, `Date` and
/// the rest kept), its Content-Length held to. A short body (`buffered_bytes`) is read
/// here; a longer one is streamed by a task on the current runtime, which then also drives
/// the upstream connection. Either way each piece is waited for at most `read_timeout`.
/// `keep` (the upstream's connection slot) is held until the body is done.
pub async fn from_upstream<K: Send + 'static>(
    response: hyper::Response<DrivenBody>,
    reading: ResponseReading,
    keep: K,
) -> Result<Response, Refusal> {
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    let mut block = HeaderBlock::with_capacity(256);
    for (name, value) in &parts.headers {
        block.push(name.as_str().as_bytes(), value.as_bytes());
    }
    let length = declared_length(&parts.headers);
    let read_timeout = reading.read_timeout;
    let body = if body.is_end_stream() {
        drop(body);
        ResponseBody::full(Bytes::new())
    } else if length.is_some_and(|length| length <= reading.buffered_bytes) {
        let whole = read_short(body, read_timeout).await?;
        drop(keep);
        ResponseBody::full(whole)
    } else {
        let (streamed, sender) = ResponseBody::streaming_ahead(Bytes::new(), PUMP_AHEAD_PIECES);
        tokio::spawn(pump(body, sender, read_timeout, keep));
        streamed
    };
    let body = match length {
        Some(length) => body.with_declared_length(length),
        None => body,
    };
    Ok(Response::new(parts.status, block, body))
}

/// A short body, whole; nothing of the response has reached the client yet, so a broken
/// upstream is a 502 and a stalled one a 504.
async fn read_short(mut body: DrivenBody, read_timeout: Duration) -> Result<Bytes, Refusal> {
    let mut whole = Bytes::new();
    loop {
        let failure = match tokio::time::timeout(read_timeout, body.frame()).await {
            Ok(None) => return Ok(whole),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    // One piece (the usual case) is kept as it came, without a copy.
                    whole = match whole.is_empty() {
                        true => data,
                        false => [whole, data].concat().into(),
                    };
                }
                // Its declared length reached: no need to wait for the end to be said.
                match body.is_end_stream() {
                    true => return Ok(whole),
                    false => continue,
                }
            }
            Ok(Some(Err(error))) => error.to_string(),
            Err(_) => {
                log::warn!(
                    "Forward: the upstream's response broke off: nothing for {} ms: 504",
                    read_timeout.as_millis()
                );
                return Err(Refusal::GatewayTimeout);
            }
        };
        log::warn!("Forward: the upstream's response broke off: {failure}: 502");
        return Err(Refusal::BadGateway);
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Moves the upstream's body to the client. A broken or stalled upstream sends `Aborted`,
/// so the client's connection is closed instead of the response looking complete.
async fn pump<K>(mut body: DrivenBody, sender: BodySender, read_timeout: Duration, keep: K) {
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(read_timeout, body.frame()) => frame,
            // The client is gone: dropping the body drops the upstream connection.
            () = sender.closed() => break,
        };
        let failure = match frame {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if !data.is_empty() => match sender.send(Ok(data)).await {
                    Ok(()) if body.is_end_stream() => break,
                    Ok(()) => continue,
                    Err(_) => break,
                },
                _ => continue,
            },
            Ok(Some(Err(error))) => error.to_string(),
            Err(_) => format!("nothing for {} ms", read_timeout.as_millis()),
        };
        log::warn!("Forward: the upstream's response broke off: {failure}");
        let _ = sender.send(Err(BodyError::Aborted)).await;
        break;
    }
    drop(keep);
}
