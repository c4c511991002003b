//! One HTTP/1 connection, start to end: read a head, hand the request to the handler, feed it
//! the body as it asks, write the response, and go round again while keep-alive allows.
//!
//! Why our own and not hyper's: hyper's dispatcher, header maps and title-casing writer were a
//! third of a hello request's instructions (benches/README.md, "own HTTP/1 layer").

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{REFERER, USER_AGENT};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use super::body::Source;
use super::idle::ConnectionActivity;
use super::in_flight::InFlight;
use super::request::{parse_head, BodyFraming, RequestError, RequestHead};
use super::request_body::{BodyDecoder, BodyReadError, Decoded, RequestBody};
use super::response::{encode_head, HeaderBlock, Response, ResponseFraming};
use super::write::WriteBatch;
use super::{BodyError, ResponseBody};
use crate::handler::{ConnectionInfo, Handler};
use crate::observe::{AccessLog, AccessRecord};

/// Bytes read from the socket at once while waiting for a head.
const HEAD_READ_BYTES: usize = 8 * 1024;
/// Most bytes read from the socket at once for a body.
const BODY_READ_BYTES: usize = 256 * 1024;
/// Body chunks the connection reads ahead of the handler.
const BODY_CHANNEL_CHUNKS: usize = 2;
/// Most of a request body the server reads and discards when the handler did not read it,
/// so the connection can carry the next request. Beyond it the connection is closed instead;
/// closing while the client is still sending can make its kernel discard our response.
const MAX_UNREAD_BODY_DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// How long a client may pause while its body is read, or its response is waited on, before
/// the server gives up on it. Why: a client that stops sending or reading must not hold a
/// connection (or a Python thread) forever.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// After refusing a request, how long the rest of what the client sent is read and discarded
/// so that closing does not reset the connection before the client has read the refusal.
const LINGER: Duration = Duration::from_secs(1);

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Per-connection HTTP settings, shared by every connection of a server.
#[derive(Clone)]
pub struct ConnectionOptions {
    /// How long an idle keep-alive connection, or a client still sending its head, is waited for.
    pub keep_alive_timeout: Duration,
    /// `false` answers every request with `Connection: close` (make_server's handle_request).
    pub keep_alive: bool,
    pub access_log: Option<Arc<AccessLog>>,
    /// Requests this server runs at once before it defers accepting new connections, so that
    /// other workers (sharing the listening socket) take them. 0: never defer.
    pub max_in_flight: usize,
}

/// Why a connection ended early; `accept` turns it into one log line.
#[derive(Debug)]
pub enum ConnectionError {
    Io(io::Error),
    /// The request was refused with the error's status.
    Refused(RequestError),
    /// The client closed in the middle of a request head.
    IncompleteHead,
    /// The response body failed after its head was sent.
    Response(BodyError),
}

impl From<io::Error> for ConnectionError {
    fn from(error: io::Error) -> Self {
        ConnectionError::Io(error)
    }
}

/// A stream that splits into halves usable at the same time by one task.
pub trait Socket: Send + 'static {
    type Reader<'a>: AsyncRead + Unpin + Send
    where
        Self: 'a;
    type Writer<'a>: AsyncWrite + Unpin + Send
    where
        Self: 'a;
    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>);
}

impl Socket for tokio::net::TcpStream {
    type Reader<'a> = tokio::net::tcp::ReadHalf<'a>;
    type Writer<'a> = tokio::net::tcp::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        self.split()
    }
}

impl Socket for tokio::net::UnixStream {
    type Reader<'a> = tokio::net::unix::ReadHalf<'a>;
    type Writer<'a> = tokio::net::unix::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        self.split()
    }
}

/// What every connection of one server shares.
pub struct HttpServer<H> {
    pub handler: H,
    pub options: ConnectionOptions,
    pub in_flight: Arc<InFlight>,
    /// Set when the server stops: responses from then on close their connection.
    pub stopping: AtomicBool,
}

/// Where `100 Continue` stands for one request (only used when the client expects it).
#[derive(Default)]
struct ContinueState(AtomicU8);

const CONTINUE_IDLE: u8 = 0;
const CONTINUE_WANTED: u8 = 1;
const CONTINUE_SENT: u8 = 2;
/// The response head went out first: the body will not be asked for.
const CONTINUE_REFUSED: u8 = 3;

impl ContinueState {
    fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    fn change(&self, from: u8, to: u8) -> Result<(), u8> {
        self.0
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }
}

/// What the response writer needs to know of its request.
struct RequestFacts {
    is_head: bool,
    version: Version,
    keep_alive: bool,
    expects_continue: bool,
}

