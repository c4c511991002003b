//! The accept loop and the graceful drain: stop accepting (answering the clients already
//! waiting in the listen backlog), let in-flight requests finish, close idle keep-alive
//! connections at once, give up after the grace period.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;

use super::outcome;
use super::room::OpenConnections;
use super::tls::{self, Handshake, ServerTls};
use super::Listener;
use crate::config::Protocol;
use crate::handler::{ConnectionInfo, Handler, Scheme};
use crate::http::{
    refuse_connection, ConnectionActivity, ConnectionError, ConnectionOptions, HttpServer,
    RequestError,
};
use crate::observe::metrics::ConnectionRefusal;

/// Pause after an accept error such as EMFILE, so a full fd table does not spin the loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A listening socket, whether its connections speak TLS, and what they speak inside.
pub struct Endpoint {
    pub listener: Listener,
    /// `Some` on an https listener (TCP only).
    pub tls: Option<ServerTls>,
    /// HTTP or uwsgi packets; a TLS listener always speaks HTTP (config refuses uwsgi there).
    pub protocol: Protocol,
}

/// A listener on the runtime, with what its connections speak.
struct AsyncListener {
    socket: AsyncSocket,
    protocol: Protocol,
}

enum AsyncSocket {
    Tcp {
        listener: tokio::net::TcpListener,
        tls: Option<ServerTls>,
        /// The address every connection is accepted on, when the listener is bound to one
        /// (not to 0.0.0.0 or ::): then no connection needs its own getsockname().
        local: Option<SocketAddr>,
        /// Whether accepted sockets come with TCP_NODELAY already set, as Linux copies it
        /// from the listener.
        nodelay_inherited: bool,
    },
    Unix(tokio::net::UnixListener),
}

impl AsyncListener {
    fn from_std(endpoint: Endpoint) -> io::Result<AsyncListener> {
        let Endpoint {
            listener,
            tls,
            protocol,
        } = endpoint;
        let socket = match listener {
            Listener::Tcp(l) => {
                // Linux copies TCP_NODELAY from the listener (set in bind_tcp) to each
                // accepted socket. PERF: one setsockopt less per connection.
                let nodelay_inherited = cfg!(target_os = "linux")
                    && socket2::SockRef::from(&l).tcp_nodelay().unwrap_or(false);
                // PERF: a listener bound to one address saves a getsockname per connection.
                let local = l.local_addr().ok().filter(|a| !a.ip().is_unspecified());
                AsyncSocket::Tcp {
                    listener: tokio::net::TcpListener::from_std(l)?,
                    tls,
                    local,
                    nodelay_inherited,
                }
            }
            Listener::Unix { listener, .. } => {
                AsyncSocket::Unix(tokio::net::UnixListener::from_std(listener)?)
            }
        };
        Ok(AsyncListener { socket, protocol })
    }
}

/// After accepting stops, how long connections get before idle ones are closed.
/// Why: a connection whose request has not been read yet counts as idle, so a client that
/// connected just before the stop (its request already sent) would get no answer. Bytes a
/// client sent with its connect are read well within this.
const NEW_CONNECTION_GRACE: Duration = Duration::from_millis(50);

/// How long a saturated worker holds off accepting before it accepts anyway (every worker
/// may be saturated; then the connection is queued here rather than in the kernel).
const SATURATED_ACCEPT_DEFERRAL: Duration = Duration::from_millis(50);

/// While a client waits for a slot at `--max-connections`, how often the accept loop looks
/// again for a connection it may close to make room.
const ROOM_LOOK_INTERVAL: Duration = Duration::from_millis(50);

/// Once the server stops, how long a connection must go without a request before it is
/// closed. Why not at once: a keep-alive client that has just sent its next request (not read
/// yet) would see its connection closed under it, and a request lost, at every graceful stop,
/// reload or worker retirement. A connection that gets a request is served; its response
/// says `Connection: close`.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// What every connection task of one server shares.
struct ConnectionContext<H> {
    server: HttpServer<H>,
    open: AtomicUsize,
    /// `--max-connections`: one permit per open connection. When none is left, the next
    /// client is accepted and waits for a slot, which closing a connection in `connections`
    /// that only waits on its client frees; clients after it queue in the listen backlog.
    slots: Arc<Semaphore>,
    max_connections: usize,
    connections: OpenConnections,
    all_closed: Notify,
    /// `true` once the server stops: idle connections close, busy ones after their response.
    stop: watch::Receiver<bool>,
}

