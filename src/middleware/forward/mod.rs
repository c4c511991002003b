//! Forwarding: a layer that answers a request by sending it to one of a pool of upstream
//! HTTP servers (a reverse proxy with load balancing). Owns the upstream list, the choice of
//! upstream, retries, timeouts and the failure answers (502, 504 through `Refusal`). Parts:
//! - `upstream`: `http[s]://host:port[/base]` / `unix:/path` and the connector that dials them;
//!   `tls`: the certificate checks for https upstreams; `pool`: the keep-alive connections,
//!   driven by the requests that use them.
//! - `balance`: round robin, least connections, hash (sticky), weighted.
//! - `health`: passive and active health; `probe`: the active checks; `health_table`: their
//!   state and per-upstream counts, shared by the host's workers; `metrics`: the master
//!   renders those for /metrics.
//! - `headers`: hop-by-hop removal, `X-Forwarded-*`, `Forwarded`, `Via`.
//! - `body`: request and response bodies streamed with bounded buffers.
//! - `outside`: the runtime the WSGI object (any server, a Python thread) drives it on.
//!
//! The HTTP client is hyper's (`client::conn::http1`), pooled by `pool` (keep-alive, an idle
//! limit and timeout); our own HTTP/1 server layer is not used for the upstream side.
//! Knows nothing of Python or of how the request reached us.

mod balance;
mod body;
mod headers;
mod health;
mod health_table;
mod metrics;
mod outside;
mod pool;
mod probe;
mod tls;
mod upstream;

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::HOST;
use http::{HeaderMap, Method, Request};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use balance::{HashKey, Strategy};
pub use body::OutgoingBody;
use body::{ResponseReading, SentBody};
pub use health::HealthOptions;
pub use health_table::set_worker_slot;
pub use metrics::render_upstreams;
pub use outside::send_outside;
pub use tls::UpstreamTls;
pub use upstream::Upstream;

use super::rate_limit::TableName;
use super::Refusal;
use crate::http::Response;
use crate::observe::LogThrottle;
use balance::Balancer;
use headers::{ClientFacts, Rewrite};
use health::Health;
use pool::{ConnectError, DrivenBody, Pool, PoolLimits};
use upstream::Connector;

/// The default of `buffered_response_bytes`: a response body declared up to this long is
/// read whole before the answer starts (body.rs says why). 16 KiB holds most API answers and
/// small pages; beyond, a body goes through the stream channel as it comes.
pub const DEFAULT_BUFFERED_RESPONSE_BYTES: u64 = 16 * 1024;

/// The most `buffered_response_bytes` may be: a body read whole costs its length in memory
/// per response in flight, so it is held to 1 MiB, four times what a streamed one may hold
/// waiting for its client (body.rs).
pub const MAX_BUFFERED_RESPONSE_BYTES: u64 = 1024 * 1024;

/// How a `Forward` behaves; every field is a keyword of the WSGI object.
#[derive(Debug, Clone)]
pub struct ForwardOptions {
    pub strategy: Strategy,
    /// The mount prefix (SCRIPT_NAME) is dropped from the path sent upstream.
    pub strip_prefix: bool,
    /// The longest wait for an upstream's response head, and then for each body piece.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Other upstreams tried after a failure, for idempotent methods (and for any method
    /// when the connection was refused: nothing was sent).
    pub retries: u32,
    pub retry_non_idempotent: bool,
    /// Keeps the client's Host; by default the upstream's address is sent.
    pub preserve_host: bool,
    pub via: bool,
    pub health: HealthOptions,
    /// The active check's path (`/healthz`), probed every `health_interval`.
    pub health_path: Option<String>,
    pub health_interval: Duration,
    /// Idle keep-alive connections kept per upstream (per worker), and for how long.
    pub max_idle: usize,
    pub idle_timeout: Duration,
    /// Requests in progress per upstream (per worker); more wait, within `timeout`.
    pub max_connections: usize,
    /// Certificate checks for https upstreams (`verify`, `ca_certs`).
    pub tls: UpstreamTls,
    /// A response body declared this long or shorter is read whole before it is answered
    /// (at most `MAX_BUFFERED_RESPONSE_BYTES`).
    pub buffered_response_bytes: u64,
}

/// Defaults: nginx's where it has one (1 retry to the next upstream, 3 fails → out for
/// 10 s), gunicorn's 30 s request timeout.
impl Default for ForwardOptions {
    fn default() -> ForwardOptions {
        ForwardOptions {
            strategy: Strategy::RoundRobin,
            strip_prefix: false,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            retries: 1,
            retry_non_idempotent: false,
            preserve_host: false,
            via: false,
            health: HealthOptions {
                max_fails: 3,
                fail_timeout: Duration::from_secs(10),
                probed: false,
                passes: 2,
            },
            health_path: None,
            health_interval: Duration::from_secs(5),
            max_idle: 1024,
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            tls: UpstreamTls {
                verify: true,
                ca_certs: None,
            },
            buffered_response_bytes: DEFAULT_BUFFERED_RESPONSE_BYTES,
        }
    }
}