/// How writing one response went.
struct Written {
    status: StatusCode,
    body_bytes: u64,
    keep_alive: bool,
    failure: Option<ConnectionError>,
}

/// How reading one request body went.
enum Pumped {
    /// The body was read to its end: the connection is in step for the next request.
    Complete,
    /// The body was not read to its end (unwanted, too long to drain, or broken).
    Abandoned,
}

impl<H: Handler> HttpServer<H> {
    pub fn new(handler: H, options: ConnectionOptions) -> HttpServer<H> {
        HttpServer {
            handler,
            options,
            in_flight: Arc::default(),
            stopping: AtomicBool::new(false),
        }
    }

    /// Serves `socket` until the client or keep-alive ends it, or a request is refused.
    pub async fn serve<S: Socket>(
        &self,
        mut socket: S,
        info: ConnectionInfo,
        activity: Arc<ConnectionActivity>,
    ) -> Result<(), ConnectionError> {
        let (mut reader, mut writer) = socket.halves();
        let mut buf = BytesMut::with_capacity(HEAD_READ_BYTES);
        let mut batch = WriteBatch::default();
        loop {
            let head = match read_head(&mut reader, &mut buf).await {
                Ok(Some(head)) => head,
                Ok(None) => return Ok(()),
                Err(ConnectionError::Refused(error)) => {
                    refuse(&mut reader, &mut writer, &mut batch, &error).await;
                    return Err(ConnectionError::Refused(error));
                }
                Err(error) => return Err(error),
            };
            let _in_progress = activity.request_started();
            let _in_flight = (self.options.max_in_flight > 0).then(|| self.in_flight.enter());
            let access = self
                .options
                .access_log
                .as_ref()
                .map(|log| (log, access_record(&head.parts, &info)));
            let facts = RequestFacts {
                is_head: head.parts.method == Method::HEAD,
                version: head.parts.version,
                keep_alive: head.keep_alive,
                expects_continue: head.expects_continue,
            };
            let continue_state = ContinueState::default();
            let (body, pump) = take_body(&head, &mut buf);
            let reply = self.handler.call(head.parts, body, &info);
            let respond = self.respond(&mut writer, reply, &facts, &continue_state, &mut batch);
            let (written, pumped) = match pump {
                None => (respond.await, Pumped::Complete),
                Some(pump) => {
                    let pumping = pump.run(&mut reader, &mut buf, &continue_state);
                    respond_while_pumping(respond, pumping).await
                }
            };
            if let Some((log, record)) = access {
                log.write(&record, written.status.as_u16(), written.body_bytes);
            }
            if let Some(failure) = written.failure {
                return Err(failure);
            }
            if !written.keep_alive || matches!(pumped, Pumped::Abandoned) {
                let _ = writer.shutdown().await;
                return Ok(());
            }
        }
    }

    async fn respond<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
        reply: H::Future,
        request: &RequestFacts,
        continue_state: &ContinueState,
        batch: &mut WriteBatch,
    ) -> Written {
        let response = match wait_for_reply(writer, reply, continue_state).await {
            Ok(response) => response,
            Err(error) => {
                return Written {
                    status: StatusCode::OK,
                    body_bytes: 0,
                    keep_alive: false,
                    failure: Some(error.into()),
                }
            }
        };
        let mut keep_alive =
            self.options.keep_alive && request.keep_alive && !self.stopping.load(Ordering::Relaxed);
        if request.expects_continue {
            match continue_state.change(CONTINUE_IDLE, CONTINUE_REFUSED) {
                // The body will not come; the connection cannot carry another request.
                Ok(()) => keep_alive = false,
                // Asked for after the reply came: the interim response goes first.
                Err(CONTINUE_WANTED) => {
                    batch.text.extend_from_slice(CONTINUE);
                    continue_state.0.store(CONTINUE_SENT, Ordering::Release);
                }
                Err(_) => {}
            }
        }
        let sends_body = response.allows_body() && !request.is_head;
        let framing = if !response.allows_body() {
            ResponseFraming::None
        } else if let Some(declared) = response.body.declared_length {
            ResponseFraming::Declared(declared)
        } else if let Some(length) = response.body.known_length() {
            ResponseFraming::Length(length)
        } else if request.version == Version::HTTP_11 {
            ResponseFraming::Chunked
        } else {
            if !request.is_head {
                keep_alive = false;
            }
            ResponseFraming::UntilClose
        };
        let connection_header: Option<&'static [u8]> = match (keep_alive, request.version) {
            (false, _) => Some(b"close"),
            (true, Version::HTTP_10) => Some(b"keep-alive"),
            (true, _) => None,
        };
        encode_head(&mut batch.text, &response, framing, connection_header);
        let status = response.status;
        let Response { body, .. } = response;
        let sent = if sends_body {
            write_body(writer, batch, body, framing).await
        } else {
            batch
                .write_to(writer)
                .await
                .map(|()| 0)
                .map_err(|error| (ConnectionError::Io(error), 0))
        };
        match sent {
            Ok(body_bytes) => Written {
                status,
                body_bytes,
                keep_alive,
                failure: None,
            },
            Err((error, body_bytes)) => Written {
                status,
                body_bytes,
                keep_alive: false,
                failure: Some(error),
            },
        }
    }
}

