//! The lifted middleware chain as a tree: layers in front of Python apps (by their index in
//! the worker's list) and of other layers. Built once per worker, from the WSGI objects the
//! app is made of (src/python/middleware) or from the settings; walked for every request.

use std::sync::Arc;

use super::compress::CompressOptions;
use super::forward::Forward;
use super::ip_filter::IpFilter;
use super::limit_key::RateLimit;
use super::mount::Mount;
use super::proxy_headers::ProxyHeaders;
use super::static_files::StaticFiles;
use crate::config::IpRanges;

pub enum Node {
    /// A Python app: its index in the worker's list of apps.
    App(u32),
    /// Nothing behind: 404 (a Mount without a default).
    NotFound,
    /// Puts a request id in the request (`X-Request-ID`) and in the response.
    RequestId {
        /// Besides `--forwarded-allow-ips`, the clients whose own id is kept.
        trusted: Arc<IpRanges>,
        next: Arc<Node>,
    },
    IpFilter {
        filter: Arc<IpFilter>,
        next: Arc<Node>,
    },
    /// Believes a trusted proxy's headers about the client, scheme, Host and port.
    ProxyHeaders {
        layer: Arc<ProxyHeaders>,
        next: Arc<Node>,
    },
    Mount(Arc<Mount<Arc<Node>>>),
    /// Files under the static mounts; the rest (and missing files) go to `next`, or get 404
    /// (405 for a method other than GET or HEAD) when there is none.
    Static {
        files: Arc<StaticFiles>,
        next: Option<Arc<Node>>,
    },
    RateLimit {
        limit: Arc<RateLimit>,
        next: Arc<Node>,
    },
    /// Sends the request to an upstream server and answers with its response.
    Forward(Arc<Forward>),
    /// Compresses what `next` answers, as the client's Accept-Encoding allows.
    Compress {
        options: Arc<CompressOptions>,
        next: Arc<Node>,
    },
}

impl Node {
    /// Starts what the layers run beside requests (Forward's health checks) on the current
    /// runtime: called once per worker when its I/O runtime starts.
    pub fn start_tasks(&self) {
        match self {
            Node::Forward(forward) => forward.start_probing(),
            Node::Mount(mount) => {
                for (_, node) in mount.entries() {
                    node.start_tasks();
                }
                if let Some(node) = mount.default() {
                    node.start_tasks();
                }
            }
            Node::RequestId { next, .. }
            | Node::IpFilter { next, .. }
            | Node::ProxyHeaders { next, .. }
            | Node::RateLimit { next, .. }
            | Node::Compress { next, .. }
            | Node::Static {
                next: Some(next), ..
            } => next.start_tasks(),
            Node::App(_) | Node::NotFound | Node::Static { next: None, .. } => {}
        }
    }

    /// The chain of a plain app: no layer at all (the pipeline then costs one comparison).
    pub fn is_plain_app(&self) -> bool {
        matches!(self, Node::App(0))
    }
}
