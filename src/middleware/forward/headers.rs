//! The header rules of a proxy (RFC 9110 §7.6): hop-by-hop fields are removed both ways, with
//! those the `Connection` field names (§7.6.1); the client's address, scheme and host are
//! appended as `X-Forwarded-*` and `Forwarded` (RFC 7239); `Via` (§7.6.3) when asked for.
//! Pure functions on `http::HeaderMap`: no I/O, no policy about where the client came from
//! (the caller passes the address after trusted-proxy resolution).

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use http::header::{CONNECTION, EXPECT, FORWARDED, HOST, TE, TRANSFER_ENCODING, UPGRADE, VIA};
use http::{HeaderMap, HeaderName, HeaderValue};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const TRAILER: HeaderName = HeaderName::from_static("trailer");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// RFC 9110 §7.6.1 names these (and `Proxy-Connection`, which old clients still send).
static HOP_BY_HOP: [HeaderName; 7] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Removes the hop-by-hop fields, and those `Connection` lists, from `headers`.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // PERF: proxy_hello: most heads have none, and one pass over the names is cheaper than a
    // lookup for each of the seven (benches/README.md, issue 16).
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&listed) {
        headers.remove(name);
    }
}

/// What the proxy says about the client it forwards for.
pub struct ClientFacts<'a> {
    /// After trusted-proxy resolution; `None` on a Unix socket.
    pub ip: Option<IpAddr>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The Host the client asked for.
    pub host: Option<&'a HeaderValue>,
}

/// What a request's head becomes on its way to an upstream.
pub struct Rewrite<'a> {
    pub client: ClientFacts<'a>,
    /// `Some(host)`: `Host` is replaced by the upstream's; `None`: the client's is kept.
    pub upstream_host: Option<&'a HeaderValue>,
    /// Adds `Via: 1.1 ferrogate`.
    pub via: bool,
}

/// Rewrites a request's headers for the upstream, in place.
pub fn to_upstream(headers: &mut HeaderMap, rewrite: &Rewrite<'_>) {
    remove_hop_by_hop(headers);
    // The proxy answers `100-continue` itself when it starts reading the body.
    headers.remove(EXPECT);
    let client = &rewrite.client;
    // RFC 7239 §6: an IPv6 address is quoted and bracketed; "unknown" is a token.
    let (for_value, node) = match client.ip {
        Some(IpAddr::V4(ip)) => {
            let text = ipv4_text(ip);
            (text.clone(), text)
        }
        Some(IpAddr::V6(ip)) => (ip.to_string(), format!("\"[{ip}]\"")),
        None => ("unknown".to_owned(), "unknown".to_owned()),
    };
    let mut forwarded = String::with_capacity(64);
    forwarded.push_str("for=");
    forwarded.push_str(&node);
    forwarded.push_str(";proto=");
    forwarded.push_str(client.scheme);
    if let Some(host) = client.host.and_then(|h| h.to_str().ok()) {
        forwarded.push_str(";host=");
        push_quoted(&mut forwarded, host);
    }
    // PERF: proxy_hello: a request that comes with no chain (the usual case) gets its own
    // values as they are, without joining and splitting (benches/README.md, issue 16).
    let x_forwarded_for = match headers.contains_key(&X_FORWARDED_FOR) {
        true => ending_with(&joined(headers, &X_FORWARDED_FOR), &for_value, |e| {
            e == for_value
        }),
        false => for_value,
    };
    set(headers, X_FORWARDED_FOR, x_forwarded_for);
    let proto = match client.scheme {
        "https" => HeaderValue::from_static("https"),
        _ => HeaderValue::from_static("http"),
    };
    headers.insert(X_FORWARDED_PROTO, proto);
    if let Some(host) = client.host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    if headers.contains_key(FORWARDED) {
        let own_for = format!("for={node}");
        let is_client = |element: &str| {
            element
                .split(';')
                .any(|pair| pair.trim().eq_ignore_ascii_case(&own_for))
        };
        forwarded = ending_with(&joined(headers, &FORWARDED), &forwarded, is_client);
    }
    set(headers, FORWARDED, forwarded);
    if rewrite.via {
        let via = joined(headers, &VIA);
        set(headers, VIA, ending_with(&via, "1.1 ferrogate", |_| false));
    }
    if let Some(host) = rewrite.upstream_host {
        headers.insert(HOST, host.clone());
    }
}