/// Runs the response writer and the body reader side by side until the response is done
/// and, if the connection is to carry on, the body has been read to its end.
async fn respond_while_pumping(
    respond: impl Future<Output = Written>,
    pump: impl Future<Output = Pumped>,
) -> (Written, Pumped) {
    let mut respond = pin!(respond);
    let mut pump = pin!(pump);
    let mut written = None;
    let mut pumped = None;
    poll_fn(|cx| {
        if pumped.is_none() {
            if let Poll::Ready(done) = pump.as_mut().poll(cx) {
                pumped = Some(done);
            }
        }
        if written.is_none() {
            if let Poll::Ready(done) = respond.as_mut().poll(cx) {
                written = Some(done);
            }
        }
        match (&written, &pumped) {
            (Some(written), _) if !written.keep_alive => Poll::Ready(()),
            (Some(_), Some(_)) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    })
    .await;
    let written = written.expect("invariant: ready only once the response is written");
    (written, pumped.unwrap_or(Pumped::Abandoned))
}

/// Reads until `buf` starts with a whole request head. `Ok(None)`: the client closed between
/// requests.
async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<Option<RequestHead>, ConnectionError> {
    loop {
        if !buf.is_empty() {
            match parse_head(buf) {
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) => {}
                Err(error) => return Err(ConnectionError::Refused(error)),
            }
        }
        buf.reserve(HEAD_READ_BYTES);
        if reader.read_buf(buf).await? == 0 {
            return match buf.iter().all(|b| b.is_ascii_whitespace()) {
                true => Ok(None),
                false => Err(ConnectionError::IncompleteHead),
            };
        }
    }
}

