//! One HTTP/1 connection, start to end: read a head, hand the request to the handler, feed it
//! the body as it asks, write the response, and go round again while keep-alive allows.
//!
//! Why our own and not hyper's: hyper's dispatcher, header maps and title-casing writer were a
//! third of a hello request's instructions (benches/README.md, "own HTTP/1 layer").

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::BytesMut;
use http::{Method, StatusCode, Version};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;

use super::body_pump::{take_body, BodySource, Pumped};
use super::continue_state::{Continue, ContinueState, NOT_EXPECTED};
use super::encode::{encode_head, ResponseFraming};
use super::ending::{close, refuse};
use super::head_read::{read_head, read_preface};
use super::idle::ConnectionActivity;
use super::io::{Socket, TimedWriter};
use super::observed::note_response;
use super::parse::BodyFraming;
use super::send_file::SendFile;
use super::write::{write_body, WriteBatch};
use crate::config::{HttpVersions, IpRanges, Protocol};
use crate::handler::{ConnectionInfo, Handler, Scheme};
use crate::http::error::RequestError;
use crate::http::h2::{is_preface_start, Duplex, Http2Options};
use crate::http::limits::{Limits, HEAD_READ_BYTES};
use crate::http::proxy_protocol::{read_preamble, PreambleError};
use crate::http::status::Failure;
use crate::http::uwsgi::GatewayFacts;
use crate::http::{forwarded, BodyError, InFlight, Response};
use crate::observe::metrics::{ResponseFacts, WorkerMetrics};
use crate::observe::{AccessLog, ResponseNote};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Per-connection HTTP settings, shared by every connection of a server.
#[derive(Clone)]
pub struct ConnectionOptions {
    pub limits: Limits,
    pub access_log: Option<Arc<AccessLog>>,
    /// Requests this server runs at once before it defers accepting new connections, so that
    /// other workers (sharing the listening socket) take them. 0: never defer.
    pub max_in_flight: usize,
    /// `--forwarded-allow-ips`: whose proxy headers and PROXY preamble are believed.
    pub trusted_proxies: IpRanges,
    /// `--proxy-protocol`: every connection starts with a PROXY preamble.
    pub proxy_protocol: bool,
    /// `--capitalize-response-headers`: names go out as `Foo-Bar` (eventlet.wsgi's habit).
    pub capitalize_header_names: bool,
    /// This worker's counters, with `--metrics-bind`.
    pub metrics: Option<WorkerMetrics>,
    /// `--http` and the `--http2-*` settings.
    pub http2: Http2Options,
}

/// Why a connection ended early; `accept` turns it into one log line.
#[derive(Debug)]
pub enum ConnectionError {
    Io(io::Error),
    /// The request was refused with the error's status.
    Refused(RequestError),
    /// The PROXY protocol preamble was missing, wrong, or from an untrusted peer.
    Preamble(PreambleError),
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

/// What every connection of one server shares.
pub struct HttpServer<H> {
    pub handler: H,
    pub options: ConnectionOptions,
    pub in_flight: Arc<InFlight>,
    /// Set when the server stops: responses from then on close their connection.
    pub stopping: AtomicBool,
    /// Notified when `stopping` is set, for HTTP/2 connections to send GOAWAY at once.
    pub stop_signal: Notify,
}

/// What the response writer needs to know of its request.
struct RequestFacts {
    is_head: bool,
    version: Version,
    keep_alive: bool,
    expects_continue: bool,
}

/// How writing one response went.
enum Written {
    /// No response went out (the client left while the app ran).
    NotSent(ConnectionError),
    /// The whole response went out; `keep_alive`: the connection may carry another request.
    Sent {
        status: StatusCode,
        body_bytes: u64,
        keep_alive: bool,
        /// What the access log notes of the response; `None` without one.
        note: Option<Box<ResponseNote>>,
    },
    /// The head went out, the body broke off.
    Broken {
        status: StatusCode,
        body_bytes: u64,
        error: ConnectionError,
        note: Option<Box<ResponseNote>>,
    },
}

impl Written {
    /// The status, body bytes and note of a response that went out, whole or not.
    fn outcome(&self) -> Option<(StatusCode, u64, Option<&ResponseNote>)> {
        match self {
            Written::Sent {
                status,
                body_bytes,
                note,
                ..
            }
            | Written::Broken {
                status,
                body_bytes,
                note,
                ..
            } => Some((*status, *body_bytes, note.as_deref())),
            Written::NotSent(_) => None,
        }
    }