/// A Forwarded value that is not a token is a quoted-string (RFC 7239 §4).
fn push_quoted(out: &mut String, value: &str) {
    let is_token = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if is_token {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// `a.b.c.d`, as `Ipv4Addr`'s `Display` writes it, without its formatting machinery (which
/// cost ~1,300 instructions a request in proxy_hello).
fn ipv4_text(ip: Ipv4Addr) -> String {
    let mut text = String::with_capacity(15);
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// The field's values as one comma-separated list.
fn joined(headers: &HeaderMap, name: &HeaderName) -> String {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    values.join(", ")
}

/// A proxy chain (`X-Forwarded-For`, `Forwarded`) that ends with `own`, the client as we
/// resolved it. A chain from a trusted proxy already names the client (that is how it was
/// resolved): what follows it is cut and the client's element replaced by ours, rather than
/// the client named twice; from anyone else, `own` is appended, so the last element is
/// always the one this proxy vouches for.
fn ending_with(chain: &str, own: &str, is_client: impl Fn(&str) -> bool) -> String {
    let elements: Vec<&str> = chain
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let keep = match elements.iter().rposition(|e| is_client(e)) {
        Some(client) => client,
        None => elements.len(),
    };
    let mut out = elements[..keep].join(", ");
    if !out.is_empty() {
        out.push_str(", ");
    }
    out.push_str(own);
    out
}

/// Sets a field to a value built for it; the value's bytes become the field's, uncopied.
fn set(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn hop_by_hop_and_connection_listed_fields_are_removed() {
        let mut headers = map(&[
            ("connection", "close, x-secret"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
        ]);
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers, map(&[("x-kept", "yes")]));
    }

    #[test]
    fn forwarded_fields_are_appended_and_host_rewritten() {
        let host = HeaderValue::from_static("example.com:8443");
        let mut headers = map(&[
            ("host", "example.com:8443"),
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
            ("expect", "100-continue"),
        ]);
        let rewrite = Rewrite {
            client: ClientFacts {
                ip: Some("2001:db8::1".parse().unwrap()),
                scheme: "https",
                host: Some(&host),
            },
            upstream_host: Some(&HeaderValue::from_static("10.0.0.5:8080")),
            via: true,
        };
        to_upstream(&mut headers, &rewrite);
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 2001:db8::1");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "example.com:8443");
        assert_eq!(
            headers["forwarded"],
            "for=203.0.113.9, for=\"[2001:db8::1]\";proto=https;host=\"example.com:8443\""
        );
        assert_eq!(headers["host"], "10.0.0.5:8080");
        assert_eq!(headers["via"], "1.1 ferrogate");
        assert!(headers.get("expect").is_none());
    }

    #[test]
    fn ipv4_text_is_what_display_writes() {
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "127.0.0.1",
            "1.20.199.250",
        ] {
            let ip: Ipv4Addr = text.parse().unwrap();
            assert_eq!(ipv4_text(ip), ip.to_string());
        }
    }

    #[test]
    fn a_host_that_is_not_a_token_is_quoted_with_escapes() {
        let mut out = String::new();
        push_quoted(&mut out, "a\"b\\c:1");
        assert_eq!(out, "\"a\\\"b\\\\c:1\"");
        let mut token = String::new();
        push_quoted(&mut token, "example.com");
        assert_eq!(token, "example.com");
    }

    #[test]
    fn a_chain_that_names_the_client_is_cut_there_not_repeated() {
        let mut headers = map(&[
            ("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.2"),
            (
                "forwarded",
                "for=198.51.100.1, for=203.0.113.9;proto=http, for=10.0.0.2",
            ),
        ]);
        let rewrite = Rewrite {
            client: ClientFacts {
                ip: Some("203.0.113.9".parse().unwrap()),
                scheme: "http",
                host: None,
            },
            upstream_host: None,
            via: false,
        };
        to_upstream(&mut headers, &rewrite);
        assert_eq!(headers["x-forwarded-for"], "198.51.100.1, 203.0.113.9");
        assert_eq!(
            headers["forwarded"],
            "for=198.51.100.1, for=203.0.113.9;proto=http"
        );
    }
}
