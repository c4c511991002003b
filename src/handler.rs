//! The seam between the HTTP layer and what answers requests: request head and body in,
//! response out. `http` calls a `Handler`, middleware wraps one, `wsgi` implements one.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::request::Parts;

use crate::http::{RequestBody, Response};

/// `wsgi.url_scheme`: what the client used to reach us (directly, or through a trusted proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

/// What a request is told of the TLS connection it came on, by mod_ssl's names (`SSL_*`).
/// Made once per connection, after the handshake, and shared by its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// `SSL_PROTOCOL`: `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// `SSL_CIPHER`: the suite's IANA name (`TLS_AES_128_GCM_SHA256`).
    pub cipher: &'static str,
    /// `SSL_TLS_SNI`: the host name the client asked for, if it sent one.
    pub server_name: Option<Box<str>>,
    /// The client's certificate, verified against `--ca-certs`; `None`: it sent none.
    pub client: Option<ClientCertificate>,
}

/// A client certificate, as `SSL_CLIENT_CERT`, `SSL_CLIENT_S_DN` and `SSL_CLIENT_I_DN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// PEM.
    pub pem: String,
    /// Subject and issuer DNs in RFC 4514 form (`CN=alice,O=Example`), as mod_ssl gives them.
    pub subject: String,
    pub issuer: String,
    /// `SSL_CLIENT_M_SERIAL`: upper-case hex, as OpenSSL prints it.
    pub serial: String,
    /// `SSL_CLIENT_V_START` / `SSL_CLIENT_V_END`: OpenSSL's form, `Dec  5 19:41:33 2026 GMT`.
    pub not_before: String,
    pub not_after: String,
}

/// Where a request came from: the connection it arrived on, corrected by what a trusted proxy
/// said (PROXY protocol, `Forwarded`, `X-Forwarded-*`). Cloned per request: on a plain
/// connection that is a copy of plain fields, on a TLS one an `Arc` count more.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The client's address; `None` on a Unix socket. Port 0: a proxy named no port.
    pub peer: Option<SocketAddr>,
    /// The address the client connected to; `None` on a Unix socket.
    pub local: Option<SocketAddr>,
    pub scheme: Scheme,
    /// SERVER_PORT as a trusted proxy gave it (`X-Forwarded-Port`), over the Host's.
    pub server_port: Option<u16>,
    /// The connection's own peer is in `--forwarded-allow-ips`: what it says in headers
    /// (`X-Request-ID` too) is believed, though `peer` now names the client behind it.
    pub from_trusted_proxy: bool,
    /// Set per request by a native `Mount`: the app and SCRIPT_NAME.
    pub mount: Option<MountPoint>,
    /// The connection's TLS facts, when it is TLS (what a proxy says does not set them).
    pub tls: Option<Arc<TlsFacts>>,
    /// Which of the server's listeners (in `--bind` order) accepted the connection, for the
    /// metrics' `listener` label.
    pub listener: u8,
}

impl ConnectionInfo {
    /// A connection accepted from `peer` on `local`, as it is before any proxy speaks.
    pub fn direct(peer: Option<SocketAddr>, local: Option<SocketAddr>) -> ConnectionInfo {
        ConnectionInfo {
            peer,
            local,
            scheme: Scheme::Http,
            server_port: None,
            from_trusted_proxy: false,
            mount: None,
            tls: None,
            listener: 0,
        }
    }
}

/// Which Python app answers a request, and where it is mounted: set by the native `Mount`
/// layer, read by the WSGI side when it builds the environ. Without one, a request goes to
/// app 0 with `--root-path` as its SCRIPT_NAME. `Copy`, so it rides in `ConnectionInfo`
/// (PERF: no allocation for the request's extensions map: benches/README.md, "mount3").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountPoint {
    /// The app's index in the worker's list of Python apps.
    pub app: u32,
    /// How many bytes of the percent-decoded path went to SCRIPT_NAME; PATH_INFO is the rest.
    pub path_offset: u32,
    /// Whether the path began with `--root-path`: then SCRIPT_NAME is the path's first
    /// `path_offset` bytes; if not, `--root-path` followed by them.
    pub under_root: bool,
}

pub trait Handler: Clone + Send + Sync + 'static {
    /// Resolves to the response head; the body may still be streaming when it resolves.
    /// `Unpin` so the HTTP layer can poll it without boxing every request.
    type Future: Future<Output = Response> + Send + Unpin + 'static;

    /// `body` is `None` when the request has none.
    fn call(
        &self,
        head: Parts,
        body: Option<RequestBody>,
        connection: &ConnectionInfo,
    ) -> Self::Future;
}