/// A request to forward, whichever way it reached us.
pub struct ForwardRequest {
    pub method: Method,
    /// The path and query as sent upstream (after the upstream's base).
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: OutgoingBody,
    /// After trusted-proxy resolution.
    pub client_ip: Option<IpAddr>,
    pub scheme: &'static str,
}

pub struct Forward {
    upstreams: Vec<Upstream>,
    options: ForwardOptions,
    balancer: Balancer,
    health: Health,
    /// Per upstream: `max_connections` slots.
    slots: Vec<Arc<Semaphore>>,
    connector: Connector,
    /// The pool of the I/O runtime that first used it (a worker's, after the fork: nothing
    /// runs before). Its connections belong to that runtime.
    pool: OnceLock<Arc<Pool>>,
    /// The pool of the WSGI object's runtime (outside.rs).
    outside_pool: OnceLock<Arc<Pool>>,
    /// The active checks started, once per process.
    probing: OnceLock<()>,
}

impl Forward {
    /// `shared`: the host's health table for this layer (None: per process).
    pub fn new(
        upstreams: &[String],
        options: ForwardOptions,
        shared: Option<&TableName>,
    ) -> Result<Forward, String> {
        if upstreams.is_empty() {
            return Err("Forward needs at least one upstream".into());
        }
        let upstreams = upstreams
            .iter()
            .enumerate()
            .map(|(index, text)| Upstream::parse(text, index))
            .collect::<Result<Vec<_>, _>>()?;
        if options.max_connections == 0 || options.timeout.is_zero() {
            return Err("Forward: timeout and max_connections must be positive".into());
        }
        if options.buffered_response_bytes > MAX_BUFFERED_RESPONSE_BYTES {
            return Err(format!(
                "buffered_response_bytes must be at most {MAX_BUFFERED_RESPONSE_BYTES} (1 MiB), \
                 not {}",
                options.buffered_response_bytes
            ));
        }
        let mut options = options;
        options.health.probed = options.health_path.is_some();
        let tls = match upstreams.iter().any(|u| u.tls) {
            true => Some(tls::client_config(&options.tls)?),
            false => None,
        };
        if tls.is_some() && !options.tls.verify {
            let names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
            log::warn!(
                "Forward: verify=False: the certificates of {} are not checked; anyone on the \
                 path to them can read and change the traffic",
                names.join(", ")
            );
        }
        let weights = upstreams.iter().map(|u| u.weight).collect();
        let health = Health::new(upstreams.len(), options.health, shared);
        let names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
        health.label("", &names, true);
        Ok(Forward {
            balancer: Balancer::new(options.strategy.clone(), weights, health.table()),
            health,
            slots: upstreams
                .iter()
                .map(|_| Arc::new(Semaphore::new(options.max_connections)))
                .collect(),
            connector: Connector::new(&upstreams, options.connect_timeout, tls),
            upstreams,
            options,
            pool: OnceLock::new(),
            outside_pool: OnceLock::new(),
            probing: OnceLock::new(),
        })
    }