impl<H: Handler> ConnectionContext<H> {
    fn new(
        handler: H,
        options: ConnectionOptions,
        max_connections: usize,
        stop: watch::Receiver<bool>,
    ) -> Self {
        ConnectionContext {
            server: HttpServer::new(handler, options),
            open: AtomicUsize::new(0),
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            connections: OpenConnections::default(),
            all_closed: Notify::new(),
            stop,
        }
    }

    /// While every Python thread is busy, other workers sharing the socket should take new
    /// connections: wait for a free thread, for a little while.
    async fn wait_for_capacity(&self) {
        let limit = self.server.options.max_in_flight;
        if limit == 0 || self.server.in_flight.count() < limit {
            return;
        }
        let _ = tokio::time::timeout(
            SATURATED_ACCEPT_DEFERRAL,
            self.server.in_flight.wait_below(limit),
        )
        .await;
    }

    /// A slot for a client already accepted: closes connections that wait on their own
    /// client until one frees. `None` once the server stops.
    async fn slot_for_waiting_client(&self) -> Option<OwnedSemaphorePermit> {
        loop {
            let closed = self.connections.close_one_for_room(self.max_connections);
            if let (Some(listener), Some(metrics)) = (closed, &self.server.options.metrics) {
                metrics
                    .connection_refused(ConnectionRefusal::MaxConnections, usize::from(listener));
            }
            let slot = self.slots.clone().acquire_owned();
            match tokio::time::timeout(ROOM_LOOK_INTERVAL, slot).await {
                Ok(slot) => return slot.ok(),
                Err(_) => continue,
            }
        }
    }

    async fn all_connections_closed(&self) {
        loop {
            let closed = self.all_closed.notified();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// Counts a connection as open, and holds its slot, until dropped.
struct OpenConnection<H> {
    context: Arc<ConnectionContext<H>>,
    _slot: Option<OwnedSemaphorePermit>,
    /// Its key in `context.connections`.
    key: u64,
}

impl<H> Drop for OpenConnection<H> {
    fn drop(&mut self) {
        self.context.connections.forget(self.key);
        if let Some(metrics) = &self.context.server.options.metrics {
            metrics.connection_closed();
        }
        if self.context.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.context.all_closed.notify_waiters();
        }
    }
}

/// Serves `listeners` until `shutdown` resolves to the grace period in-flight requests get,
/// with at most `max_connections` open at once. `shutdown` is first polled once every accept
/// loop runs, so it may tell others that this server accepts (the worker's heartbeat does).
pub async fn serve<H, S>(
    listeners: Vec<Endpoint>,
    handler: H,
    options: ConnectionOptions,
    max_connections: usize,
    shutdown: S,
) -> io::Result<()>
where
    H: Handler,
    S: Future<Output = Duration>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let context = Arc::new(ConnectionContext::new(
        handler,
        options,
        max_connections,
        stop_rx.clone(),
    ));
    let (stop_accepting, accepting) = watch::channel(false);
    let mut listening = Vec::new();
    let mut loops = Vec::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        let listener = Arc::new(AsyncListener::from_std(listener)?);
        let accepting = accepting.clone();
        let index = u8::try_from(index).unwrap_or(u8::MAX);
        loops.push(tokio::spawn(accept_loop(
            (listener.clone(), index),
            context.clone(),
            accepting,
        )));
        listening.push(listener);
    }
    let grace = shutdown.await;
    let _ = stop_accepting.send(true);
    for accept in loops {
        let _ = accept.await;
    }
    // Clients already waiting in the backlog get their answer rather than a reset when the
    // last copy of the socket closes (gunicorn's issue #3397): take them all, then close.
    for listener in listening {
        accept_waiting(&listener, &context);
    }
    tokio::time::sleep(NEW_CONNECTION_GRACE.min(grace)).await;
    context.server.stopping.store(true, Ordering::Relaxed);
    context.server.stop_signal.notify_waiters();
    let _ = stop_tx.send(true);
    let open = context.open.load(Ordering::Acquire);
    if open > 0 {
        log::info!(
            "Waiting up to {:.1}s for {open} open connection(s) to finish",
            grace.as_secs_f64()
        );
    }
    if tokio::time::timeout(grace, context.all_connections_closed())
        .await
        .is_err()
    {
        log::warn!(
            "Graceful timeout ({:.1}s) reached; closing the remaining connections",
            grace.as_secs_f64()
        );
    }
    Ok(())
}

