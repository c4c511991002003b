//! Keep-alive connections to the upstreams, driven by the task of the request that uses them.
//! A connection is hyper's `client::conn::http1` pair: the `SendRequest` a request is given
//! to and the `Connection` that does the I/O. No task of its own drives it: while a request
//! is out, its task polls the `Connection` together with the response (`Conn::send`) and then
//! with the response body (`DrivenBody`); when the body is done the pair is parked in the
//! pool again, unpolled, until the next request checks it out. A parked connection the
//! upstream closed is seen at checkout: the `Connection` is polled once there, reads the
//! end of the stream and ends. A sweep task per upstream, alive only while connections are
//! parked, closes each as it passes `idle_timeout`, so an idle pool holds no sockets the
//! upstream has given up on (CLOSE_WAIT).
//!
//! Why not hyper-util's pooled `Client`: it drives every connection from a task of its own,
//! so each request crossed tasks twice (request in, response out) and paid for a keyed pool
//! checkout and return; on proxy_hello that was about a third of the worker's instructions
//! per request (benches/README.md, issue 16).
//!
//! Knows nothing of balancing, health, headers or retries (mod.rs decides those).

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::client::conn::TrySendError;
use hyper_util::rt::TokioIo;
use tokio::time::Sleep;

use super::body::SentBody;
use super::upstream::{Connector, Stream};

type Driver = Connection<TokioIo<Stream>, SentBody>;

/// hyper's read buffer per upstream connection (its default grows to ~400 KiB): also the
/// largest response head an upstream may send, and the largest piece of a response body
/// read at once (body.rs's pump lets 4 such pieces wait for the client).
const UPSTREAM_READ_BUFFER_BYTES: usize = 64 * 1024;

/// How the pool keeps connections (the `max_idle` and `idle_timeout` keywords).
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Idle connections kept per upstream; one more is closed when it is done.
    pub max_idle: usize,
    /// An idle connection older than this is closed rather than used.
    pub idle_timeout: Duration,
}

/// The idle connections of each upstream, for the runtime that dialled them (their sockets
/// are registered with its reactor).
pub struct Pool {
    /// Per upstream, oldest first: checkout takes the newest (warmest, least likely to have
    /// been closed by the upstream's keep-alive timeout), expiry looks at the oldest.
    idle: Vec<Mutex<VecDeque<Idle>>>,
    /// Per upstream: a sweep task is waiting for its oldest idle connection to expire.
    sweeping: Vec<AtomicBool>,
    connector: Connector,
    limits: PoolLimits,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// One connection to one upstream, while a request has it.
pub struct Conn {
    send: SendRequest<SentBody>,
    /// None once the connection has ended (closed by either side, or failed). Boxed: hyper's
    /// dispatcher is several hundred bytes, and a `Conn` moves from the pool into the
    /// request's future, into its response body and back.
    // PERF: proxy_hello (benches/callgrind/count_proxy.py; benches/README.md, issue 16).
    driver: Option<Box<Driver>>,
    upstream: usize,
    /// It served a request before: a failure to even take the next one is the upstream's
    /// keep-alive timeout, not the upstream being down.
    reused: bool,
}

/// A connection that could not be had.
#[derive(Debug)]
pub enum ConnectError {
    Dial(io::Error),
    Handshake(hyper::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connect")
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Dial(error) => Some(error),
            ConnectError::Handshake(error) => Some(error),
        }
    }
}

impl Pool {
    pub fn new(upstreams: usize, connector: Connector, limits: PoolLimits) -> Arc<Pool> {
        Arc::new(Pool {
            idle: (0..upstreams).map(|_| Mutex::default()).collect(),
            sweeping: (0..upstreams).map(|_| AtomicBool::new(false)).collect(),
            connector,
            limits,
        })
    }

