//! One upstream server as the user named it (`http[s]://host:port[/base]` or `unix:/path`,
//! with an optional `;weight=N`), and the connector the pool (pool.rs) dials them with (TLS
//! for https, its configuration from tls.rs). Knows nothing of balancing, health or requests.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Uri};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The most an upstream's weight may be: beyond it, a round-robin cycle would be long enough
/// to look like starvation of the others over a short window.
pub const MAX_WEIGHT: u32 = 100;

/// Where an upstream listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host:port` as given (a name is resolved when a connection is made).
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// As the user wrote it (without the weight): log lines and errors name it so.
    pub name: String,
    pub address: Address,
    /// A path the request's path is appended to (`/base`), without a trailing slash.
    pub base: String,
    pub weight: u32,
    /// `https://`: TLS to it, its certificate checked for `host`.
    pub tls: bool,
    /// `host:port` as dialled (and sent as Host), or for a Unix socket a made-up host.
    pub authority: String,
    /// The `Host` sent when it is rewritten, built once (shared by every request).
    host_value: HeaderValue,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Upstream {
    /// Parses `http[s]://host:port[/base][;weight=N]` or `unix:/path[;weight=N]`; `index` makes
    /// a Unix socket's pool key unique.
    pub fn parse(text: &str, index: usize) -> Result<Upstream, String> {
        let (url, weight) = match text.split_once(';') {
            None => (text.trim(), 1),
            Some((url, option)) => {
                let weight = option
                    .trim()
                    .strip_prefix("weight=")
                    .and_then(|w| w.parse::<u32>().ok())
                    .filter(|w| (1..=MAX_WEIGHT).contains(w))
                    .ok_or_else(|| {
                        format!(
                            "{text:?}: the only option is weight=N with N from 1 to {MAX_WEIGHT}"
                        )
                    })?;
                (url.trim(), weight)
            }
        };
        if let Some(path) = url.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!("{text:?}: a Unix socket is unix:/absolute/path"));
            }
            return Upstream::with_authority(Upstream {
                name: url.to_owned(),
                address: Address::Unix(PathBuf::from(path)),
                base: String::new(),
                weight,
                tls: false,
                authority: format!("unix-{index}.invalid"),
                host_value: HeaderValue::from_static("localhost"),
            });
        }
        let uri: Uri = url
            .parse()
            .map_err(|error| format!("{text:?} is not a URL: {error}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(format!(
                    "{text:?}: an upstream is http[s]://host:port[/base] or unix:/path"
                ))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("{text:?} names no host"))?
            .to_owned();
        if uri.query().is_some() {
            return Err(format!("{text:?}: an upstream takes no query string"));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        Upstream::with_authority(Upstream {
            name: url.to_owned(),
            address: Address::Tcp {
                host: host.trim_matches(['[', ']']).to_owned(),
                port,
            },
            base: uri.path().trim_end_matches('/').to_owned(),
            weight,
            tls,
            authority,
            host_value: HeaderValue::from_static("localhost"),
        })
    }

    /// Fills in the Host value (a Unix upstream's stays `localhost`).
    fn with_authority(mut upstream: Upstream) -> Result<Upstream, String> {
        let invalid = format!("{:?}: not a valid host:port", upstream.name);
        if let Address::Tcp { .. } = upstream.address {
            upstream.host_value =
                HeaderValue::from_str(&upstream.authority).map_err(|_| invalid)?;
        }
        Ok(upstream)
    }

    /// The request target sent to the upstream for `path_and_query` (after the base), in
    /// origin form (RFC 9112 §3.2.1): hyper sends the URI as it is given.
    pub fn uri(&self, path_and_query: &str) -> Uri {
        // PERF: proxy_hello: only the path is parsed for each request, no scheme or
        // authority (benches/README.md, issue 16).
        let path = match self.base.is_empty() {
            true => {
                PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(path_and_query.as_bytes()))
            }
            false => PathAndQuery::from_maybe_shared(Bytes::from(format!(
                "{}{path_and_query}",
                self.base
            ))),
        };
        Uri::from(path.unwrap_or_else(|_| PathAndQuery::from_static("/")))
    }

    /// The value of `Host` when it is rewritten for the upstream.
    pub fn host_header(&self) -> &HeaderValue {
        &self.host_value
    }
}

