//! The accept loop and the graceful drain: stop accepting, let in-flight requests finish,
//! close idle keep-alive connections at once, give up after the grace period.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Listener;
use crate::handler::{ConnectionInfo, Handler};
use crate::http::{ConnectionActivity, ConnectionOptions, HttpService, InFlight, JoinSmallWrites};

/// Pause after an accept error such as EMFILE, so a full fd table does not spin the loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

enum AsyncListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl AsyncListener {
    fn from_std(listener: Listener) -> io::Result<AsyncListener> {
        Ok(match listener {
            Listener::Tcp(l) => AsyncListener::Tcp(tokio::net::TcpListener::from_std(l)?),
            Listener::Unix { listener, .. } => {
                AsyncListener::Unix(tokio::net::UnixListener::from_std(listener)?)
            }
        })
    }
}

/// After accepting stops, how long connections get before the graceful shutdown starts.
/// Why: hyper closes a connection whose request it has not read yet as idle, so a client that
/// connected just before the stop (its request already sent) would get no answer. Bytes a
/// client sent with its connect are read well within this.
const NEW_CONNECTION_GRACE: Duration = Duration::from_millis(50);

/// How long a saturated worker holds off accepting before it accepts anyway (every worker
/// may be saturated; then the connection is queued here rather than in the kernel).
const SATURATED_ACCEPT_DEFERRAL: Duration = Duration::from_millis(50);

/// What every connection task of one server shares.
struct ConnectionContext<H> {
    handler: H,
    options: ConnectionOptions,
    builder: http1::Builder,
    in_flight: Arc<InFlight>,
}

impl<H> ConnectionContext<H> {
    fn new(handler: H, options: ConnectionOptions) -> Self {
        ConnectionContext {
            handler,
            builder: options.http1_builder(),
            options,
            in_flight: Arc::default(),
        }
    }

    /// While every Python thread is busy, other workers sharing the socket should take new
    /// connections: wait for a free thread, for a little while.
    async fn wait_for_capacity(&self) {
        let limit = self.options.max_in_flight;
        if limit == 0 || self.in_flight.count() < limit {
            return;
        }
        let _ =
            tokio::time::timeout(SATURATED_ACCEPT_DEFERRAL, self.in_flight.wait_below(limit)).await;
    }
}

/// Serves `listeners` until `shutdown` resolves to the grace period in-flight requests get.
pub async fn serve<H, S>(
    listeners: Vec<Listener>,
    handler: H,
    options: ConnectionOptions,
    shutdown: S,
) -> io::Result<()>
where
    H: Handler,
    S: Future<Output = Duration>,
{
    let context = Arc::new(ConnectionContext::new(handler, options));
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = Vec::new();
    for listener in listeners {
        let listener = AsyncListener::from_std(listener)?;
        loops.push(tokio::spawn(accept_loop(
            listener,
            context.clone(),
            graceful.clone(),
            stop_rx.clone(),
        )));
    }
    let grace = shutdown.await;
    let _ = stop_tx.send(true);
    for accept in loops {
        let _ = accept.await;
    }
    tokio::time::sleep(NEW_CONNECTION_GRACE.min(grace)).await;
    let graceful =
        Arc::try_unwrap(graceful).expect("invariant: accept loops ended and dropped their handles");
    let open = graceful.count();
    if open > 0 {
        log::info!(
            "Waiting up to {:.1}s for {open} open connection(s) to finish",
            grace.as_secs_f64()
        );
    }
    if tokio::time::timeout(grace, graceful.shutdown())
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
    listener: Listener,
    handler: H,
    options: ConnectionOptions,
) -> io::Result<()> {
    let context = ConnectionContext::new(handler, options);
    match AsyncListener::from_std(listener)? {
        AsyncListener::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            let info = ConnectionInfo {
                peer: Some(peer),
                local: stream.local_addr().ok(),
            };
            let _ = stream.set_nodelay(true);
            serve_connection(&context, stream, info).await;
        }
        AsyncListener::Unix(l) => {
            let (stream, _) = l.accept().await?;
            let info = ConnectionInfo {
                peer: None,
                local: None,
            };
            serve_connection(&context, stream, info).await;
        }
    }
    Ok(())
}

