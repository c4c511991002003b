//! `ProxyHeaders`: the server's own proxy-header resolution (http/forwarded.rs) as a layer,
//! with its own trusted list and the headers it is told to honour. For an app composed in
//! paste.deploy (`egg:ferrogate#proxyheaders`) that says in its ini whom it trusts, rather
//! than in `--forwarded-allow-ips`. Lifted, it rewrites the request the walk carries, so the
//! app's environ is exactly what the server's resolution makes; as a WSGI object
//! (src/python/middleware/proxy_headers.rs) it runs the same function on the environ.

use http::request::Parts;

use super::refusal::Refusal;
use crate::config::IpRanges;
use crate::handler::ConnectionInfo;
use crate::http::forwarded::{self, Honoured};

pub struct ProxyHeaders {
    /// Peers whose headers are believed; empty (the default) trusts nobody.
    pub trusted: IpRanges,
    pub honoured: Honoured,
}

impl ProxyHeaders {
    /// Applies what a trusted peer's headers say to `head` (Host) and `connection` (client,
    /// scheme, server port); from any other peer, nothing. Headers that contradict each
    /// other (`X-Forwarded-Proto: https` with `X-Forwarded-Ssl: off`) are a 400, as the
    /// server answers them.
    pub fn apply(&self, head: &mut Parts, connection: &mut ConnectionInfo) -> Result<(), Refusal> {
        if !self.trusted.contains_peer(connection.peer) {
            return Ok(());
        }
        forwarded::resolve_honoured(head, connection, &self.trusted, self.honoured)
            .map_err(|_| Refusal::BadRequest)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::handler::Scheme;

    fn request(headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn layer(trusted: &str, honoured: Honoured) -> ProxyHeaders {
        ProxyHeaders {
            trusted: trusted.parse().unwrap(),
            honoured,
        }
    }

    fn from(peer: &str) -> ConnectionInfo {
        ConnectionInfo::direct(Some(peer.parse::<SocketAddr>().unwrap()), None)
    }

    const PROXIED: &[(&str, &str)] = &[
        ("host", "internal:8080"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
    ];

    #[test]
    fn an_empty_trusted_list_believes_nobody() {
        let (mut head, mut connection) = (request(PROXIED), from("127.0.0.1:5000"));
        layer("", Honoured::ALL)
            .apply(&mut head, &mut connection)
            .unwrap();
        assert_eq!(connection.peer, Some("127.0.0.1:5000".parse().unwrap()));
        assert_eq!(connection.scheme, Scheme::Http);
        assert_eq!(head.headers["host"], "internal:8080");
    }

    #[test]
    fn a_trusted_peer_names_client_scheme_and_host() {
        let (mut head, mut connection) = (request(PROXIED), from("10.0.0.2:5000"));
        layer("10.0.0.0/8", Honoured::ALL)
            .apply(&mut head, &mut connection)
            .unwrap();
        assert_eq!(connection.peer, Some("203.0.113.7:0".parse().unwrap()));
        assert_eq!(connection.scheme, Scheme::Https);
        assert_eq!(head.headers["host"], "api.example.com");
    }

    #[test]
    fn only_the_honoured_headers_are_read() {
        let honoured = Honoured::from_names(["X-Forwarded-For"]).unwrap();
        let (mut head, mut connection) = (request(PROXIED), from("10.0.0.2:5000"));
        layer("10.0.0.0/8", honoured)
            .apply(&mut head, &mut connection)
            .unwrap();
        assert_eq!(connection.peer, Some("203.0.113.7:0".parse().unwrap()));
        assert_eq!(connection.scheme, Scheme::Http);
        assert_eq!(head.headers["host"], "internal:8080");
        assert!(Honoured::from_names(["X-Real-IP"]).is_err());
    }

    #[test]
    fn contradicting_scheme_headers_are_a_400() {
        let mut head = request(&[("x-forwarded-proto", "https"), ("x-forwarded-ssl", "off")]);
        let refused = layer("10.0.0.0/8", Honoured::ALL).apply(&mut head, &mut from("10.0.0.2:1"));
        assert_eq!(refused, Err(Refusal::BadRequest));
    }
}
