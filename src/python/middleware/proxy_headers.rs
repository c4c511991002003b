//! `ferrogate.middleware.ProxyHeaders`: a trusted proxy's `Forwarded` / `X-Forwarded-*`
//! headers believed, as a WSGI object under any server; lifted into the native layer
//! (src/middleware/proxy_headers.rs). Both run http/forwarded.rs, so REMOTE_ADDR,
//! REMOTE_PORT, wsgi.url_scheme, HTTP_HOST, SERVER_NAME and SERVER_PORT come out as
//! ferrogate's own `--forwarded-allow-ips` resolution makes them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, HOST};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::environ::{bytes_of, refuse, set_bytes};
use super::ip_filter::ranges;
use crate::handler::{ConnectionInfo, Scheme};
use crate::http::forwarded::Honoured;
use crate::middleware::proxy_headers::ProxyHeaders as Layer;
use crate::wsgi::address_strings::split_host;

/// The environ keys the resolution reads, and the header each one is.
const READ: [(&str, &str); 7] = [
    ("HTTP_HOST", "host"),
    ("HTTP_FORWARDED", "forwarded"),
    ("HTTP_X_FORWARDED_FOR", "x-forwarded-for"),
    ("HTTP_X_FORWARDED_PROTO", "x-forwarded-proto"),
    ("HTTP_X_FORWARDED_SSL", "x-forwarded-ssl"),
    ("HTTP_X_FORWARDED_HOST", "x-forwarded-host"),
    ("HTTP_X_FORWARDED_PORT", "x-forwarded-port"),
];

#[pyclass(name = "ProxyHeaders", module = "ferrogate.middleware", frozen)]
pub struct ProxyHeaders {
    pub(super) app: Py<PyAny>,
    pub(super) layer: Arc<Layer>,
}

#[pymethods]
impl ProxyHeaders {
    #[new]
    #[pyo3(signature = (app, trusted = None, headers = None))]
    fn new(
        app: Py<PyAny>,
        trusted: Option<&Bound<'_, PyAny>>,
        headers: Option<Vec<String>>,
    ) -> PyResult<ProxyHeaders> {
        let honoured = match headers {
            Some(names) => Honoured::from_names(names.iter().map(String::as_str))
                .map_err(|error| PyValueError::new_err(format!("headers: {error}")))?,
            None => Honoured::ALL,
        };
        let layer = Layer {
            trusted: ranges(trusted, "trusted")?,
            honoured,
        };
        Ok(ProxyHeaders {
            app,
            layer: Arc::new(layer),
        })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        environ: &Bound<'py, PyDict>,
        start_response: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let peer = peer_of(environ)?;
        if !self.layer.trusted.contains_peer(peer) {
            return self.app.bind(py).call1((environ, start_response));
        }
        let mut head = http::Request::new(()).into_parts().0;
        for (key, name) in READ {
            let value = bytes_of(environ, key)?.and_then(|v| HeaderValue::from_bytes(&v).ok());
            if let Some(value) = value {
                head.headers.insert(HeaderName::from_static(name), value);
            }
        }
        let https = bytes_of(environ, "wsgi.url_scheme")?.as_deref() == Some(b"https");
        let mut connection = ConnectionInfo::direct(peer, None);
        connection.scheme = if https { Scheme::Https } else { Scheme::Http };
        let before = (head.headers.get(HOST).cloned(), connection.scheme);
        if let Err(refusal) = self.layer.apply(&mut head, &mut connection) {
            return refuse(py, start_response, &refusal, &[]);
        }
        if connection.peer != peer {
            let client = connection
                .peer
                .expect("invariant: a resolved client is an address");
            environ.set_item("REMOTE_ADDR", client.ip().to_string())?;
            let port = match client.port() {
                0 => String::new(),
                port => port.to_string(),
            };
            environ.set_item("REMOTE_PORT", port)?;
        }
        let host = head.headers.get(HOST);
        if connection.scheme != before.1 {
            let scheme = match connection.scheme {
                Scheme::Https => "https",
                Scheme::Http => "http",
            };
            environ.set_item("wsgi.url_scheme", scheme)?;
        }
        if host != before.0.as_ref() {
            if let Some(host) = host {
                set_bytes(environ, "HTTP_HOST", host.as_bytes())?;
            }
        }
        let changed = host != before.0.as_ref()
            || connection.scheme != before.1
            || connection.server_port.is_some();
        if changed {
            set_server_name_and_port(environ, host, &connection)?;
        }
        self.app.bind(py).call1((environ, start_response))
    }
}

/// The connection's peer as the server reported it: REMOTE_ADDR and REMOTE_PORT; `None`
/// when REMOTE_ADDR names no IP address (a Unix socket).
fn peer_of(environ: &Bound<'_, PyDict>) -> PyResult<Option<SocketAddr>> {
    let text = |key| -> PyResult<Option<String>> {
        Ok(bytes_of(environ, key)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    };
    let Some(ip) = text("REMOTE_ADDR")?.and_then(|a| a.parse::<IpAddr>().ok()) else {
        return Ok(None);
    };
    let port = text("REMOTE_PORT")?
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Ok(Some(SocketAddr::new(ip, port)))
}

/// SERVER_NAME and SERVER_PORT as ferrogate's environ makes them behind a proxy
/// (src/wsgi/address_strings.rs): from the Host, with the scheme's default port when it
/// names none; a port the proxy gave wins. Without a Host, the server's own are kept.
fn set_server_name_and_port(
    environ: &Bound<'_, PyDict>,
    host: Option<&HeaderValue>,
    connection: &ConnectionInfo,
) -> PyResult<()> {
    let default_port = match connection.scheme {
        Scheme::Https => "443",
        Scheme::Http => "80",
    };
    if let Some(host) = host.and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty()) {
        let (name, port) = split_host(host);
        environ.set_item("SERVER_NAME", name)?;
        environ.set_item("SERVER_PORT", port.unwrap_or(default_port))?;
    }
    if let Some(port) = connection.server_port {
        environ.set_item("SERVER_PORT", port.to_string())?;
    }
    Ok(())
}