    fn may_keep_alive(&self) -> bool {
        matches!(
            self,
            Written::Sent {
                keep_alive: true,
                ..
            }
        )
    }
}

/// What the connection does after a response: the one place keep-alive is decided.
enum Next {
    KeepAlive,
    /// `unread`: the client may still be sending (an abandoned body).
    Close {
        unread: bool,
    },
    Abort(ConnectionError),
}

fn next_step(written: Written, pumped: Pumped) -> Next {
    match (written, pumped) {
        // Said once, in the log line the connection's end gets.
        (_, Pumped::TimedOut(timeout)) => Next::Abort(ConnectionError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client sent no body data for {}s (--socket-timeout)",
                timeout.as_secs_f64()
            ),
        ))),
        (Written::NotSent(error) | Written::Broken { error, .. }, _) => Next::Abort(error),
        (_, Pumped::Abandoned) => Next::Close { unread: true },
        (Written::Sent { keep_alive, .. }, Pumped::Complete) => match keep_alive {
            true => Next::KeepAlive,
            false => Next::Close { unread: false },
        },
    }
}

impl<H: Handler> HttpServer<H> {
    pub fn new(handler: H, options: ConnectionOptions) -> HttpServer<H> {
        HttpServer {
            handler,
            options,
            in_flight: Arc::default(),
            stopping: AtomicBool::new(false),
            stop_signal: Notify::new(),
        }
    }

