//! What a trusted proxy says about the client: `Forwarded` (RFC 7239), `X-Forwarded-For`,
//! `-Proto`, `-Ssl`, `-Host` and `-Port`. Only called for peers in `--forwarded-allow-ips`;
//! from anyone else these are ordinary headers. The headers themselves stay as they came.
//! The `ProxyHeaders` middleware (src/middleware/proxy_headers.rs) runs the same resolution
//! with its own trusted list and the headers it is told to honour.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, HeaderValue, FORWARDED, HOST};
use http::request::Parts;
use http::HeaderMap;

use crate::config::IpRanges;
use crate::handler::{ConnectionInfo, Scheme};
use crate::http::error::RequestError;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_SSL: HeaderName = HeaderName::from_static("x-forwarded-ssl");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// Which proxy headers are read: the server reads them all; a `ProxyHeaders` layer those its
/// `headers` option names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Honoured {
    pub forwarded: bool,
    pub x_forwarded_for: bool,
    pub x_forwarded_proto: bool,
    pub x_forwarded_ssl: bool,
    pub x_forwarded_host: bool,
    pub x_forwarded_port: bool,
}

impl Honoured {
    pub const ALL: Honoured = Honoured {
        forwarded: true,
        x_forwarded_for: true,
        x_forwarded_proto: true,
        x_forwarded_ssl: true,
        x_forwarded_host: true,
        x_forwarded_port: true,
    };

    /// The header names a list gives (any case), each one of the six.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Honoured, String> {
        let mut honoured = Honoured {
            forwarded: false,
            x_forwarded_for: false,
            x_forwarded_proto: false,
            x_forwarded_ssl: false,
            x_forwarded_host: false,
            x_forwarded_port: false,
        };
        for name in names {
            let flag = match name.to_ascii_lowercase().as_str() {
                "forwarded" => &mut honoured.forwarded,
                "x-forwarded-for" => &mut honoured.x_forwarded_for,
                "x-forwarded-proto" => &mut honoured.x_forwarded_proto,
                "x-forwarded-ssl" => &mut honoured.x_forwarded_ssl,
                "x-forwarded-host" => &mut honoured.x_forwarded_host,
                "x-forwarded-port" => &mut honoured.x_forwarded_port,
                _ => {
                    return Err(format!(
                        "{name:?} is not a proxy header: Forwarded, X-Forwarded-For, \
                         X-Forwarded-Proto, X-Forwarded-Ssl, X-Forwarded-Host or \
                         X-Forwarded-Port"
                    ))
                }
            };
            *flag = true;
        }
        Ok(honoured)
    }
}

/// Applies a trusted proxy's headers to the request: the client address (`info.peer`), the
/// scheme, the Host the client asked for and the server port.
pub fn resolve(
    parts: &mut Parts,
    info: &mut ConnectionInfo,
    trusted: &IpRanges,
) -> Result<(), RequestError> {
    resolve_honoured(parts, info, trusted, Honoured::ALL)
}

/// `resolve`, reading only the `honoured` headers (`Forwarded`, when honoured and present,
/// wins over the X-Forwarded-* ones, as in `resolve`).
pub fn resolve_honoured(
    parts: &mut Parts,
    info: &mut ConnectionInfo,
    trusted: &IpRanges,
    honoured: Honoured,
) -> Result<(), RequestError> {
    let headers = &mut parts.headers;
    if honoured.forwarded && headers.contains_key(FORWARDED) {
        return resolve_forwarded(headers, info, trusted);
    }
    if honoured.x_forwarded_for {
        let hops = list(headers, &X_FORWARDED_FOR);
        if let Some(client) = untrusted_hop(&hops, trusted, parse_node) {
            info.peer = Some(client);
        }
    }
    let read = |on: bool, name: &HeaderName| if on { first(headers, name) } else { None };
    let proto = read(honoured.x_forwarded_proto, &X_FORWARDED_PROTO)
        .map(|p| p.eq_ignore_ascii_case("https"));
    let ssl =
        read(honoured.x_forwarded_ssl, &X_FORWARDED_SSL).map(|s| s.eq_ignore_ascii_case("on"));
    let https = match (proto, ssl) {
        (Some(proto), Some(ssl)) if proto != ssl => {
            return Err(RequestError::malformed(
                "X-Forwarded-Proto and X-Forwarded-Ssl disagree",
            ))
        }
        (Some(https), _) | (None, Some(https)) => Some(https),
        (None, None) => None,
    };
    if let Some(https) = https {
        info.scheme = if https { Scheme::Https } else { Scheme::Http };
    }
    let host = read(honoured.x_forwarded_host, &X_FORWARDED_HOST).map(str::to_owned);
    let port = read(honoured.x_forwarded_port, &X_FORWARDED_PORT).and_then(|p| p.parse().ok());
    if let Some(host) = host {
        set_host(headers, &host);
    }
    if let Some(port) = port {
        info.server_port = Some(port);
    }
    Ok(())
}

