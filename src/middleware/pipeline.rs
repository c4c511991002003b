//! `Pipeline`: the lifted middleware chain as a `Handler` in front of the Python apps. Each
//! request walks the tree (node.rs) on the I/O thread: a layer answers it (403, 404, 429, a
//! static file) without Python, or it reaches a Python app with its mount point in the
//! request's `ConnectionInfo`. A plain app (no layer) goes straight through; static files are
//! looked up and read on a blocking thread, and a rate limit kept in Redis is awaited, never
//! blocked on, so the I/O thread only ever waits in `finish`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    HeaderName, ACCEPT_ENCODING, HOST, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE,
};
use http::request::Parts;
use http::HeaderValue;

use super::compress::choose;
use super::compress_response::{self, Negotiated};
use super::forward::{upstream_path, Forward, ForwardRequest, OutgoingBody};
use super::health::Probes;
use super::limit_key::{client_key, LimitKey, RateKey, RateLimit, Verdict};
use super::node::Node;
use super::refusal::Refusal;
use super::request_id::request_id;
use super::static_body;
use super::static_files::{StaticAnswer, StaticFiles, StaticRequest};
use crate::handler::{ConnectionInfo, Handler, MountPoint};
use crate::http::status::Failure;
use crate::http::RequestError;
use crate::http::{HeaderBlock, RequestBody, Response, ResponseBody};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone)]
pub struct Pipeline<H> {
    root: Arc<Node>,
    inner: H,
    /// `--root-path`: the SCRIPT_NAME every request starts with.
    root_path: Bytes,
    /// `--health-path` / `--ready-path`, answered before the walk; `None` when neither is set.
    probes: Option<Arc<Probes>>,
}

impl<H: Handler> Pipeline<H> {
    pub fn new(root: Arc<Node>, inner: H, root_path: &str) -> Pipeline<H> {
        Pipeline {
            root,
            inner,
            root_path: Bytes::copy_from_slice(root_path.trim_end_matches('/').as_bytes()),
            probes: None,
        }
    }

    /// Answers these probe paths before anything else (health.rs).
    pub fn with_probes(mut self, probes: Option<Probes>) -> Pipeline<H> {
        self.probes = probes.map(Arc::new);
        self
    }
}

/// Where the walk stopped.
enum Step {
    Refuse(Refusal),
    Python(u32),
    /// A static mount claims the path: the disk decides (off the I/O thread).
    Static {
        files: Arc<StaticFiles>,
        next: Option<Arc<Node>>,
    },
    /// A Forward layer: an upstream answers (awaited in `finish`).
    Forward(Arc<Forward>),
    /// A rate limit kept in Redis: a round trip decides (awaited in `finish`).
    RateLimit {
        limit: Arc<RateLimit>,
        key: LimitKey,
        next: Arc<Node>,
    },
}

/// One request on its way through the tree.
struct Walk {
    head: Parts,
    connection: ConnectionInfo,
    /// The percent-decoded path, when it had escapes; without, the URI's path is it (PERF:
    /// no copy of the common path, benches/callgrind mount3).
    decoded_path: Option<Vec<u8>>,
    /// How many bytes of `path` have become SCRIPT_NAME.
    script_len: usize,
    /// The path began with `--root-path` (which then is SCRIPT_NAME's start).
    under_root: bool,
    mounted: bool,
    /// Headers the layers add to whatever answers.
    response_headers: Vec<(&'static str, String)>,
    /// A Compress layer passed: what the app behind it answers is compressed.
    compress: Option<Negotiated>,
}

impl Walk {
    /// The percent-decoded path, as PATH_INFO is made from it.
    fn path(&self) -> &[u8] {
        match &self.decoded_path {
            Some(decoded) => decoded,
            None => self.head.uri.path().as_bytes(),
        }
    }