    /// Serves `socket` until the client or keep-alive ends it, or a request is refused.
    /// `info` is updated by a PROXY preamble, so the caller's log lines name the real client.
    /// `protocol`: what the listener speaks, HTTP/1 heads or uwsgi packets (http/uwsgi.rs)
    /// that become the same heads.
    pub async fn serve<S: Socket>(
        &self,
        mut socket: S,
        info: &mut ConnectionInfo,
        activity: Arc<ConnectionActivity>,
        protocol: Protocol,
    ) -> Result<(), ConnectionError> {
        let options = &self.options;
        let limits = &options.limits;
        let body_fd = socket.body_fd();
        let (mut reader, writer) = socket.halves();
        let mut writer = TimedWriter::new(writer, limits.socket_timeout);
        let mut buf = BytesMut::with_capacity(HEAD_READ_BYTES);
        let mut batch = WriteBatch::default();
        if options.proxy_protocol {
            if !options.trusted_proxies.contains_peer(info.peer) {
                return Err(ConnectionError::Preamble(PreambleError::Untrusted));
            }
            let proxied = read_preamble(&mut reader, &mut buf, limits.header_timeout)
                .await
                .map_err(ConnectionError::Preamble)?;
            if let Some((client, server)) = proxied {
                *info = ConnectionInfo::direct(Some(client), Some(server));
            }
        }
        let trusted = options.trusted_proxies.contains_peer(info.peer);
        info.from_trusted_proxy = trusted;
        let h2c = match (protocol, options.http2.versions) {
            (Protocol::Uwsgi, _) | (_, HttpVersions::One) => false,
            (Protocol::Http, HttpVersions::Two) => {
                let io = Duplex::new(buf.split().freeze(), reader, writer);
                return self.serve_h2_io(io, info, activity).await;
            }
            (Protocol::Http, HttpVersions::Auto) => true,
        };
        let mut next_head = None;
        let mut first = true;
        loop {
            let read = read_head(
                &mut reader,
                &mut buf,
                (limits, protocol),
                &activity,
                &mut next_head,
            );
            match read.await {
                Ok(()) => {}
                // h2c with prior knowledge (RFC 9113 §3.3): the preface is no HTTP/1 head.
                // PERF: looked for only once the HTTP/1 parser refuses the first head, so an
                // HTTP/1 request pays nothing for it.
                Err(ConnectionError::Refused(_)) if first && h2c && is_preface_start(&buf) => {
                    read_preface(&mut reader, &mut buf, limits).await?;
                    let io = Duplex::new(buf.split().freeze(), reader, writer);
                    return self.serve_h2_io(io, info, activity).await;
                }
                Err(ConnectionError::Refused(error)) => {
                    return Err(refuse(&mut reader, &mut writer, &mut batch, error).await)
                }
                Err(error) => return Err(error),
            }
            first = false;
            let Some(mut head) = next_head.take() else {
                return Ok(());
            };
            let _in_progress = activity.request_started();
            let _in_flight = (options.max_in_flight > 0).then(|| self.in_flight.enter());
            let measured = options.metrics.as_ref().map(|metrics| {
                let started = std::time::Instant::now();
                (
                    metrics,
                    metrics.request(),
                    head.parts.method.clone(),
                    started,
                )
            });
            let mut request_info = info.clone();
            if let Some(gateway) = head.gateway.take() {
                // Believed as proxy headers are: only from a trusted web server.
                if trusted {
                    apply_gateway(&gateway, &mut request_info);
                }
            }
            if trusted && head.has_proxy_headers {
                let resolved = forwarded::resolve(
                    &mut head.parts,
                    &mut request_info,
                    &options.trusted_proxies,
                );
                if let Err(error) = resolved {
                    return Err(refuse(&mut reader, &mut writer, &mut batch, error).await);
                }
            }
            let access = options.access_log.as_ref().map(|log| {
                let record = log.capture(&head.parts, request_info.peer, request_info.local);
                (log, record)
            });
            let facts = RequestFacts {
                is_head: head.parts.method == Method::HEAD,
                // uwsgi: a body of unknown length ends with the connection, as uWSGI's do (a
                // web server reading uwsgi does not decode chunked framing).
                version: match protocol {
                    Protocol::Http => head.parts.version,
                    Protocol::Uwsgi => Version::HTTP_10,
                },
                keep_alive: head.keep_alive,
                expects_continue: head.expects_continue,
            };
            let expected = head.expects_continue.then(Arc::<ContinueState>::default);
            let source = BodySource {
                socket: body_fd,
                continue_state: expected.as_ref(),
                limits,
                metrics: options.metrics.as_ref(),
            };
            // PERF: a request without a body (most) skips the call and its result's copy
            // (benches/callgrind hello).
            let taken = match head.framing {
                BodyFraming::Empty => Ok((None, None)),
                _ => take_body(&head, &mut buf, source),
            };
            let (body, pump) = match taken {
                Ok(taken) => taken,
                Err(error) => {
                    let refusal = error
                        .as_refusal()
                        .unwrap_or_else(|| RequestError::malformed(error.to_string()));
                    return Err(refuse(&mut reader, &mut writer, &mut batch, refusal).await);
                }
            };
            let continue_state = expected.as_deref().unwrap_or(&NOT_EXPECTED);
            let refusal = Mutex::new(None);
            let reply = self.handler.call(head.parts, body, &request_info);
            // PERF: the response future is awaited where it is made when there is no body to
            // pump (and so no refusal to look for): made before the match, its ~800 bytes were
            // moved into the await (benches/callgrind hello).
            let (written, pumped) = match pump {
                None => {
                    let respond =
                        self.respond(&mut writer, reply, &facts, continue_state, &mut batch, None);
                    (respond.await, Pumped::Complete)
                }
                Some(pump) => {
                    let respond = self.respond(
                        &mut writer,
                        reply,
                        &facts,
                        continue_state,
                        &mut batch,
                        Some(&refusal),
                    );
                    let pumping = pump.run(&mut reader, &mut buf, continue_state, &refusal);
                    respond_while_pumping(respond, pumping).await
                }
            };
            if let (Some((metrics, _, method, started)), Some((status, body_bytes, note))) =
                (&measured, written.outcome())
            {
                metrics.response(&ResponseFacts {
                    method: method.as_str(),
                    status: status.as_u16(),
                    listener: usize::from(request_info.listener),
                    body_bytes,
                    duration: started.elapsed(),
                    queue_time: note.and_then(|note| note.queue_time),
                });
            }
            if let (Some((log, record)), Some((status, body_bytes, note))) =
                (access, written.outcome())
            {
                let note = note.cloned().unwrap_or_default();
                log.write(&record, status.as_u16(), body_bytes, &note);
            }
            match next_step(written, pumped) {
                Next::KeepAlive => {}
                Next::Close { unread } => {
                    close(&mut reader, &mut writer, unread, S::ENCRYPTED).await;
                    return Ok(());
                }
                Next::Abort(error) => return Err(error),
            }
        }
    }

