//! Request bodies that did not arrive whole with their head: read off the socket as the
//! handler takes them, `100 Continue` asked for when the handler first reads, and whatever
//! the handler leaves unread discarded so the connection can carry the next request.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot, Notify};

use super::connection::{CLIENT_TIMEOUT, HEAD_READ_BYTES};
use super::direct_body::{ContinueRequest, DirectBody, Released};
use super::request::{BodyFraming, RequestHead};
use super::request_body::{BodyDecoder, BodyReadError, Decoded, RequestBody};

/// Most bytes read from the socket at once for a body. PERF: 1 MiB reads beat 256 KiB and
/// 64 KiB ones on post1m (benches/README.md, "own HTTP/1 layer").
const BODY_READ_BYTES: usize = 1024 * 1024;
/// Body chunks the connection reads ahead of the handler.
const BODY_CHANNEL_CHUNKS: usize = 2;
/// Most of a request body the server reads and discards when the handler did not read it,
/// so the connection can carry the next request. Beyond it the connection is closed instead.
const MAX_UNREAD_BODY_DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// Where `100 Continue` stands for one request (only used when the client expects it).
#[derive(Default)]
pub struct ContinueState(AtomicU8);

/// The state of a request that does not expect `100 Continue`: stays idle.
pub static NOT_EXPECTED: ContinueState = ContinueState(AtomicU8::new(CONTINUE_IDLE));

pub const CONTINUE_IDLE: u8 = 0;
pub const CONTINUE_WANTED: u8 = 1;
pub const CONTINUE_SENT: u8 = 2;
/// The response head went out first: the body will not be asked for.
pub const CONTINUE_REFUSED: u8 = 3;

impl ContinueState {
    pub fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    pub fn change(&self, from: u8, to: u8) -> Result<(), u8> {
        self.0
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    pub fn set(&self, to: u8) {
        self.0.store(to, Ordering::Release);
    }
}

/// How reading one request body went.
pub enum Pumped {
    /// The body was read to its end: the connection is in step for the next request.
    Complete,
    /// The body was not read to its end (unwanted, too long to drain, or broken).
    Abandoned,
}

/// The body as the handler will see it, and what keeps feeding it when it did not all
/// arrive with the head. With `socket`, the rest of a body of known length is left on it for
/// the handler's thread to read (see `DirectBody`). `continue_state` is set when the client
/// expects `100 Continue`.
pub fn take_body(
    head: &RequestHead,
    buf: &mut BytesMut,
    socket: Option<RawFd>,
    continue_state: Option<&Arc<ContinueState>>,
) -> (Option<RequestBody>, Option<BodyPump>) {
    if head.framing == BodyFraming::Empty {
        return (None, None);
    }
    let mut decoder = BodyDecoder::new(head.framing);
    let mut arrived: Vec<Bytes> = Vec::new();
    let mut failure = None;
    if !head.expects_continue {
        loop {
            match decoder.decode(buf) {
                Ok(Decoded::Data(data)) => arrived.push(data),
                Ok(Decoded::End) => return (Some(RequestBody::complete(join(arrived))), None),
                Ok(Decoded::NeedMore) => break,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
    }
    let first = (!arrived.is_empty()).then(|| join(arrived));
    let continue_wanted = head.expects_continue.then(|| Arc::new(Notify::new()));
    // A client expecting `100 Continue` may have sent body bytes anyway; those are in `buf`,
    // and only the pump reads from there.
    let socket = socket.filter(|_| !head.expects_continue || buf.is_empty());
    if let (Some(socket), BodyDecoder::Length(remaining @ 1..)) = (socket, &decoder) {
        let continue_request =
            continue_state
                .zip(continue_wanted.as_ref())
                .map(|(state, wanted)| ContinueRequest {
                    state: state.clone(),
                    wanted: wanted.clone(),
                });
        if let Ok((direct, released)) = DirectBody::new(socket, *remaining, continue_request) {
            let pump = BodyPump {
                decoder,
                tx: None,
                continue_wanted,
                failure: None,
                handed_over: Some(released),
            };
            return (Some(RequestBody::direct(first, direct)), Some(pump));
        }
    }
    let (tx, rx) = mpsc::channel(BODY_CHANNEL_CHUNKS);
    let body = RequestBody::streamed(first, rx, continue_wanted.clone());
    let pump = BodyPump {
        decoder,
        tx: Some(tx),
        continue_wanted,
        failure,
        handed_over: None,
    };
    (Some(body), Some(pump))
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
    /// A decoding error met while taking the body that arrived with the head.
    failure: Option<BodyReadError>,
    /// Set while the handler's thread reads the body off the socket itself: what it left.
    handed_over: Option<oneshot::Receiver<Released>>,
}

impl BodyPump {
    pub async fn run<R: AsyncRead + Unpin>(
        mut self,
        reader: &mut R,
        buf: &mut BytesMut,
        continue_state: &ContinueState,
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
                }) => self.decoder = BodyDecoder::Length(remaining),
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
            if continue_state
                .change(CONTINUE_IDLE, CONTINUE_WANTED)
                .is_err()
            {
                self.fail(BodyReadError::NotRequested).await;
                return Pumped::Abandoned;
            }
            // The writer sends it; this task is polled again right after this poll.
            tokio::task::yield_now().await;
        }
        if let Some(error) = self.failure.take() {
            self.fail(error).await;
            return Pumped::Abandoned;
        }
        let mut discarded = 0u64;
        loop {
            match self.decoder.decode(buf) {
                Ok(Decoded::End) => return Pumped::Complete,
                Ok(Decoded::Data(data)) => {
                    if let Some(tx) = &self.tx {
                        if tx.send(Ok(data)).await.is_err() {
                            self.tx = None;
                        }
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
                    let read = if self.tx.is_some() {
                        reader.read_buf(buf).await.ok()
                    } else {
                        tokio::time::timeout(CLIENT_TIMEOUT, reader.read_buf(buf))
                            .await
                            .ok()
                            .and_then(Result::ok)
                    };
                    if matches!(read, None | Some(0)) {
                        self.fail(BodyReadError::Incomplete).await;
                        return Pumped::Abandoned;
                    }
                }
                Err(error) => {
                    self.fail(error).await;
                    return Pumped::Abandoned;
                }
            }
        }
    }

    async fn fail(&mut self, error: BodyReadError) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Err(error)).await;
        }
    }
}