    fn walk(&mut self, mut node: &Arc<Node>) -> Step {
        loop {
            node = match &**node {
                Node::App(app) => return Step::Python(*app),
                Node::Forward(forward) => return Step::Forward(forward.clone()),
                Node::NotFound => return Step::Refuse(Refusal::NotFound),
                Node::RequestId { trusted, next } => {
                    let incoming = self.head.headers.get(&X_REQUEST_ID).map(|v| v.as_bytes());
                    let trusted = self.connection.from_trusted_proxy
                        || trusted.contains_peer(self.connection.peer);
                    let id = request_id(incoming, trusted);
                    if let Ok(value) = HeaderValue::from_str(&id) {
                        self.head.headers.insert(X_REQUEST_ID, value);
                    }
                    self.response_headers.push(("X-Request-ID", id));
                    next
                }
                Node::ProxyHeaders { layer, next } => {
                    if let Err(refusal) = layer.apply(&mut self.head, &mut self.connection) {
                        return Step::Refuse(refusal);
                    }
                    next
                }
                Node::IpFilter { filter, next } => {
                    if !filter.admits(self.client_ip()) {
                        return Step::Refuse(Refusal::Forbidden);
                    }
                    next
                }
                Node::RateLimit { limit, next } => {
                    let key = match &limit.key {
                        RateKey::Header(name) => self
                            .head
                            .headers
                            .get(name)
                            .map(|v| LimitKey::from_slice(v.as_bytes())),
                        RateKey::ClientIp => None,
                    };
                    let key = key.unwrap_or_else(|| client_key(self.client_ip()));
                    if limit.is_remote() {
                        return Step::RateLimit {
                            limit: limit.clone(),
                            key,
                            next: next.clone(),
                        };
                    }
                    match self.pass(limit.check(&key)) {
                        Some(refusal) => return Step::Refuse(refusal),
                        None => next,
                    }
                }
                Node::Mount(mount) => {
                    let host = match mount.needs_host() {
                        true => self.head.headers.get(HOST).map(HeaderValue::as_bytes),
                        false => None,
                    };
                    let path_info = &self.path()[self.script_len..];
                    let Some(routed) = mount.route(path_info, host, self.connection.scheme) else {
                        return Step::Refuse(Refusal::NotFound);
                    };
                    self.script_len += routed.prefix_len;
                    self.mounted = true;
                    routed.target
                }
                Node::Compress { options, next } => {
                    let accept = self.header(ACCEPT_ENCODING);
                    self.compress = Some(Negotiated {
                        encoding: choose(accept.as_deref(), options),
                        options: options.clone(),
                        is_head: self.head.method == http::Method::HEAD,
                    });
                    next
                }
                Node::Static { files, next } => {
                    if files.claims(&self.path()[self.script_len..]) {
                        return Step::Static {
                            files: files.clone(),
                            next: next.clone(),
                        };
                    }
                    match next {
                        Some(next) => next,
                        None => return Step::Refuse(Refusal::NotFound),
                    }
                }
            };
        }
    }

    /// After the disk said the path is not a static file's: on to the app behind, if any.
    fn fall_through(&mut self, next: Option<Arc<Node>>, otherwise: Refusal) -> Step {
        match next {
            Some(next) => self.walk(&next),
            None => Step::Refuse(otherwise),
        }
    }

    /// Keeps a passing limit's headers for the answer; the refusal otherwise.
    fn pass(&mut self, verdict: Verdict) -> Option<Refusal> {
        match verdict {
            Verdict::Pass(headers) => {
                self.response_headers.extend(headers);
                None
            }
            Verdict::Refuse(refusal) => Some(refusal),
        }
    }

    fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.connection.peer.map(|peer| peer.ip())
    }

    fn header(&self, name: HeaderName) -> Option<String> {
        let value = self.head.headers.get(name)?;
        value.to_str().ok().map(str::to_owned)
    }

