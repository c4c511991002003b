//! Request bodies that did not arrive whole with their head: read off the socket as the
//! handler takes them, `100 Continue` asked for when the handler first reads, and whatever
//! the handler leaves unread discarded (briefly, and only so much) so the connection can carry
//! the next request.

use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot, Notify};

use super::continue_state::ContinueState;
use super::decode::{BodyDecoder, Decoded};
use super::direct_body::{ContinueRequest, DirectBody, Released};
use super::parse::{BodyFraming, RequestHead};
use crate::http::error::{BodyReadError, RequestError};
use crate::http::limits::{
    Limits, BODY_READ_BYTES, DRAIN_READ_TIMEOUT, HEAD_READ_BYTES, MAX_UNREAD_BODY_DRAIN_BYTES,
};
use crate::http::RequestBody;
use crate::observe::metrics::WorkerMetrics;

/// Body chunks the connection reads ahead of the handler.
const BODY_CHANNEL_CHUNKS: usize = 2;
/// Longest a body the handler did not want is discarded for. Why: a client trickling an
/// unwanted body must not hold the connection, nor a graceful stop, for long.
const MAX_DRAIN_TIME: Duration = Duration::from_secs(5);

/// How reading one request body went.
pub enum Pumped {
    /// The body was read to its end: the connection is in step for the next request.
    Complete,
    /// The body was not read to its end (unwanted, too long to drain, or broken).
    Abandoned,
    /// The client stopped sending it for the socket timeout: the connection is dropped.
    TimedOut(Duration),
}

/// Where a request's body comes from and what holds it: the connection's socket (which the
/// handler's thread may read itself), the `100 Continue` state, the limits.
pub struct BodySource<'a> {
    pub socket: Option<RawFd>,
    pub continue_state: Option<&'a Arc<ContinueState>>,
    pub limits: &'a Limits,
    /// With `--metrics-bind`: counts the body bytes as they are read, whoever reads them.
    pub metrics: Option<&'a WorkerMetrics>,
}

/// The body as the handler will see it, and what keeps feeding it when it did not all
/// arrive with the head. The rest of a body of known length is left on the socket for the
/// handler's thread to read (see `DirectBody`). `Err`: what arrived with the head already
/// breaks the framing or the limit, so the request is refused before the handler sees it.
pub fn take_body(
    head: &RequestHead,
    buf: &mut BytesMut,
    source: BodySource<'_>,
) -> Result<(Option<RequestBody>, Option<BodyPump>), BodyReadError> {
    if head.framing == BodyFraming::Empty {
        return Ok((None, None));
    }
    let mut decoder = BodyDecoder::new(head.framing, source.limits.body_bytes);
    let mut arrived: Vec<Bytes> = Vec::new();
    if !head.expects_continue {
        loop {
            match decoder.decode(buf)? {
                Decoded::Data(data) => arrived.push(data),
                Decoded::End => {
                    let body = join(arrived);
                    if let Some(metrics) = source.metrics {
                        metrics.body_received(body.len() as u64);
                    }
                    return Ok((Some(RequestBody::complete(body)), None));
                }
                Decoded::NeedMore => break,
            }
        }
    }
    let first = (!arrived.is_empty()).then(|| join(arrived));
    if let (Some(metrics), Some(first)) = (source.metrics, &first) {
        metrics.body_received(first.len() as u64);
    }
    let metrics = source.metrics.cloned();
    let continue_wanted = head.expects_continue.then(|| Arc::new(Notify::new()));
    let socket_timeout = source.limits.socket_timeout;
    // A client expecting `100 Continue` may have sent body bytes anyway; those are in `buf`,
    // and only the pump reads from there.
    let socket = source
        .socket
        .filter(|_| !head.expects_continue || buf.is_empty());
    if let (Some(socket), Some(remaining @ 1..)) = (socket, decoder.length_remaining()) {
        let continue_request =
            source
                .continue_state
                .zip(continue_wanted.as_ref())
                .map(|(state, wanted)| ContinueRequest {
                    state: state.clone(),
                    wanted: wanted.clone(),
                });
        if let Ok((direct, released)) =
            DirectBody::new(socket, remaining, socket_timeout, continue_request)
        {
            let direct = direct.counted_by(metrics.clone());
            let pump = BodyPump {
                decoder,
                tx: None,
                continue_wanted,
                handed_over: Some(released),
                socket_timeout,
                metrics,
            };
            return Ok((Some(RequestBody::direct(first, direct)), Some(pump)));
        }
    }
    let (tx, rx) = mpsc::channel(BODY_CHANNEL_CHUNKS);
    let body = RequestBody::streamed(first, rx, continue_wanted.clone());
    let pump = BodyPump {
        decoder,
        tx: Some(tx),
        continue_wanted,
        handed_over: None,
        socket_timeout,
        metrics,
    };
    Ok((Some(body), Some(pump)))
}

fn join(mut pieces: Vec<Bytes>) -> Bytes {
    match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.pop().expect("invariant: one piece"),
        _ => Bytes::from(pieces.concat()),
    }
}