/// Accepts one connection on `listener`, serves it to the end, and returns.
pub async fn serve_one_connection<H: Handler>(
    listener: Endpoint,
    handler: H,
    options: ConnectionOptions,
) -> io::Result<()> {
    let (_stop_tx, stop_rx) = watch::channel(false);
    let context = Arc::new(ConnectionContext::new(handler, options, 1, stop_rx));
    let listener = AsyncListener::from_std(listener)?;
    let served = spawn_connection(&context, None, accept(&listener).await?);
    let _ = served.await;
    Ok(())
}

async fn accept_loop<H: Handler>(
    (listener, index): (Arc<AsyncListener>, u8),
    context: Arc<ConnectionContext<H>>,
    mut accepting: watch::Receiver<bool>,
) {
    let mut stopped = std::pin::pin!(async move {
        let _ = accepting.wait_for(|stop| *stop).await;
    });
    loop {
        let slot = match context.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                context.wait_for_capacity().await;
                Some(slot)
            }
            Err(TryAcquireError::NoPermits) => None,
            Err(TryAcquireError::Closed) => return,
        };
        let accepted = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut stopped => return,
        };
        let accepted = match accepted {
            Ok(accepted) => accepted.on_listener(index),
            Err(error) => {
                log::error!("accept() failed: {error}");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        // Full: this client waits for a slot (accepted, so that there is a client to make
        // room for); the ones behind it wait in the backlog. Once stopping, it is served
        // without one, like the rest of the backlog.
        let (slot, stopping) = match slot {
            Some(slot) => (Some(slot), false),
            None => tokio::select! {
                slot = context.slot_for_waiting_client() => (slot, false),
                () = &mut stopped => (None, true),
            },
        };
        spawn_accepted(&context, slot, accepted);
        if stopping {
            return;
        }
        // Let the new connection read its request (and count as in flight) before the next
        // accept, so a burst of connections is not all taken by one worker.
        tokio::task::yield_now().await;
    }
}

fn spawn_accepted<H: Handler>(
    context: &Arc<ConnectionContext<H>>,
    slot: Option<OwnedSemaphorePermit>,
    accepted: Accepted,
) {
    drop(spawn_connection(context, slot, accepted));
}

/// Takes every connection already waiting on `listener`, without waiting for more (or for
/// a slot: the server is stopping, and these few must not be dropped).
fn accept_waiting<H: Handler>(listener: &AsyncListener, context: &Arc<ConnectionContext<H>>) {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    loop {
        let mut next = std::pin::pin!(accept(listener));
        match next.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Ok(accepted)) => {
                let slot = context.slots.clone().try_acquire_owned().ok();
                spawn_accepted(context, slot, accepted);
            }
            std::task::Poll::Ready(Err(_)) | std::task::Poll::Pending => return,
        }
    }
}

struct Accepted {
    stream: Stream,
    info: ConnectionInfo,
    /// What the listener it came on speaks.
    protocol: Protocol,
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
    /// Its handshake runs in the connection's task.
    Tls(tokio::net::TcpStream, ServerTls),
}

impl Accepted {
    fn on_listener(mut self, index: u8) -> Accepted {
        self.info.listener = index;
        self
    }
}

async fn accept(listener: &AsyncListener) -> io::Result<Accepted> {
    let protocol = listener.protocol;
    match &listener.socket {
        AsyncSocket::Tcp {
            listener,
            tls,
            local,
            nodelay_inherited,
        } => {
            let (stream, peer) = listener.accept().await?;
            // Responses are written whole; Nagle would only delay the last segment.
            if !*nodelay_inherited {
                let _ = stream.set_nodelay(true);
            }
            let local = (*local).or_else(|| stream.local_addr().ok());
            let info = ConnectionInfo::direct(Some(peer), local);
            let stream = match tls {
                Some(tls) => Stream::Tls(stream, tls.clone()),
                None => Stream::Tcp(stream),
            };
            Ok(Accepted {
                stream,
                info,
                protocol,
            })
        }
        AsyncSocket::Unix(l) => {
            let (stream, _) = l.accept().await?;
            Ok(Accepted {
                stream: Stream::Unix(stream),
                info: ConnectionInfo::direct(None, None),
                protocol,
            })
        }
    }
}