    /// An idle connection to `upstream` that is still open and ready for a request, or a
    /// new one.
    pub async fn checkout(&self, upstream: usize) -> Result<Conn, ConnectError> {
        while let Some(mut conn) = self.take_idle(upstream) {
            if conn.poll_is_usable(&mut quiet()) {
                return Ok(conn);
            }
        }
        self.connect(upstream).await
    }

    /// A new connection to `upstream`, ready for a request. Boxed: dialling (TLS included)
    /// is a large future that the request's own would otherwise carry, and move, for every
    /// request.
    // PERF: proxy_hello (benches/callgrind/count_proxy.py; benches/README.md, issue 16).
    pub fn connect(
        &self,
        upstream: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send + '_>> {
        Box::pin(self.dial(upstream))
    }

    async fn dial(&self, upstream: usize) -> Result<Conn, ConnectError> {
        let io = self
            .connector
            .connect(upstream)
            .await
            .map_err(ConnectError::Dial)?;
        let (send, driver) = http1::Builder::new()
            .max_buf_size(UPSTREAM_READ_BUFFER_BYTES)
            .handshake(TokioIo::new(io))
            .await
            .map_err(ConnectError::Handshake)?;
        let mut conn = Conn {
            send,
            driver: Some(Box::new(driver)),
            upstream,
            reused: false,
        };
        // The first poll of the connection makes it ask for a request.
        conn.poll_is_usable(&mut quiet());
        Ok(conn)
    }

    fn take_idle(&self, upstream: usize) -> Option<Conn> {
        let mut idle = self.idle[upstream].lock().ok()?;
        let newest = idle.pop_back()?;
        match newest.since.elapsed() < self.limits.idle_timeout {
            true => Some(newest.conn),
            // The newest is too old: so are all the others.
            false => {
                idle.clear();
                None
            }
        }
    }

    fn park(self: &Arc<Self>, mut conn: Conn) {
        conn.reused = true;
        let upstream = conn.upstream;
        {
            let Ok(mut idle) = self.idle[upstream].lock() else {
                return;
            };
            Self::expire(&mut idle, self.limits.idle_timeout);
            if idle.len() >= self.limits.max_idle {
                return; // dropped, which closes it
            }
            idle.push_back(Idle {
                conn,
                since: Instant::now(),
            });
        }
        self.sweep_later(upstream);
    }

    /// Closes the idle connections older than `timeout`; returns when the oldest left
    /// expires (None: none left, or it never does).
    fn expire(idle: &mut VecDeque<Idle>, timeout: Duration) -> Option<Instant> {
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) >= timeout)
        {
            idle.pop_front();
        }
        idle.front()?.since.checked_add(timeout)
    }

    /// Starts the upstream's sweep task unless one is waiting already. Without a runtime
    /// (none to register a timer with) the connections expire at checkout only.
    fn sweep_later(self: &Arc<Self>, upstream: usize) {
        if self.sweeping[upstream].swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping[upstream].store(false, Ordering::Release);
            return;
        };
        runtime.spawn(sweep(Arc::downgrade(self), upstream));
    }
}

/// Closes `upstream`'s idle connections as they expire, until none is left (or the pool is
/// gone); a connection parked meanwhile finds the flag still set, or starts a new task.
async fn sweep(pool: Weak<Pool>, upstream: usize) {
    loop {
        let next = {
            let Some(pool) = pool.upgrade() else {
                return;
            };
            let Ok(mut idle) = pool.idle[upstream].lock() else {
                return;
            };
            match Pool::expire(&mut idle, pool.limits.idle_timeout) {
                Some(next) => next,
                None => {
                    // Cleared under the lock: a park after it starts a task of its own.
                    pool.sweeping[upstream].store(false, Ordering::Release);
                    return;
                }
            }
        };
        tokio::time::sleep_until(next.into()).await;
    }
}