/// The body as the handler will see it, and what keeps feeding it when it did not all
/// arrive with the head.
fn take_body(head: &RequestHead, buf: &mut BytesMut) -> (Option<RequestBody>, Option<BodyPump>) {
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
    let (tx, rx) = mpsc::channel(BODY_CHANNEL_CHUNKS);
    let continue_wanted = head.expects_continue.then(|| Arc::new(Notify::new()));
    let first = (!arrived.is_empty()).then(|| join(arrived));
    let body = RequestBody::streamed(first, rx, continue_wanted.clone());
    let pump = BodyPump {
        decoder,
        tx: Some(tx),
        continue_wanted,
        failure,
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
struct BodyPump {
    decoder: BodyDecoder,
    /// `None` once the handler is gone: the rest is read and discarded.
    tx: Option<mpsc::Sender<Result<Bytes, BodyReadError>>>,
    continue_wanted: Option<Arc<Notify>>,
    /// A decoding error met while taking the body that arrived with the head.
    failure: Option<BodyReadError>,
}

impl BodyPump {
    async fn run<R: AsyncRead + Unpin>(
        mut self,
        reader: &mut R,
        buf: &mut BytesMut,
        continue_state: &ContinueState,
    ) -> Pumped {
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

/// Resolves to the handler's response, sending `100 Continue` meanwhile when the body reader
/// asks for it.
async fn wait_for_reply<W: AsyncWrite + Unpin, F: Future<Output = Response> + Unpin>(
    writer: &mut W,
    mut reply: F,
    continue_state: &ContinueState,
) -> io::Result<Response> {
    let mut sent = 0;
    poll_fn(|cx| {
        if continue_state.get() == CONTINUE_WANTED {
            while sent < CONTINUE.len() {
                match Pin::new(&mut *writer).poll_write(cx, &CONTINUE[sent..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => sent += n,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            continue_state.0.store(CONTINUE_SENT, Ordering::Release);
        }
        Pin::new(&mut reply).poll(cx).map(Ok)
    })
    .await
}

/// Writes the head already in `batch` and the body; returns the body bytes sent, or the error
/// with the bytes sent before it.
async fn write_body<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &mut WriteBatch,
    body: ResponseBody,
    framing: ResponseFraming,
) -> Result<u64, (ConnectionError, u64)> {
    let mut sender = BodyWriter {
        batch,
        framing,
        produced: 0,
    };
    match body.source {
        Source::Full(data) => sender.push(data)?,
        Source::Chunks(chunks) => {
            for chunk in chunks {
                sender.push(chunk)?;
                if sender.batch.is_full() {
                    sender.flush(writer).await?;
                }
            }
        }
        Source::Stream { first, mut rx } => {
            sender.push(first)?;
            loop {
                sender.flush(writer).await?;
                // PERF: whatever the producer has ready goes out in the same write.
                let Some(next) = rx.recv().await else { break };
                sender.push_produced(next)?;
                while !sender.batch.is_full() {
                    match rx.try_recv() {
                        Ok(next) => sender.push_produced(next)?,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                    }
                }
                if rx.is_closed() && rx.is_empty() {
                    break;
                }
            }
        }
    }
    sender.finish(writer).await
}

struct BodyWriter<'a> {
    batch: &'a mut WriteBatch,
    framing: ResponseFraming,
    produced: u64,
}

impl BodyWriter<'_> {
    fn error(&self, error: BodyError) -> (ConnectionError, u64) {
        (ConnectionError::Response(error), self.produced)
    }

    fn push_produced(
        &mut self,
        next: Result<Bytes, BodyError>,
    ) -> Result<(), (ConnectionError, u64)> {
        match next {
            Ok(data) => self.push(data),
            Err(error) => Err(self.error(error)),
        }
    }

    fn push(&mut self, mut data: Bytes) -> Result<(), (ConnectionError, u64)> {
        if data.is_empty() {
            return Ok(());
        }
        if let ResponseFraming::Declared(declared) = self.framing {
            let produced = self.produced + data.len() as u64;
            if produced > declared {
                // Bytes past the declared length would be read as the next response.
                data.truncate((declared - self.produced) as usize);
                self.batch.push_data(data);
                self.produced = declared;
                return Err(self.error(BodyError::LengthMismatch { declared, produced }));
            }
        }
        self.produced += data.len() as u64;
        match self.framing {
            ResponseFraming::Chunked => self.batch.push_chunk(data),
            _ => self.batch.push_data(data),
        }
        Ok(())
    }

    async fn flush<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
    ) -> Result<(), (ConnectionError, u64)> {
        let produced = self.produced;
        self.batch
            .write_to(writer)
            .await
            .map_err(|error| (error.into(), produced))
    }

    async fn finish<W: AsyncWrite + Unpin>(
        mut self,
        writer: &mut W,
    ) -> Result<u64, (ConnectionError, u64)> {
        match self.framing {
            ResponseFraming::Chunked => self.batch.text.extend_from_slice(b"0\r\n\r\n"),
            ResponseFraming::Declared(declared) if self.produced < declared => {
                let error = BodyError::LengthMismatch {
                    declared,
                    produced: self.produced,
                };
                self.flush(writer).await?;
                return Err(self.error(error));
            }
            _ => {}
        }
        self.flush(writer).await?;
        Ok(self.produced)
    }
}

/// Answers a refused request with its status, then closes without resetting the connection.
async fn refuse<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut R,
    writer: &mut W,
    batch: &mut WriteBatch,
    error: &RequestError,
) {
    let status = error.status();
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let mut headers = HeaderBlock::with_capacity(64);
    headers.push(b"Content-Type", b"text/plain; charset=utf-8");
    let response = Response::new(status, headers, ResponseBody::full(Bytes::new()));
    encode_head(
        &mut batch.text,
        &response,
        ResponseFraming::Length(text.len() as u64),
        Some(b"close"),
    );
    batch.text.extend_from_slice(text.as_bytes());
    if batch.write_to(writer).await.is_err() || writer.shutdown().await.is_err() {
        return;
    }
    let mut discard = vec![0u8; HEAD_READ_BYTES];
    let _ = tokio::time::timeout(LINGER, async {
        let mut total = 0;
        while let Ok(n @ 1..) = reader.read(&mut discard).await {
            total += n;
            if total > MAX_UNREAD_BODY_DRAIN_BYTES as usize {
                break;
            }
        }
    })
    .await;
}

fn access_record(head: &Parts, connection: &ConnectionInfo) -> AccessRecord {
    let header = |name| {
        head.headers
            .get(name)
            .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    AccessRecord {
        remote: connection.peer,
        request_line: format!("{} {} {:?}", head.method, head.uri, head.version),
        referer: header(REFERER),
        user_agent: header(USER_AGENT),
    }
}