    /// Looks the file up and reads it on a blocking thread.
    async fn answer_static(&self, files: Arc<StaticFiles>) -> Result<StaticAnswer, Response> {
        let method = self.head.method.as_str().to_owned();
        let path = self.path()[self.script_len..].to_vec();
        let conditions = [
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            RANGE,
            IF_RANGE,
            ACCEPT_ENCODING,
        ]
        .map(|name| self.header(name));
        let looked_up = tokio::task::spawn_blocking(move || {
            let [if_none_match, if_modified_since, range, if_range, accept_encoding] = &conditions;
            files.answer(&StaticRequest {
                method: &method,
                path: &path,
                if_none_match: if_none_match.as_deref(),
                if_modified_since: if_modified_since.as_deref(),
                range: range.as_deref(),
                if_range: if_range.as_deref(),
                accept_encoding: accept_encoding.as_deref(),
            })
        });
        looked_up.await.map_err(|error| {
            log::error!("Static file lookup failed: {error}");
            Failure::Application { detail: None }.into_response()
        })
    }

    /// The request as it goes upstream: its head moved out of the walk (nothing after a
    /// Forward needs it), its path without SCRIPT_NAME when the layer strips the prefix.
    fn forward_request(&mut self, forward: &Forward, body: OutgoingBody) -> ForwardRequest {
        let head = std::mem::replace(&mut self.head, http::Request::new(()).into_parts().0);
        let path_and_query = upstream_path(
            head.uri.path(),
            head.uri.query(),
            self.script_len,
            forward.options().strip_prefix,
        );
        ForwardRequest {
            method: head.method,
            path_and_query,
            headers: head.headers,
            body,
            client_ip: self.client_ip(),
            scheme: match self.connection.scheme {
                crate::handler::Scheme::Http => "http",
                crate::handler::Scheme::Https => "https",
            },
        }
    }

    fn mount_point(&mut self, app: u32) {
        if self.mounted || app != 0 {
            self.connection.mount = Some(MountPoint {
                app,
                path_offset: self.script_len as u32,
                under_root: self.under_root,
            });
        }
    }
}

impl<H: Handler> Handler for Pipeline<H> {
    type Future = PipelineFuture<H::Future>;

    fn call(
        &self,
        head: Parts,
        body: Option<RequestBody>,
        connection: &ConnectionInfo,
    ) -> Self::Future {
        if let Some(answer) = self.probes.as_ref().and_then(|probes| probes.answer(&head)) {
            return PipelineFuture::Ready(Some(answer));
        }
        if self.root.is_plain_app() {
            return PipelineFuture::Direct(self.inner.call(head, body, connection));
        }
        let raw = head.uri.path().as_bytes();
        let decoded_path: Option<Vec<u8>> = raw
            .contains(&b'%')
            .then(|| percent_encoding::percent_decode(raw).collect());
        let path = decoded_path.as_deref().unwrap_or(raw);
        let root = self.root_path.as_ref();
        // PEP 3333: PATH_INFO is what follows SCRIPT_NAME; outside --root-path, all of it.
        // PERF: without --root-path (most servers) no comparison is made (perf, deny403).
        let under_root = root.is_empty()
            || path.starts_with(root) && matches!(path.get(root.len()), None | Some(b'/'));
        let script_len = if under_root { root.len() } else { 0 };
        let mut walk = Walk {
            head,
            connection: connection.clone(),
            decoded_path,
            script_len,
            under_root,
            mounted: false,
            response_headers: Vec::new(),
            compress: None,
        };
        match walk.walk(&self.root) {
            Step::Refuse(refusal) => PipelineFuture::Ready(Some(with_headers(
                refused(&refusal),
                &walk.response_headers,
            ))),
            Step::Python(app) if walk.response_headers.is_empty() && walk.compress.is_none() => {
                walk.mount_point(app);
                PipelineFuture::Direct(self.inner.call(walk.head, body, &walk.connection))
            }
            step => PipelineFuture::Boxed(Box::pin(finish(self.inner.clone(), walk, step, body))),
        }
    }
}