    async fn respond<W: AsyncWrite + SendFile + Unpin>(
        &self,
        writer: &mut W,
        reply: H::Future,
        request: &RequestFacts,
        continue_state: &ContinueState,
        batch: &mut WriteBatch,
        refusal: Option<&Mutex<Option<RequestError>>>,
    ) -> Written {
        let mut response = match wait_for_reply(writer, reply, continue_state).await {
            Ok(response) => response,
            Err(error) => return Written::NotSent(error.into()),
        };
        let mut keep_alive = self.options.limits.keep_alive.is_some()
            && request.keep_alive
            && !self.stopping.load(Ordering::Relaxed);
        // The body broke a rule or a limit before the app answered: the client is told that,
        // not whatever the app made of the error its read raised.
        let refused = refusal.and_then(|r| r.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(refused) = refused {
            response = Failure::Refused(refused).into_response();
            keep_alive = false;
        }
        if request.expects_continue {
            match continue_state.on_response() {
                // The body will not come; the connection cannot carry another request.
                Continue::Idle => keep_alive = false,
                // Asked for after the reply came: the interim response goes first.
                Continue::Wanted => {
                    batch.text.extend_from_slice(CONTINUE);
                    continue_state.mark_sent();
                }
                Continue::Sent | Continue::Refused => {}
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
        if self.options.capitalize_header_names {
            response.headers.capitalize_names();
        }
        encode_head(&mut batch.text, &response, framing, connection_header);
        let status = response.status;
        let options = &self.options;
        let note = (options.access_log.is_some() || options.metrics.is_some())
            .then(|| note_response(options.access_log.as_deref(), &response));
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
            Ok(body_bytes) => Written::Sent {
                status,
                body_bytes,
                keep_alive,
                note,
            },
            Err((error, body_bytes)) => Written::Broken {
                status,
                body_bytes,
                error,
                note,
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
            (Some(written), _) if !written.may_keep_alive() => Poll::Ready(()),
            (Some(_), Some(_)) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    })
    .await;
    let written = written.expect("invariant: ready only once the response is written");
    (written, pumped.unwrap_or(Pumped::Abandoned))
}

/// The client, scheme and port a trusted web server gave in a uwsgi packet.
fn apply_gateway(gateway: &GatewayFacts, info: &mut ConnectionInfo) {
    if let Some(client) = gateway.client {
        info.peer = Some(client);
    }
    if gateway.https {
        info.scheme = Scheme::Https;
    }
    if gateway.server_port.is_some() {
        info.server_port = gateway.server_port;
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
        if continue_state.get() == Continue::Wanted {
            while sent < CONTINUE.len() {
                match Pin::new(&mut *writer).poll_write(cx, &CONTINUE[sent..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => sent += n,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if let Poll::Ready(Err(error)) = Pin::new(&mut *writer).poll_flush(cx) {
                return Poll::Ready(Err(error));
            }
            continue_state.mark_sent();
        }
        Pin::new(&mut reply).poll(cx).map(Ok)
    })
    .await
}