async fn accept_loop<H: Handler>(
    listener: AsyncListener,
    context: Arc<ConnectionContext<H>>,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => return,
            accepted = async {
                context.wait_for_capacity().await;
                accept(&listener).await
            } => accepted,
        };
        match accepted {
            Ok(Accepted::Tcp(stream, info)) => spawn_connection(&context, &graceful, stream, info),
            Ok(Accepted::Unix(stream, info)) => spawn_connection(&context, &graceful, stream, info),
            Err(error) => {
                log::error!("accept() failed: {error}");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
        // Let the new connection read its request (and count as in flight) before the next
        // accept, so a burst of connections is not all taken by one worker.
        tokio::task::yield_now().await;
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream, ConnectionInfo),
    Unix(tokio::net::UnixStream, ConnectionInfo),
}

async fn accept(listener: &AsyncListener) -> io::Result<Accepted> {
    match listener {
        AsyncListener::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            // Responses are written whole; Nagle would only delay the last segment.
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().ok();
            Ok(Accepted::Tcp(
                stream,
                ConnectionInfo {
                    peer: Some(peer),
                    local,
                },
            ))
        }
        AsyncListener::Unix(l) => {
            let (stream, _) = l.accept().await?;
            Ok(Accepted::Unix(
                stream,
                ConnectionInfo {
                    peer: None,
                    local: None,
                },
            ))
        }
    }
}

fn connection<H, IO>(
    context: &ConnectionContext<H>,
    stream: IO,
    info: ConnectionInfo,
    activity: Arc<ConnectionActivity>,
) -> http1::Connection<TokioIo<JoinSmallWrites<IO>>, HttpService<H>>
where
    H: Handler,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = HttpService::new(
        context.handler.clone(),
        info,
        activity,
        &context.options,
        (context.options.max_in_flight > 0).then(|| context.in_flight.clone()),
    );
    context
        .builder
        .serve_connection(TokioIo::new(JoinSmallWrites(stream)), service)
}

/// Serves one connection until it ends or stays idle past the keep-alive timeout.
async fn serve_connection<H, IO>(context: &ConnectionContext<H>, stream: IO, info: ConnectionInfo)
where
    H: Handler,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(ConnectionActivity::default());
    let served = connection(context, stream, info, activity.clone());
    let timeout = context.options.keep_alive_timeout;
    let _ = spawn_watched(served, activity, timeout, info).await;
}

fn spawn_connection<H, IO>(
    context: &ConnectionContext<H>,
    graceful: &GracefulShutdown,
    stream: IO,
    info: ConnectionInfo,
) where
    H: Handler,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(ConnectionActivity::default());
    let served = graceful.watch(connection(context, stream, info, activity.clone()));
    spawn_watched(served, activity, context.options.keep_alive_timeout, info);
}

/// Runs the connection as a task and its idle watch as another, which aborts the first once
/// the connection has been idle for `timeout`.
/// Why two tasks: a watch polled inside the connection's task is polled at every wake-up of
/// it, several per request (1k instructions per hello request); its own task wakes twice per
/// timeout.
fn spawn_watched<F>(
    served: F,
    activity: Arc<ConnectionActivity>,
    timeout: Duration,
    info: ConnectionInfo,
) -> JoinHandle<()>
where
    F: Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    let connection = tokio::spawn(async move { finish(served.await, &info) });
    tokio::spawn(async move {
        let abort = connection.abort_handle();
        tokio::select! {
            _ = connection => {}
            () = activity.idle_for(timeout) => {
                abort.abort();
                log::debug!("Closed an idle or slow connection from {}", peer_name(&info));
            }
        }
    })
}

fn peer_name(info: &ConnectionInfo) -> String {
    info.peer
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unix socket".into())
}

/// One readable line for a connection that ended badly; hyper has already answered a
/// malformed request with a 4xx where it still could.
fn finish(result: Result<(), hyper::Error>, info: &ConnectionInfo) {
    let Err(error) = result else { return };
    let peer = peer_name(info);
    if error.is_parse() || error.is_parse_too_large() || error.is_parse_status() {
        log::warn!("Rejected a malformed request from {peer}: {error}");
    } else if error.is_user() {
        // Response-body failures (app errors, Content-Length mismatches) were logged where they happened.
        log::debug!("Aborted the connection from {peer}: {error}");
    } else {
        log::debug!("Connection from {peer} ended: {error}");
    }
}