/// The rest of a walk that waits on something: the disk, Redis, or the app's answer to add
/// headers to.
async fn finish<H: Handler>(
    inner: H,
    mut walk: Walk,
    mut step: Step,
    mut body: Option<RequestBody>,
) -> Response {
    let answered = loop {
        step = match step {
            // A layer outside Compress refused: nothing to compress.
            Step::Refuse(refusal) if walk.compress.is_none() => break refused(&refusal),
            Step::Refuse(refusal) => break compressed(refused(&refusal), &walk).await,
            Step::Python(app) => {
                walk.mount_point(app);
                let connection = walk.connection.clone();
                let head = std::mem::replace(&mut walk.head, http::Request::new(()).into_parts().0);
                let answer = inner.call(head, body.take(), &connection).await;
                break compressed(answer, &walk).await;
            }
            Step::Static { files, next } => match walk.answer_static(files).await {
                Err(failed) => break failed,
                Ok(StaticAnswer::Respond(answer)) => {
                    let query = walk.head.uri.query();
                    let maps_files = walk.connection.tls.is_none();
                    match static_body::into_response(answer, query, maps_files) {
                        Ok(response) => break compressed(response, &walk).await,
                        Err(error) => {
                            log::error!("Cannot read a static file: {error}");
                            break Failure::Application { detail: None }.into_response();
                        }
                    }
                }
                Ok(StaticAnswer::FallThrough) => walk.fall_through(next, Refusal::NotFound),
                Ok(StaticAnswer::MethodNotAllowed) => {
                    walk.fall_through(next, Refusal::MethodNotAllowed)
                }
            },
            Step::Forward(forward) => {
                let body = match OutgoingBody::from_client(body.take()).await {
                    Ok(body) => body,
                    Err(error) => {
                        let error = RequestError::malformed(error.to_string());
                        break Failure::Refused(error).into_response();
                    }
                };
                let request = walk.forward_request(&forward, body);
                match forward.send(request).await {
                    Ok(answer) => break compressed(answer, &walk).await,
                    Err(refusal) => Step::Refuse(refusal),
                }
            }
            // Bounded by the store's timeout; a failing Redis passes or refuses as configured.
            Step::RateLimit { limit, key, next } => {
                match walk.pass(limit.check_async(&key).await) {
                    Some(refusal) => Step::Refuse(refusal),
                    None => walk.walk(&next),
                }
            }
        };
    };
    with_headers(answered, &walk.response_headers)
}

async fn compressed(response: Response, walk: &Walk) -> Response {
    match &walk.compress {
        Some(negotiated) => compress_response::compress(response, negotiated).await,
        None => response,
    }
}

/// A layer's refusal as a response.
pub fn refused(refusal: &Refusal) -> Response {
    let headers = match refusal.fixed_block() {
        Some(block) => block,
        None => {
            let mut headers = HeaderBlock::with_capacity(160);
            refusal.each_header(|name, value| headers.push(name.as_bytes(), value.as_bytes()));
            headers
        }
    };
    Response::new(
        refusal.status(),
        headers,
        ResponseBody::full(Bytes::from_static(refusal.body())),
    )
}

fn with_headers(mut response: Response, extra: &[(&'static str, String)]) -> Response {
    for (name, value) in extra {
        response.headers.push(name.as_bytes(), value.as_bytes());
    }
    response
}

/// The pipeline's answer: the inner handler's own future when nothing wraps it (no box, no
/// extra poll), a ready refusal, or a boxed continuation for layers that wait.
pub enum PipelineFuture<F> {
    Direct(F),
    Ready(Option<Response>),
    Boxed(Pin<Box<dyn Future<Output = Response> + Send>>),
}

impl<F: Future<Output = Response> + Unpin> Future for PipelineFuture<F> {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.get_mut() {
            PipelineFuture::Direct(future) => Pin::new(future).poll(cx),
            PipelineFuture::Ready(response) => Poll::Ready(
                response
                    .take()
                    .expect("invariant: a ready future is polled once"),
            ),
            PipelineFuture::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}