/// RFC 7239: the element of the right-most hop that is not itself a trusted proxy speaks
/// for the client.
fn resolve_forwarded(
    headers: &mut HeaderMap,
    info: &mut ConnectionInfo,
    trusted: &IpRanges,
) -> Result<(), RequestError> {
    let elements: Vec<Element> = list(headers, &FORWARDED)
        .iter()
        .map(|text| Element::parse(text))
        .collect();
    let chosen = elements
        .iter()
        .rev()
        .find(|element| {
            element
                .for_node
                .as_deref()
                .and_then(parse_node)
                .is_none_or(|node| !trusted.contains(node.ip()))
        })
        .or(elements.first());
    let Some(element) = chosen else {
        return Ok(());
    };
    if let Some(client) = element.for_node.as_deref().and_then(parse_node) {
        info.peer = Some(client);
    }
    match element.proto.as_deref() {
        Some(proto) if proto.eq_ignore_ascii_case("https") => info.scheme = Scheme::Https,
        Some(proto) if proto.eq_ignore_ascii_case("http") => info.scheme = Scheme::Http,
        _ => {}
    }
    if let Some(host) = element.host.clone() {
        set_host(headers, &host);
    }
    Ok(())
}

/// The right-most entry of `hops` that is not a trusted proxy (a proxy appends the address
/// it saw, so entries left of the first untrusted one may be forged); all trusted: the
/// left-most. `None` when an entry read on the way is not an address.
fn untrusted_hop(
    hops: &[String],
    trusted: &IpRanges,
    parse: impl Fn(&str) -> Option<SocketAddr>,
) -> Option<SocketAddr> {
    let mut last = None;
    for hop in hops.iter().rev() {
        let address = parse(hop)?;
        if !trusted.contains(address.ip()) {
            return Some(address);
        }
        last = Some(address);
    }
    last
}

/// Every comma-separated item of every `name` header, trimmed (quotes kept).
fn list(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(split_outside_quotes(','))
        .filter(|item| !item.is_empty())
        .collect()
}

fn first<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(value.split(',').next()?.trim()).filter(|v| !v.is_empty())
}

fn split_outside_quotes(separator: char) -> impl Fn(&str) -> Vec<String> {
    move |text| {
        let mut items = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        for c in text.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    current.push(c);
                }
                c if c == separator && !quoted => items.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        items.push(current);
        items
            .into_iter()
            .map(|item| item.trim().to_string())
            .collect()
    }
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80` or `2001:db8::1`; a
/// missing port is 0 (REMOTE_PORT is then empty).
fn parse_node(text: &str) -> Option<SocketAddr> {
    let text = unquote(text.trim());
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Some(address);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

fn set_host(headers: &mut HeaderMap, host: &str) {
    if let Ok(value) = HeaderValue::from_str(unquote(host)) {
        headers.insert(HOST, value);
    }
}

/// One hop of a `Forwarded` header.
#[derive(Debug, Default)]
struct Element {
    for_node: Option<String>,
    proto: Option<String>,
    host: Option<String>,
}

impl Element {
    fn parse(text: &str) -> Element {
        let mut element = Element::default();
        for pair in split_outside_quotes(';')(text) {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let value = Some(unquote(value.trim()).to_string());
            match name.trim().to_ascii_lowercase().as_str() {
                "for" => element.for_node = value,
                "proto" => element.proto = value,
                "host" => element.host = value,
                _ => {}
            }
        }
        element
    }
}

#[cfg(test)]
#[path = "forwarded_tests.rs"]
mod tests;