/// Dials upstreams for the pool (pool.rs): TCP (no Nagle: requests are written whole), TLS
/// over it for https, or a Unix socket, each within the connect timeout (the handshake
/// included).
#[derive(Clone)]
pub struct Connector {
    /// Per upstream (by index): where it listens, and whether it speaks TLS.
    addresses: Arc<Vec<(Address, bool)>>,
    connect_timeout: Duration,
    /// For https upstreams (None when there are none).
    tls: Option<TlsConnector>,
}

impl Connector {
    pub fn new(
        upstreams: &[Upstream],
        connect_timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Connector {
        let addresses = upstreams
            .iter()
            .map(|upstream| (upstream.address.clone(), upstream.tls))
            .collect();
        Connector {
            addresses: Arc::new(addresses),
            connect_timeout,
            tls: tls.map(TlsConnector::from),
        }
    }

    /// A new connection to upstream `index`.
    pub async fn connect(&self, index: usize) -> io::Result<Stream> {
        let (address, tls) = self
            .addresses
            .get(index)
            .ok_or_else(|| io::Error::other(format!("invariant: no upstream {index}")))?;
        let connect = async {
            match address {
                Address::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix),
                Address::Tcp { host, port } => {
                    let stream = TcpStream::connect((host.as_str(), *port)).await?;
                    stream.set_nodelay(true)?;
                    match tls {
                        false => Ok(Stream::Tcp(stream)),
                        true => handshake(self.tls.clone(), host, stream).await,
                    }
                }
            }
        };
        let timeout = self.connect_timeout;
        match tokio::time::timeout(timeout, connect).await {
            Ok(stream) => stream,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {} ms", timeout.as_millis()),
            )),
        }
    }
}

/// TLS over `stream` with SNI (and the certificate check) for `host`; an error says what
/// failed (the verifier's reason: `invalid peer certificate: UnknownIssuer`).
async fn handshake(
    connector: Option<TlsConnector>,
    host: &str,
    stream: TcpStream,
) -> io::Result<Stream> {
    let connector = connector
        .ok_or_else(|| io::Error::other("invariant: an https upstream has a TLS configuration"))?;
    let name = ServerName::try_from(host.to_owned()).map_err(|error| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?}: {error}"))
    })?;
    match connector.connect(name, stream).await {
        Ok(stream) => Ok(Stream::Tls(Box::new(stream))),
        Err(error) => Err(io::Error::new(
            error.kind(),
            format!("TLS handshake with {host}: {error}"),
        )),
    }
}

/// A connection to an upstream.
pub enum Stream {
    Tcp(TcpStream),
    /// Boxed: a TLS session's state is ~1 KiB, the others a descriptor.
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Stream::Tls(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Stream::Unix(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Tls(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_with_base_and_weight() {
        let upstream = Upstream::parse("http://10.0.0.5:8080/base/;weight=3", 0).unwrap();
        assert_eq!(upstream.authority, "10.0.0.5:8080");
        assert_eq!(upstream.base, "/base");
        assert_eq!(upstream.weight, 3);
        assert_eq!(upstream.name, "http://10.0.0.5:8080/base/");
    }

    #[test]
    fn parses_unix_and_defaults_port_80() {
        let unix = Upstream::parse("unix:/run/app.sock", 2).unwrap();
        assert_eq!(unix.address, Address::Unix("/run/app.sock".into()));
        assert_eq!(unix.authority, "unix-2.invalid");
        let plain = Upstream::parse("http://backend", 0).unwrap();
        assert_eq!(plain.authority, "backend:80");
        assert_eq!(plain.base, "");
    }

    #[test]
    fn https_defaults_to_port_443_and_names_its_scheme_in_the_uri() {
        let upstream = Upstream::parse("https://api.example/v1", 0).unwrap();
        assert!(upstream.tls);
        assert_eq!(upstream.authority, "api.example:443");
        assert_eq!(upstream.uri("/a?b").to_string(), "/v1/a?b");
        let plain = Upstream::parse("http://x:1", 4).unwrap();
        assert_eq!(plain.uri("/").to_string(), "/");
        assert_eq!(plain.host_header(), "x:1");
    }

    #[test]
    fn refuses_what_it_cannot_dial() {
        for text in [
            "ftp://x",
            "unix:relative",
            "http://x:1;weight=0",
            "http://x:1;weight=101",
            "http://x:1/?q",
        ] {
            assert!(Upstream::parse(text, 0).is_err(), "{text}");
        }
    }
}
