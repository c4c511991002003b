//! `Pipeline`: the lifted middleware chain as a `Handler` in front of the Python apps. Each
//! request walks the tree (node.rs) on the I/O thread: a layer answers it (403, 404, 429, a
//! static file) without Python, or it reaches a Python app with its mount point in the
//! request's extensions. A plain app (no layer) goes straight through.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HOST};
use http::request::Parts;
use http::{HeaderValue, StatusCode};

use super::node::Node;
use super::refusal::Refusal;
use super::request_id::request_id;
use crate::handler::{ConnectionInfo, Handler, MountPoint};
use crate::http::{HeaderBlock, RequestBody, Response, ResponseBody};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone)]
pub struct Pipeline<H> {
    root: Arc<Node>,
    inner: H,
    /// `--root-path`: the SCRIPT_NAME every request starts with.
    root_path: Bytes,
}

impl<H: Handler> Pipeline<H> {
    pub fn new(root: Arc<Node>, inner: H, root_path: &str) -> Pipeline<H> {
        Pipeline {
            root,
            inner,
            root_path: Bytes::copy_from_slice(root_path.trim_end_matches('/').as_bytes()),
        }
    }
}

/// What the walk ended on.
enum Step {
    Refuse(Refusal),
    Python(u32),
}

/// One request on its way through the tree.
struct Walk<'a> {
    head: Parts,
    connection: &'a ConnectionInfo,
    /// The percent-decoded path, as PATH_INFO is made from it.
    path: Cow<'a, [u8]>,
    /// How many bytes of `path` have become SCRIPT_NAME.
    script_len: usize,
    /// `--root-path` plus the mount prefixes taken so far.
    script_name: Vec<u8>,
    mounted: bool,
    /// Headers the layers add to whatever answers.
    response_headers: Vec<(&'static str, String)>,
}

impl Walk<'_> {
    fn walk(&mut self, mut node: &Node) -> Step {
        loop {
            node = match node {
                Node::App(app) => return Step::Python(*app),
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
                Node::IpFilter { filter, next } => {
                    if !filter.admits(self.connection.peer.map(|peer| peer.ip())) {
                        return Step::Refuse(Refusal::Forbidden);
                    }
                    next
                }
                Node::Mount(mount) => {
                    let host = self.head.headers.get(HOST).map(HeaderValue::as_bytes);
                    let path_info = &self.path[self.script_len..];
                    let Some(routed) = mount.route(path_info, host) else {
                        return Step::Refuse(Refusal::NotFound);
                    };
                    let taken = self.script_len..self.script_len + routed.prefix_len;
                    self.script_name
                        .extend_from_slice(&self.path[taken.clone()]);
                    self.script_len = taken.end;
                    self.mounted = true;
                    routed.target
                }
            };
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
        if self.root.is_plain_app() {
            return PipelineFuture::Direct(self.inner.call(head, body, connection));
        }
        let raw_path = head.uri.path().to_owned();
        let path: Cow<'_, [u8]> = percent_encoding::percent_decode_str(&raw_path).into();
        let root = self.root_path.as_ref();
        // PEP 3333: PATH_INFO is what follows SCRIPT_NAME; outside --root-path, all of it.
        let script_len =
            match path.starts_with(root) && matches!(path.get(root.len()), None | Some(b'/')) {
                true => root.len(),
                false => 0,
            };
        let mut walk = Walk {
            head,
            connection,
            path,
            script_len,
            script_name: root.to_vec(),
            mounted: false,
            response_headers: Vec::new(),
        };
        let step = walk.walk(&self.root);
        let extra = std::mem::take(&mut walk.response_headers);
        match step {
            Step::Refuse(refusal) => {
                PipelineFuture::Ready(Some(with_headers(refused(&refusal), &extra)))
            }
            Step::Python(app) => {
                let mut head = walk.head;
                if walk.mounted || app != 0 {
                    head.extensions.insert(MountPoint {
                        app,
                        script_name: Bytes::from(walk.script_name),
                        path_offset: walk.script_len,
                    });
                }
                let answer = self.inner.call(head, body, connection);
                match extra.is_empty() {
                    true => PipelineFuture::Direct(answer),
                    false => PipelineFuture::Boxed(Box::pin(async move {
                        with_headers(answer.await, &extra)
                    })),
                }
            }
        }
    }
}

/// A layer's refusal as a response.
pub fn refused(refusal: &Refusal) -> Response {
    let mut headers = HeaderBlock::with_capacity(96);
    for (name, value) in refusal.headers() {
        if name != "Content-Length" {
            headers.push(name.as_bytes(), value.as_bytes());
        }
    }
    let status = refusal.status();
    debug_assert_ne!(status, StatusCode::OK);
    Response::new(
        status,
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
/// extra poll), a ready refusal, or a boxed continuation for layers that act on the response.
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
