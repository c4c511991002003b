//! The hyper service for one connection: calls the handler, stamps `Server`, and hands the
//! access log what it needs. Also the hyper connection settings, in one place.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, REFERER, SERVER, USER_AGENT};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use tokio::sync::Notify;

use super::idle::{ConnectionActivity, RequestInProgress};
use super::ResponseBody;
use crate::handler::{ConnectionInfo, Handler};
use crate::observe::{AccessLog, AccessRecord};

/// Largest request head (request line plus headers) accepted; beyond it hyper answers 431.
/// 64 KiB is well above any browser's and far below what would let a client pin memory.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

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

impl ConnectionOptions {
    pub fn http1_builder(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .keep_alive(self.keep_alive)
            // The keep-alive timeout is enforced by the connection's idle watch (idle.rs).
            .header_read_timeout(None::<Duration>)
            .max_header_size(MAX_REQUEST_HEAD_BYTES)
            // Clients and WSGI tests expect `Content-Type`, not `content-type`.
            .title_case_headers(true);
        // PERF: no pipeline_flush: it forces hyper to copy every body into its own buffer
        // instead of handing it to writev (benches/e2e body64k: 24k -> see benches/README.md).
        builder
    }
}

/// Requests of one server between their arrival and the end of their response body.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    decreased: Notify,
}

impl InFlight {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.clone())
    }

    /// Resolves once fewer than `limit` requests are in flight.
    pub async fn wait_below(&self, limit: usize) {
        loop {
            // Created before the check, so a decrease in between is not missed.
            let decreased = self.decreased.notified();
            if self.count() < limit {
                return;
            }
            decreased.await;
        }
    }
}

/// Counts one request as in flight until dropped (with its response body).
struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.decreased.notify_waiters();
    }
}

/// What a request holds until its response body is done: its place in the connection's
/// activity and, where counted, in the server's in-flight requests.
pub struct RequestGuards {
    _in_progress: RequestInProgress,
    _in_flight: Option<InFlightGuard>,
}

pub struct HttpService<H> {
    handler: H,
    connection: ConnectionInfo,
    activity: Arc<ConnectionActivity>,
    access_log: Option<Arc<AccessLog>>,
    /// Counted only when accepting depends on it (`max_in_flight > 0`).
    in_flight: Option<Arc<InFlight>>,
}

impl<H: Handler> HttpService<H> {
    pub fn new(
        handler: H,
        connection: ConnectionInfo,
        activity: Arc<ConnectionActivity>,
        options: &ConnectionOptions,
        in_flight: Option<Arc<InFlight>>,
    ) -> Self {
        HttpService {
            handler,
            connection,
            activity,
            access_log: options.access_log.clone(),
            in_flight,
        }
    }
}

fn access_record(request: &Request<Incoming>, connection: &ConnectionInfo) -> AccessRecord {
    let header = |name| {
        request
            .headers()
            .get(name)
            .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    AccessRecord {
        remote: connection.peer,
        request_line: format!(
            "{} {} {:?}",
            request.method(),
            request.uri(),
            request.version()
        ),
        referer: header(REFERER),
        user_agent: header(USER_AGENT),
    }
}

impl<H: Handler> hyper::service::Service<Request<Incoming>> for HttpService<H> {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ServiceFuture<H::Future>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let access = self
            .access_log
            .as_ref()
            .map(|log| (log.clone(), access_record(&request, &self.connection)));
        let guards = RequestGuards {
            _in_progress: self.activity.request_started(),
            _in_flight: self.in_flight.as_ref().map(InFlight::enter),
        };
        ServiceFuture {
            inner: self.handler.call(request, &self.connection),
            access,
            guards: Some(guards),
        }
    }
}

pub struct ServiceFuture<F> {
    inner: F,
    access: Option<(Arc<AccessLog>, AccessRecord)>,
    guards: Option<RequestGuards>,
}

impl<F> Future for ServiceFuture<F>
where
    F: Future<Output = Response<ResponseBody>> + Unpin,
{
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(response) => response,
            Poll::Pending => return Poll::Pending,
        };
        response
            .headers_mut()
            .entry(SERVER)
            .or_insert(HeaderValue::from_static("ferrogate"));
        if let Some((log, record)) = self.access.take() {
            let status = response.status().as_u16();
            response.body_mut().with_access_log(log, record, status);
        }
        if let Some(guards) = self.guards.take() {
            response.body_mut().hold_until_done(guards);
        }
        Poll::Ready(Ok(response))
    }
}
