//! REMOTE_ADDR/REMOTE_PORT and SERVER_NAME/SERVER_PORT as Python strings, remembered per
//! thread: a keep-alive connection sends many requests, and formatting its addresses anew
//! for each was a tenth of a hello-world request's instructions (benches/callgrind).

use std::hash::Hash;
use std::net::SocketAddr;

use foldhash::HashMap;

use http::HeaderValue;

use crate::handler::{ConnectionInfo, Scheme};
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Distinct peers (or Host values) remembered before the cache starts over. Bounded because
/// both are chosen by clients.
const MAX_REMEMBERED: usize = 1024;

/// Longest Host value remembered; longer ones (no real host name is) are formatted each time.
const MAX_REMEMBERED_HOST_BYTES: usize = 255;

// PERF: foldhash, not SipHash: these maps are looked up on every request, and they are
// bounded (MAX_REMEMBERED), so colliding keys chosen by a client cost little.
#[derive(Default)]
pub struct AddressStrings {
    peers: HashMap<Option<SocketAddr>, [Py<PyString>; 2]>,
    /// By Host value, an owned copy: a `HeaderValue` shares (and would keep alive) the
    /// whole request head.
    hosts: HashMap<Vec<u8>, [Py<PyString>; 2]>,
    /// Requests without a Host header, by the socket the client connected to.
    locals: HashMap<Option<SocketAddr>, [Py<PyString>; 2]>,
}

/// Splits a Host header value into name and optional port (`[::1]:80` keeps its brackets).
pub(crate) fn split_host(host: &str) -> (&str, Option<&str>) {
    let port_sep = if host.starts_with('[') {
        host.rfind("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    };
    match port_sep {
        Some(i) => (&host[..i], Some(&host[i + 1..])),
        None => (host, None),
    }
}

fn pair(py: Python<'_>, first: &str, second: &str) -> [Py<PyString>; 2] {
    [
        PyString::new(py, first).unbind(),
        PyString::new(py, second).unbind(),
    ]
}

/// The value for `key`, made and remembered on first use. `key` is borrowed, so a hit
/// allocates nothing.
fn remember<'m, K, Q, V>(map: &'m mut HashMap<K, V>, key: &Q, make: impl FnOnce() -> V) -> &'m V
where
    K: std::borrow::Borrow<Q> + Hash + Eq,
    Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
{
    if !map.contains_key(key) {
        if map.len() >= MAX_REMEMBERED {
            map.clear();
        }
        map.insert(key.to_owned(), make());
    }
    &map[key]
}

impl AddressStrings {
    /// REMOTE_ADDR and REMOTE_PORT; empty for a Unix-socket peer, which matches no allow-list,
    /// and REMOTE_PORT empty when a proxy named the client without its port (port 0).
    pub fn remote<'py>(
        &mut self,
        py: Python<'py>,
        peer: Option<SocketAddr>,
    ) -> [Bound<'py, PyString>; 2] {
        let [addr, port] = remember(&mut self.peers, &peer, || match peer {
            Some(peer) if peer.port() == 0 => pair(py, &peer.ip().to_string(), ""),
            Some(peer) => pair(py, &peer.ip().to_string(), &peer.port().to_string()),
            None => pair(py, "", ""),
        });
        [addr.bind(py).clone(), port.bind(py).clone()]
    }

    /// SERVER_NAME and SERVER_PORT: from the Host header (the scheme's default port if it
    /// names none), else from the socket the client connected to; a port a trusted proxy gave
    /// wins over both.
    pub fn server<'py>(
        &mut self,
        py: Python<'py>,
        host: Option<&HeaderValue>,
        connection: &ConnectionInfo,
    ) -> [Bound<'py, PyString>; 2] {
        let host = host.and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty());
        let local = connection.local;
        if connection.scheme == Scheme::Https || connection.server_port.is_some() {
            // Only behind a proxy (or TLS): rare enough to format each time.
            let default_port = match connection.scheme {
                Scheme::Https => "443",
                Scheme::Http => "80",
            };
            let (name, port) = match (host, local) {
                (Some(host), _) => {
                    let (name, port) = split_host(host);
                    (name.to_string(), port.unwrap_or(default_port).to_string())
                }
                (None, Some(local)) => (local.ip().to_string(), local.port().to_string()),
                (None, None) => ("localhost".to_string(), default_port.to_string()),
            };
            let port = connection.server_port.map_or(port, |port| port.to_string());
            let [name, port] = pair(py, &name, &port);
            return [name.into_bound(py), port.into_bound(py)];
        }
        let make = || match (host, local) {
            (Some(host), _) => {
                let (name, port) = split_host(host);
                pair(py, name, port.unwrap_or("80"))
            }
            (None, Some(local)) => pair(py, &local.ip().to_string(), &local.port().to_string()),
            (None, None) => pair(py, "localhost", "80"),
        };
        let [name, port] = match host {
            Some(host) if host.len() > MAX_REMEMBERED_HOST_BYTES => {
                let [name, port] = make();
                return [name.into_bound(py), port.into_bound(py)];
            }
            Some(host) => remember(&mut self.hosts, host.as_bytes(), make),
            None => remember(&mut self.locals, &local, make),
        };
        [name.bind(py).clone(), port.bind(py).clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_splits_into_name_and_port() {
        assert_eq!(
            split_host("example.com:8080"),
            ("example.com", Some("8080"))
        );
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("[::1]:80"), ("[::1]", Some("80")));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
    }

    #[test]
    fn the_cache_starts_over_when_full() {
        let mut map = HashMap::default();
        for i in 0..MAX_REMEMBERED {
            remember(&mut map, &i, || i);
        }
        assert_eq!(map.len(), MAX_REMEMBERED);
        remember(&mut map, &usize::MAX, || 0);
        assert_eq!(map.len(), 1);
    }
}