/// Runs the connection as a task and its watch as another, which aborts the first once the
/// connection has been idle for the keep-alive timeout, or is idle while the server stops.
/// Why two tasks: a watch polled inside the connection's task is polled at every wake-up of
/// it, several per request (1k instructions per hello request); its own task wakes twice per
/// timeout.
fn spawn_connection<H: Handler>(
    context: &Arc<ConnectionContext<H>>,
    slot: Option<OwnedSemaphorePermit>,
    accepted: Accepted,
) -> JoinHandle<()> {
    context.open.fetch_add(1, Ordering::AcqRel);
    if let Some(metrics) = &context.server.options.metrics {
        metrics.connection_opened();
    }
    let activity = Arc::new(ConnectionActivity::default());
    let Accepted {
        stream,
        mut info,
        protocol,
    } = accepted;
    let peer = info.clone();
    let serving = {
        let context = context.clone();
        let activity = activity.clone();
        tokio::spawn(async move {
            let server = &context.server;
            let served = match stream {
                Stream::Tcp(socket) => server.serve(socket, &mut info, activity, protocol).await,
                Stream::Unix(socket) => server.serve(socket, &mut info, activity, protocol).await,
                // Boxed: the handshake's state (over 1 KiB) would otherwise enlarge every
                // connection's task, plain ones too.
                Stream::Tls(socket, tls) => {
                    Box::pin(serve_tls(server, socket, &tls, &mut info, activity)).await
                }
            };
            if let Some(metrics) = &server.options.metrics {
                outcome::count_end(metrics, &served, info.listener);
            }
            outcome::log_end(served, &info);
        })
    };
    let key = context
        .connections
        .add(activity.clone(), serving.abort_handle(), peer.clone());
    let open = OpenConnection {
        context: context.clone(),
        _slot: slot,
        key,
    };
    let timeout = context.server.options.limits.idle_timeout();
    let mut stop = context.stop.clone();
    let info = peer;
    tokio::spawn(async move {
        let _open = open;
        let abort = serving.abort_handle();
        tokio::select! {
            _ = serving => {}
            () = activity.idle_for(timeout) => {
                abort.abort();
                log::debug!("Closed an idle or slow connection from {}", outcome::peer_name(&info));
            }
            () = idle_after_stop(&mut stop, &activity) => abort.abort(),
        }
    })
}

/// The TLS handshake, then HTTP/1 over it. The handshake counts as a head arriving: the
/// idle watch leaves it to `--header-timeout`, its own deadline.
async fn serve_tls<H: Handler>(
    server: &HttpServer<H>,
    socket: tokio::net::TcpStream,
    tls: &ServerTls,
    info: &mut ConnectionInfo,
    activity: Arc<ConnectionActivity>,
) -> Result<(), ConnectionError> {
    let shaking = activity.head_started();
    let handshake = tls::handshake(socket, tls, server.options.limits.header_timeout).await;
    drop(shaking);
    if let Some(metrics) = &server.options.metrics {
        outcome::count_handshake(metrics, &handshake, info.listener);
    }
    match handshake {
        Ok(Handshake::Done(socket, facts)) => {
            info.scheme = Scheme::Https;
            info.tls = Some(facts);
            if crate::http::h2::speaks_h2(socket.alpn(), server.options.http2.versions) {
                server.serve_http2(socket, info, activity).await
            } else {
                server.serve(socket, info, activity, Protocol::Http).await
            }
        }
        Ok(Handshake::PlainHttp(socket)) => {
            Err(refuse_connection(socket, RequestError::PlainHttpOnTlsPort).await)
        }
        Err(error) => {
            outcome::log_handshake_failure(&error, info);
            Ok(())
        }
    }
}

/// Resolves once the server is stopping and the connection has been without a request for
/// `DRAIN_QUIET`.
async fn idle_after_stop(stop: &mut watch::Receiver<bool>, activity: &ConnectionActivity) {
    if stop.wait_for(|stopping| *stopping).await.is_err() {
        return std::future::pending().await;
    }
    activity.idle_for(DRAIN_QUIET).await;
}