    pub fn options(&self) -> &ForwardOptions {
        &self.options
    }

    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }

    /// The layer is mounted at `prefix` (a `Mount` key): the `forward` label of its metrics.
    pub fn mounted_at(&self, prefix: &str) {
        let names: Vec<&str> = self.upstreams.iter().map(|u| u.name.as_str()).collect();
        self.health.label(prefix, &names, false);
    }

    /// A new pool; its connections are registered with the runtime they are made on.
    fn new_pool(&self) -> Arc<Pool> {
        let limits = PoolLimits {
            max_idle: self.options.max_idle,
            idle_timeout: self.options.idle_timeout,
        };
        Pool::new(self.upstreams.len(), self.connector.clone(), limits)
    }

    /// Forwards a request on the current (I/O) runtime.
    pub async fn send(self: &Arc<Self>, request: ForwardRequest) -> Result<Response, Refusal> {
        let pool = self.pool.get_or_init(|| self.new_pool()).clone();
        self.start_probing();
        self.send_with(&pool, request).await
    }

    /// Starts the active checks on the current runtime, once per process.
    pub fn start_probing(self: &Arc<Self>) {
        if self.options.health_path.is_some() && self.probing.get().is_none() {
            self.probing.get_or_init(|| {
                tokio::spawn(probe::run(self.clone(), self.new_pool()));
            });
        }
    }

    async fn send_with(
        self: &Arc<Self>,
        pool: &Arc<Pool>,
        request: ForwardRequest,
    ) -> Result<Response, Refusal> {
        let idempotent = matches!(
            request.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        ) || self.options.retry_non_idempotent;
        let key = self.hash_key(&request);
        let mut tried = vec![false; self.upstreams.len()];
        let mut failures = Vec::new();
        let ForwardRequest {
            method,
            path_and_query,
            headers,
            body,
            client_ip,
            scheme,
        } = request;
        let head = RequestHead {
            method: &method,
            path_and_query: &path_and_query,
            client_ip,
            scheme,
        };
        let mut headers = Some(headers);
        let mut body = Some(body);
        for attempt in 0..=self.options.retries {
            let Some(index) = self
                .balancer
                .pick(&key, |i| !tried[i] && self.health.is_up(i))
            else {
                break;
            };
            tried[index] = true;
            let upstream = &self.upstreams[index];
            let Some(this_body) = body.take() else { break };
            let replay = this_body.replay();
            // PERF: proxy_hello: the fields are copied only for an attempt that another may
            // follow (benches/README.md, issue 16).
            let last = attempt == self.options.retries || tried.iter().all(|&t| t);
            let fields = match (last, &mut headers) {
                (true, headers) => headers.take(),
                (false, headers) => headers.clone(),
            };
            let Some(fields) = fields else { break };
            let outgoing = self.upstream_request(index, &head, fields, this_body);
            self.health.count_request(index);
            match self.exchange(pool, index, outgoing).await {
                Attempt::Answered(response, held) => {
                    self.health.succeeded(index);
                    let reading = ResponseReading {
                        read_timeout: self.options.timeout,
                        buffered_bytes: self.options.buffered_response_bytes,
                    };
                    return body::from_upstream(response, reading, held).await;
                }
                Attempt::Failed { refused, why } => {
                    self.health.count_failure(index);
                    if self.health.failed(index) {
                        log::warn!("Forward: upstream {upstream} is out of rotation");
                    }
                    failures.push(format!("{upstream}: {why}"));
                    // RFC 9110 §9.2.2: only an idempotent request may be sent twice, unless
                    // it never left (the connection was refused).
                    if !(refused || idempotent) {
                        break;
                    }
                    body = replay;
                }
                Attempt::TimedOut => {
                    self.health.count_failure(index);
                    if self.health.failed(index) {
                        log::warn!("Forward: upstream {upstream} is out of rotation");
                    }
                    if let Some(withheld) = FAILURE_LOG.admit() {
                        log::warn!(
                            "Forward: {} {}: {upstream} did not answer within {} ms: 504{}",
                            method,
                            path_and_query,
                            self.options.timeout.as_millis(),
                            withheld_note(withheld)
                        );
                    }
                    return Err(Refusal::GatewayTimeout);
                }
            }
        }
        let why = match failures.is_empty() {
            true => "no upstream in rotation".to_owned(),
            false => failures.join("; "),
        };
        if let Some(withheld) = FAILURE_LOG.admit() {
            let note = withheld_note(withheld);
            log::warn!("Forward: {method} {path_and_query}: 502: {why}{note}");
        }
        Err(Refusal::BadGateway)
    }

    /// One request to one upstream: a slot, the connection, the request, the response head.
    /// `timeout` counts from the end of the request body: an upload goes at the client's pace
    /// (each of its reads bounded by --socket-timeout), the answer at the upstream's.
    async fn exchange(
        self: &Arc<Self>,
        pool: &Arc<Pool>,
        index: usize,
        request: Request<OutgoingBody>,
    ) -> Attempt {
        let timeout = self.options.timeout;
        // PERF: proxy_hello: a free slot is taken without arming the timeout's timer
        // (benches/README.md, issue 16).
        let permit = match self.slots[index].clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let slot = tokio::time::timeout(timeout, self.slots[index].clone().acquire_owned());
                let Ok(permit) = slot.await else {
                    return Attempt::TimedOut;
                };
                permit.expect("invariant: slots are never closed")
            }
        };
        let held = Held::new(self.clone(), index, permit);
        let sent = Arc::new(AtomicBool::new(false));
        let (head, body) = request.into_parts();
        let mut request = Request::from_parts(head, SentBody::new(body, sent.clone()));
        let mut conn = match pool.checkout(index).await {
            Ok(conn) => conn,
            Err(error) => return Attempt::refused(&error),
        };
        loop {
            let Some(answered) = conn.send(request, &sent, timeout).await else {
                return Attempt::TimedOut;
            };
            let mut error = match answered {
                Ok(response) => {
                    let response = response.map(|body| DrivenBody::new(body, conn, pool.clone()));
                    return Attempt::Answered(response, held);
                }
                Err(error) => error,
            };
            match error.take_message() {
                // Not sent: a kept connection the upstream had closed by the time it was
                // used (its keep-alive timeout). A new one takes the request, whatever the
                // method; the upstream is not to blame.
                Some(unsent) if conn.is_reused() => {
                    request = unsent;
                    conn = match pool.connect(index).await {
                        Ok(conn) => conn,
                        Err(error) => return Attempt::refused(&error),
                    };
                }
                Some(_) => {
                    return Attempt::Failed {
                        refused: true,
                        why: "the connection closed before the request was sent".into(),
                    }
                }
                None => {
                    return Attempt::Failed {
                        refused: false,
                        why: error_chain(&error.into_error()),
                    }
                }
            }
        }
    }

    fn hash_key(&self, request: &ForwardRequest) -> Vec<u8> {
        match &self.options.strategy {
            Strategy::Hash(HashKey::Header(name)) => request
                .headers
                .get(name)
                .map(|value| value.as_bytes().to_vec())
                .unwrap_or_default(),
            Strategy::Hash(HashKey::ClientIp) => request
                .client_ip
                .map(|ip| ip.to_string().into_bytes())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn upstream_request(
        &self,
        index: usize,
        head: &RequestHead<'_>,
        mut headers: HeaderMap,
        body: OutgoingBody,
    ) -> Request<OutgoingBody> {
        let upstream = &self.upstreams[index];
        // Room for what `to_upstream` adds (X-Forwarded-*, Forwarded, Via): one growth here
        // rather than one per insert.
        headers.reserve(5);
        let host = headers.get(HOST).cloned();
        let rewrite = Rewrite {
            client: ClientFacts {
                ip: head.client_ip,
                scheme: head.scheme,
                host: host.as_ref(),
            },
            // A client without Host (HTTP/1.0) has none to preserve; HTTP/1.1 needs one.
            upstream_host: (!self.options.preserve_host || host.is_none())
                .then(|| upstream.host_header()),
            via: self.options.via,
        };
        headers::to_upstream(&mut headers, &rewrite);
        let mut request = Request::new(body);
        *request.method_mut() = head.method.clone();
        *request.uri_mut() = upstream.uri(head.path_and_query);
        *request.headers_mut() = headers;
        request
    }
}

/// How one attempt at one upstream ended.
enum Attempt {
    Answered(hyper::Response<DrivenBody>, Held),
    Failed {
        /// Nothing was sent (no connection): any method may go to another upstream.
        refused: bool,
        /// The error and its causes, for the log line.
        why: String,
    },
    TimedOut,
}

impl Attempt {
    fn refused(error: &ConnectError) -> Attempt {
        Attempt::Failed {
            refused: true,
            why: error_chain(error),
        }
    }
}

/// What every attempt of a request shares.
struct RequestHead<'a> {
    method: &'a Method,
    path_and_query: &'a str,
    client_ip: Option<IpAddr>,
    scheme: &'static str,
}