/// Reads a request body off the socket into the handler's `RequestBody`, as fast as the
/// handler takes it (the channel is the backpressure).
pub struct BodyPump {
    decoder: BodyDecoder,
    /// `None` once the handler is gone: the rest is read and discarded.
    tx: Option<mpsc::Sender<Result<Bytes, BodyReadError>>>,
    continue_wanted: Option<Arc<Notify>>,
    /// Set while the handler's thread reads the body off the socket itself: what it left.
    handed_over: Option<oneshot::Receiver<Released>>,
    socket_timeout: Duration,
    /// Counts each piece read, whether the handler takes it or it is discarded.
    metrics: Option<WorkerMetrics>,
}

/// How one read for the body went.
enum BodyRead {
    Read(io::Result<usize>),
    TimedOut,
    /// The handler dropped the body while the read waited.
    Unwanted,
}

impl BodyPump {
    /// Pumps until the body's end or until it is abandoned. A broken body that the response
    /// should answer (400, 413) is left in `refusal`.
    pub async fn run<R: AsyncRead + Unpin>(
        mut self,
        reader: &mut R,
        buf: &mut BytesMut,
        continue_state: &ContinueState,
        refusal: &Mutex<Option<RequestError>>,
    ) -> Pumped {
        if let Some(mut handed_over) = self.handed_over.take() {
            let released = match self.continue_wanted.take() {
                None => handed_over.await,
                // The reader marks `100 Continue` wanted and notifies; being woken is all this
                // task needs for the writer, polled beside it, to send it.
                Some(wanted) => tokio::select! {
                    released = &mut handed_over => released,
                    () = wanted.notified() => handed_over.await,
                },
            };
            match released {
                Ok(Released {
                    remaining,
                    broken: false,
                    ..
                }) => self.decoder = BodyDecoder::remaining(remaining),
                Ok(Released {
                    timed_out: true, ..
                }) => return Pumped::TimedOut(self.socket_timeout),
                _ => return Pumped::Abandoned,
            }
        }
        if let Some(wanted) = self.continue_wanted.take() {
            let tx = self
                .tx
                .as_ref()
                .expect("invariant: set until the pump runs");
            tokio::select! {
                () = wanted.notified() => {}
                () = tx.closed() => return Pumped::Abandoned,
            }
            if !continue_state.request() {
                self.fail(BodyReadError::NotRequested, refusal).await;
                return Pumped::Abandoned;
            }
            // The writer sends it; this task is polled again right after this poll.
            tokio::task::yield_now().await;
        }
        let mut discarded = 0u64;
        let mut drain_deadline = None;
        loop {
            match self.decoder.decode(buf) {
                Ok(Decoded::End) => return Pumped::Complete,
                Ok(Decoded::Data(data)) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.body_received(data.len() as u64);
                    }
                    if let Some(tx) = &self.tx {
                        if tx.send(Ok(data)).await.is_ok() {
                            continue;
                        }
                        self.tx = None;
                    } else {
                        discarded += data.len() as u64;
                        if discarded > MAX_UNREAD_BODY_DRAIN_BYTES {
                            return Pumped::Abandoned;
                        }
                    }
                }
                Ok(Decoded::NeedMore) => {
                    let wanted = self
                        .decoder
                        .remaining_hint()
                        .map_or(HEAD_READ_BYTES, |r| r.min(BODY_READ_BYTES as u64) as usize);
                    buf.reserve(wanted.max(HEAD_READ_BYTES));
                    let read = match &self.tx {
                        Some(tx) => tokio::select! {
                            read = tokio::time::timeout(self.socket_timeout, reader.read_buf(buf)) => {
                                read.map_or(BodyRead::TimedOut, BodyRead::Read)
                            }
                            () = tx.closed() => BodyRead::Unwanted,
                        },
                        None => {
                            let deadline = *drain_deadline
                                .get_or_insert_with(|| Instant::now() + MAX_DRAIN_TIME);
                            let wait = deadline
                                .saturating_duration_since(Instant::now())
                                .min(DRAIN_READ_TIMEOUT);
                            match tokio::time::timeout(wait, reader.read_buf(buf)).await {
                                Ok(read) => BodyRead::Read(read),
                                // Nobody waits for this body: give the connection up.
                                Err(_) => return Pumped::Abandoned,
                            }
                        }
                    };
                    match read {
                        BodyRead::Read(Ok(1..)) => {}
                        BodyRead::Read(_) => {
                            self.fail(BodyReadError::Incomplete, refusal).await;
                            return Pumped::Abandoned;
                        }
                        BodyRead::TimedOut => {
                            let error = BodyReadError::TimedOut(self.socket_timeout);
                            self.fail(error, refusal).await;
                            return Pumped::TimedOut(self.socket_timeout);
                        }
                        BodyRead::Unwanted => self.tx = None,
                    }
                }
                Err(error) => {
                    self.fail(error, refusal).await;
                    return Pumped::Abandoned;
                }
            }
        }
    }

    async fn fail(&mut self, error: BodyReadError, refusal: &Mutex<Option<RequestError>>) {
        // Noted before the handler can see the error, so its answer finds it.
        if let Some(refused) = error.as_refusal() {
            *refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(refused);
        }
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Err(error)).await;
        }
    }
}
