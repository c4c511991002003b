//! One HTTP/2 connection: the handshake (within `--header-timeout`), then each stream the
//! client opens runs as its own task, concurrently, until the client or a graceful stop
//! (GOAWAY, RFC 9113 §6.8) ends the connection.
//!
//! Hardening is the h2 crate's where it has a knob (header list size, which also bounds
//! CONTINUATION floods and HPACK bombs; resets before accept; one pending PING or SETTINGS
//! acknowledgement at a time, so a flood waits on the client reading), plus a budget of
//! streams the client may reset before their response ends (rapid reset, CVE-2023-44487).

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::Reason;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::stream::{serve_stream, StreamShared};
use super::{Duplex, Http2Options};
use crate::handler::{ConnectionInfo, Handler};
use crate::http::h1::{ConnectionActivity, ConnectionError, HttpServer, Socket, TimedWriter};
use crate::observe::LogThrottle;

/// Streams the client may reset before their response ends, per `RESET_WINDOW`, beyond the
/// concurrent-stream limit. Why: a browser cancels a few streams when the user navigates
/// away; a rapid-reset attacker cancels thousands a second, each costing a request to the app.
const RESET_ALLOWANCE: u32 = 100;
const RESET_WINDOW: Duration = Duration::from_secs(10);

/// An HTTP/2 connection without streams for this share of the keep-alive timeout is sent
/// GOAWAY, before the idle watch (which looks after 1 to 1.5 timeouts) would close it.
const IDLE_GOAWAY_FRACTION: f64 = 0.9;

/// Resets the client may make before we accept the stream (h2's own rapid-reset guard; the
/// crate's default).
const MAX_PENDING_ACCEPT_RESETS: usize = 20;

/// Streams we may reset for the client's protocol errors before GOAWAY (h2's default).
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Response bytes h2 buffers per stream ahead of the socket.
const MAX_SEND_BUFFER_BYTES: usize = 256 * 1024;

impl<H: Handler> HttpServer<H> {
    /// Serves `socket` as HTTP/2 from its first byte: the seam for a TLS connection whose
    /// ALPN chose `h2` (see `super::speaks_h2`).
    pub async fn serve_http2<S: Socket>(
        &self,
        mut socket: S,
        info: &mut ConnectionInfo,
        activity: Arc<ConnectionActivity>,
    ) -> Result<(), ConnectionError> {
        info.from_trusted_proxy = self.options.trusted_proxies.contains_peer(info.peer);
        let (reader, writer) = socket.halves();
        let writer = TimedWriter::new(writer, self.options.limits.socket_timeout);
        self.serve_h2_io(Duplex::new(Bytes::new(), reader, writer), info, activity)
            .await
    }