impl Conn {
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// Sends `request` and drives the connection until the response head (or the failure),
    /// waiting at most `timeout` once `sent` says the request body has all been taken. When
    /// the request was not sent at all (the connection had ended), it comes back in the
    /// error. None: the timeout passed.
    pub async fn send(
        &mut self,
        request: http::Request<SentBody>,
        sent: &AtomicBool,
        timeout: Duration,
    ) -> Option<Result<hyper::Response<Incoming>, TrySendError<http::Request<SentBody>>>> {
        let response = self.send.try_send_request(request);
        let mut response = std::pin::pin!(response);
        let mut deadline = std::pin::pin!(None::<Sleep>);
        let driver = &mut self.driver;
        poll_fn(|cx| {
            // The connection first: it writes the request and reads the answer, so the
            // response is ready in the same poll.
            poll_driver(driver, cx);
            if let Poll::Ready(answered) = response.as_mut().poll(&mut quiet()) {
                return Poll::Ready(Some(answered));
            }
            // The body was taken during this poll of the connection (if at all): the flag
            // is seen here without a wake-up.
            if deadline.is_none() && sent.load(Ordering::Relaxed) {
                deadline.set(Some(tokio::time::sleep(timeout)));
            }
            match deadline.as_mut().as_pin_mut().map(|sleep| sleep.poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(None),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// Polls the connection once; true if it is open and waiting for a request.
    fn poll_is_usable(&mut self, cx: &mut Context<'_>) -> bool {
        poll_driver(&mut self.driver, cx);
        self.driver.is_some() && matches!(self.send.poll_ready(cx), Poll::Ready(Ok(())))
    }
}

/// A context whose waker does nothing, for what only the connection completes: the response
/// and its body are filled in by the connection, which only runs when this task polls it
/// (with the task's waker, so the socket wakes the task). Polled with the task's waker, they
/// would wake it once more each time the connection fills them in while it runs, and the
/// whole request would be polled again for nothing (two such polls a request on
/// proxy_hello); so would the request handed to a connection the checkout polled.
// PERF: proxy_hello (benches/callgrind/count_proxy.py; benches/README.md, issue 16).
fn quiet() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Polls the connection; it is dropped once it has ended (polling it again would panic).
fn poll_driver(driver: &mut Option<Box<Driver>>, cx: &mut Context<'_>) {
    if let Some(running) = driver {
        if let Poll::Ready(ended) = Pin::new(&mut **running).poll(cx) {
            if let Err(error) = ended {
                log::debug!("Forward: an upstream connection ended: {error}");
            }
            *driver = None;
        }
    }
}

/// A response body that drives its connection as it is read, and parks the connection in
/// the pool when it has been read to its end (dropped before that, it closes it).
pub struct DrivenBody {
    body: Incoming,
    conn: Option<Conn>,
    pool: Arc<Pool>,
    /// The body was read to its end: the connection may take another request.
    done: bool,
}

impl DrivenBody {
    pub fn new(body: Incoming, conn: Conn, pool: Arc<Pool>) -> DrivenBody {
        DrivenBody {
            done: body.is_end_stream(),
            body,
            conn: Some(conn),
            pool,
        }
    }
}

impl Body for DrivenBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // The body first: the poll of the connection that read the response head often read
        // the body too. Only when it waits is the connection polled for more.
        let mut next = Pin::new(&mut this.body).poll_frame(&mut quiet());
        if next.is_pending() {
            if let Some(conn) = &mut this.conn {
                poll_driver(&mut conn.driver, cx);
            }
            next = Pin::new(&mut this.body).poll_frame(&mut quiet());
        }
        // hyper counts a declared length down: at zero the body is whole (and the
        // connection idle), without polling it once more for the end.
        if let Poll::Ready(None) = next {
            this.done = true;
        } else if this.body.is_end_stream() {
            this.done = true;
        }
        next
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for DrivenBody {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // The connection asks for the next request as soon as the body's end is read (in
        // the same poll); one that does not is in some other state and is not kept.
        if self.done && conn.driver.is_some() && conn.send.is_ready() {
            self.pool.park(conn);
        }
    }
}
