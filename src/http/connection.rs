//! One HTTP/1 connection, start to end: read a head, hand the request to the handler, feed it
//! the body as it asks, write the response, and go round again while keep-alive allows.
//!
//! Why our own and not hyper's: hyper's dispatcher, header maps and title-casing writer were a
//! third of a hello request's instructions (benches/README.md, "own HTTP/1 layer").

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{REFERER, USER_AGENT};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body_pump::{
    take_body, ContinueState, Pumped, CONTINUE_IDLE, CONTINUE_REFUSED, CONTINUE_SENT,
    CONTINUE_WANTED, NOT_EXPECTED,
};
use super::idle::ConnectionActivity;
use super::in_flight::InFlight;
use super::request::{parse_head, RequestError, RequestHead};
use super::response::{encode_head, HeaderBlock, Response, ResponseFraming};
use super::write::{write_body, WriteBatch};
use super::{BodyError, ResponseBody};
use crate::handler::{ConnectionInfo, Handler};
use crate::observe::{AccessLog, AccessRecord};

/// Bytes read from the socket at once while waiting for a head.
pub(super) const HEAD_READ_BYTES: usize = 8 * 1024;
/// How long a client may pause while its body is read, or its response is waited on, before
/// the server gives up on it. Why: a client that stops sending or reading must not hold a
/// connection (or a Python thread) forever.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes discarded before a close (see `close`).
const MAX_LINGER_BYTES: usize = 64 * 1024 * 1024;
/// Before closing a connection the client may still be sending on, how long what it sends is
/// read and discarded (see `close`).
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
    /// The descriptor a blocking thread may read a request body from directly; `None` where
    /// the bytes on the socket are not the request's (an encrypted stream).
    fn body_fd(&self) -> Option<RawFd>;
}

impl Socket for tokio::net::TcpStream {
    type Reader<'a> = tokio::net::tcp::ReadHalf<'a>;
    type Writer<'a> = tokio::net::tcp::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        self.split()
    }
    fn body_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

impl Socket for tokio::net::UnixStream {
    type Reader<'a> = tokio::net::unix::ReadHalf<'a>;
    type Writer<'a> = tokio::net::unix::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        self.split()
    }
    fn body_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
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

/// What the response writer needs to know of its request.
struct RequestFacts {
    is_head: bool,
    version: Version,
    keep_alive: bool,
    expects_continue: bool,
}

/// How writing one response went.
struct Written {
    /// `None` when no response went out (the client left while the app ran).
    status: Option<StatusCode>,
    body_bytes: u64,
    keep_alive: bool,
    failure: Option<ConnectionError>,
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
        let body_fd = socket.body_fd();
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
            let expected = head.expects_continue.then(Arc::<ContinueState>::default);
            let (body, pump) = take_body(&head, &mut buf, body_fd, expected.as_ref());
            let continue_state = expected.as_deref().unwrap_or(&NOT_EXPECTED);
            let reply = self.handler.call(head.parts, body, &info);
            let respond = self.respond(&mut writer, reply, &facts, continue_state, &mut batch);
            let (written, pumped) = match pump {
                None => (respond.await, Pumped::Complete),
                Some(pump) => {
                    let pumping = pump.run(&mut reader, &mut buf, continue_state);
                    respond_while_pumping(respond, pumping).await
                }
            };
            if let (Some((log, record)), Some(status)) = (access, written.status) {
                log.write(&record, status.as_u16(), written.body_bytes);
            }
            if let Some(failure) = written.failure {
                return Err(failure);
            }
            if !written.keep_alive || matches!(pumped, Pumped::Abandoned) {
                let unread = matches!(pumped, Pumped::Abandoned);
                close(&mut reader, &mut writer, unread).await;
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
                    status: None,
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
                    continue_state.set(CONTINUE_SENT);
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
        let status = Some(response.status);
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
            continue_state.set(CONTINUE_SENT);
        }
        Pin::new(&mut reply).poll(cx).map(Ok)
    })
    .await
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
    if batch.write_to(writer).await.is_ok() {
        close(reader, writer, true).await;
    }
}

/// Ends the connection with a FIN. With `unread` (the client may still be sending), what it
/// sends is read and discarded for a moment first: closing a socket with unread data resets
/// the connection, and the reset can destroy the response before the client has read it.
async fn close<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut R,
    writer: &mut W,
    unread: bool,
) {
    // PERF: without `unread`, dropping the socket sends the FIN; no shutdown() needed.
    if !unread || writer.shutdown().await.is_err() {
        return;
    }
    let mut discard = vec![0u8; HEAD_READ_BYTES];
    let _ = tokio::time::timeout(LINGER, async {
        let mut total = 0;
        while let Ok(n @ 1..) = reader.read(&mut discard).await {
            total += n;
            if total > MAX_LINGER_BYTES {
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