    /// Serves `io` as HTTP/2; `info` as the HTTP/1 driver resolved it (PROXY preamble, trust).
    pub(crate) async fn serve_h2_io<T>(
        &self,
        io: T,
        info: &ConnectionInfo,
        activity: Arc<ConnectionActivity>,
    ) -> Result<(), ConnectionError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let limits = &self.options.limits;
        let shaking = activity.head_started();
        let handshake = builder(&self.options.http2).handshake::<T, Bytes>(io);
        let mut conn = match tokio::time::timeout(limits.header_timeout, handshake).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) => return Err(h2_error(error)),
            Err(_) => {
                return Err(ConnectionError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no HTTP/2 preface and SETTINGS within --header-timeout",
                )))
            }
        };
        drop(shaking);
        let shared = Arc::new(StreamShared {
            handler: self.handler.clone(),
            options: self.options.clone(),
            info: info.clone(),
            cancelled: AtomicU32::new(0),
            in_flight: self.in_flight.clone(),
        });
        let mut streams = JoinSet::new();
        let mut stopped = pin!(self.stopped());
        let mut going_away = false;
        let mut budget = ResetBudget::new(self.options.http2.max_concurrent_streams);
        // Why our own idle timer: the connection's idle watch (server/accept.rs) would close
        // the socket without a word; a GOAWAY first tells the client no request was lost.
        let idle_after = limits.idle_timeout().mul_f64(IDLE_GOAWAY_FRACTION);
        let mut idle = pin!(tokio::time::sleep(idle_after));
        let mut busy = false;
        loop {
            let event = poll_fn(|cx| {
                if !going_away && stopped.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Stop);
                }
                while let Poll::Ready(Some(_)) = streams.poll_join_next(cx) {}
                if busy && streams.is_empty() {
                    busy = false;
                    idle.as_mut().reset(Instant::now() + idle_after);
                }
                if !going_away && !busy && idle.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Stop);
                }
                conn.poll_accept(cx).map(Event::Accepted)
            })
            .await;
            match event {
                Event::Stop => {
                    going_away = true;
                    conn.graceful_shutdown();
                }
                Event::Accepted(None) => return Ok(()),
                Event::Accepted(Some(Err(error))) => {
                    log_client_fault(&error, info);
                    return Err(h2_error(error));
                }
                Event::Accepted(Some(Ok((request, respond)))) => {
                    if budget.is_spent(shared.cancelled.swap(0, Ordering::Relaxed)) {
                        log::warn!(
                            "HTTP/2 client {} reset too many streams (rapid reset); disconnecting",
                            peer_name(info)
                        );
                        conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                        continue;
                    }
                    busy = true;
                    streams.spawn(serve_stream(
                        shared.clone(),
                        request,
                        respond,
                        activity.clone(),
                    ));
                }
            }
        }
    }

    /// Resolves once the server begins its graceful stop.
    async fn stopped(&self) {
        loop {
            let mut notified = pin!(self.stop_signal.notified());
            notified.as_mut().enable();
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
}

enum Event<T> {
    Stop,
    Accepted(Option<Result<T, h2::Error>>),
}

fn builder(options: &Http2Options) -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(options.max_concurrent_streams)
        .max_header_list_size(options.max_header_list_bytes)
        .initial_window_size(options.stream_window_bytes)
        .initial_connection_window_size(options.connection_window_bytes)
        .max_frame_size(options.max_frame_bytes)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .max_send_buffer_size(MAX_SEND_BUFFER_BYTES);
    builder
}

/// Counts streams the client reset before their response ended, per window.
struct ResetBudget {
    window_start: Instant,
    spent: u32,
    allowed: u32,
}

impl ResetBudget {
    fn new(max_concurrent_streams: u32) -> ResetBudget {
        ResetBudget {
            window_start: Instant::now(),
            spent: 0,
            allowed: max_concurrent_streams.saturating_add(RESET_ALLOWANCE),
        }
    }

    /// Adds `resets`; whether the client has now reset more than it may.
    fn is_spent(&mut self, resets: u32) -> bool {
        if self.window_start.elapsed() > RESET_WINDOW {
            self.window_start = Instant::now();
            self.spent = 0;
        }
        self.spent = self.spent.saturating_add(resets);
        self.spent > self.allowed
    }
}

/// Lines a second about HTTP/2 clients the h2 crate sent away (a header list far over the
/// limit, resets before accept, a protocol error). Why a bound: clients cause them.
static CLIENT_FAULT_LOG: LogThrottle = LogThrottle::new(20);

/// One line when the h2 crate itself ended the connection for the client's fault (GOAWAY
/// with an error code); a client that merely went away is not worth one.
fn log_client_fault(error: &h2::Error, info: &ConnectionInfo) {
    let faulty = error
        .reason()
        .is_some_and(|reason| reason != Reason::NO_ERROR);
    if !(faulty && error.is_go_away() && error.is_library()) {
        return;
    }
    if let Some(withheld) = CLIENT_FAULT_LOG.admit() {
        let note = match withheld {
            0 => String::new(),
            n => format!(" ({n} similar lines withheld)"),
        };
        log::warn!("Sent HTTP/2 client {} away: {error}{note}", peer_name(info));
    }
}

fn h2_error(error: h2::Error) -> ConnectionError {
    match error.is_io() {
        true => ConnectionError::Io(error.into_io().expect("invariant: an I/O error")),
        false => ConnectionError::Io(io::Error::other(error)),
    }
}

fn peer_name(info: &ConnectionInfo) -> String {
    info.peer
        .map(|p| p.to_string())
        .unwrap_or_else(|| "on a unix socket".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_budget_allows_the_stream_limit_plus_an_allowance() {
        let mut budget = ResetBudget::new(100);
        assert!(!budget.is_spent(200));
        assert!(budget.is_spent(1));
    }
}