/// An upstream's slot and least-conn count, held while its response is streamed.
struct Held {
    forward: Arc<Forward>,
    index: usize,
    _permit: OwnedSemaphorePermit,
}

impl Held {
    fn new(forward: Arc<Forward>, index: usize, permit: OwnedSemaphorePermit) -> Held {
        forward.balancer.enter(index);
        Held {
            forward,
            index,
            _permit: permit,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.forward.balancer.leave(self.index);
    }
}

/// One line per failed request, at most 20 a second per worker: with every upstream down,
/// each request fails, and the log must not become the next problem.
static FAILURE_LOG: LogThrottle = LogThrottle::new(20);

fn withheld_note(withheld: u64) -> String {
    match withheld {
        0 => String::new(),
        n => format!(" ({n} more such lines withheld)"),
    }
}

/// An error and its causes, on one line: hyper's own says only "connection error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

/// The path to send upstream: the raw (still percent-encoded) `path`, without the part that
/// became SCRIPT_NAME when `strip` (`script_len` bytes once decoded), and the query.
pub fn upstream_path(path: &str, query: Option<&str>, script_len: usize, strip: bool) -> String {
    let raw = path.as_bytes();
    let mut rest = 0;
    if strip {
        let mut decoded = 0;
        while decoded < script_len && rest < raw.len() {
            let escaped = raw[rest] == b'%'
                && raw.len() > rest + 2
                && raw[rest + 1].is_ascii_hexdigit()
                && raw[rest + 2].is_ascii_hexdigit();
            rest += if escaped { 3 } else { 1 };
            decoded += 1;
        }
    }
    let mut out = String::with_capacity(path.len() + 16);
    match &path[rest..] {
        "" => out.push('/'),
        tail => out.push_str(tail),
    }
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_prefix_counts_decoded_bytes_in_the_raw_path() {
        assert_eq!(
            upstream_path("/s%20x/a%2Fb", Some("q=1"), 4, true),
            "/a%2Fb?q=1"
        );
        assert_eq!(upstream_path("/search", None, 7, true), "/");
        assert_eq!(upstream_path("/search/x", None, 7, false), "/search/x");
    }
}
