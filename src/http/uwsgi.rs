//! The uwsgi protocol, as nginx's `uwsgi_pass` and Apache's mod_proxy_uwsgi speak it: a
//! 4-byte header (modifier1, the vars block's size as u16 little-endian, modifier2), the vars
//! block (CGI variables, each a u16-LE-sized key and value), then the body, CONTENT_LENGTH
//! bytes. A packet becomes the same `RequestHead` an HTTP/1 head does, plus what the web
//! server vouches for (client address, scheme, port), so the HTTP/1 driver serves it with
//! the same limits, body handling and response writer: one request per connection, the
//! answer an HTTP/1 status line and headers, as uWSGI sends it.
//!
//! Knows nothing of WSGI: the variables are read here and the environ is built from the
//! head as for any request.

use std::net::{IpAddr, SocketAddr};

use bytes::{Buf, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Uri, Version};

use super::error::RequestError;
use super::h1::{BodyFraming, RequestHead};
use super::limits::Limits;

/// The header before the vars block.
const PACKET_HEADER_BYTES: usize = 4;
/// modifier1 of a WSGI request (uWSGI's "python" plugin number, what nginx sends by default).
const MODIFIER_WSGI: u8 = 0;

/// What the web server in front says of the client, from the vars block. Believed only from
/// a peer in `--forwarded-allow-ips`, as proxy headers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayFacts {
    /// REMOTE_ADDR and REMOTE_PORT (port 0 when not given).
    pub client: Option<SocketAddr>,
    /// HTTPS "on"/"1", or UWSGI_SCHEME / wsgi.url_scheme "https".
    pub https: bool,
    /// SERVER_PORT.
    pub server_port: Option<u16>,
}

/// Takes one whole uwsgi request packet (header and vars) off the front of `buf`; `Ok(None)`
/// means more bytes are needed. The body that follows stays in `buf`.
pub fn parse_packet(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, RequestError> {
    if buf.len() < PACKET_HEADER_BYTES {
        return Ok(None);
    }
    if buf[0] != MODIFIER_WSGI {
        return Err(RequestError::malformed(format!(
            "uwsgi packet with modifier1 {}: only 0 (a WSGI request) is served",
            buf[0]
        )));
    }
    let vars_size = u16::from_le_bytes([buf[1], buf[2]]) as usize;
    if buf.len() < PACKET_HEADER_BYTES + vars_size {
        return Ok(None);
    }
    buf.advance(PACKET_HEADER_BYTES);
    let vars = buf.split_to(vars_size);
    let mut request = PacketRequest::default();
    let mut rest = &vars[..];
    while !rest.is_empty() {
        let key = take_sized(&mut rest)?;
        let value = take_sized(&mut rest)?;
        request.note(key, value, limits)?;
    }
    request.into_head(limits).map(Some)
}

/// One u16-LE-sized string of the vars block.
fn take_sized<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], RequestError> {
    let truncated = || RequestError::malformed("uwsgi vars block cut inside a variable");
    let [low, high, ..] = **rest else {
        return Err(truncated());
    };
    let size = u16::from_le_bytes([low, high]) as usize;
    let text = rest.get(2..2 + size).ok_or_else(truncated)?;
    *rest = &rest[2 + size..];
    Ok(text)
}

/// The variables that make the request, as they are read.
#[derive(Default)]
struct PacketRequest<'a> {
    method: Option<&'a [u8]>,
    request_uri: Option<&'a [u8]>,
    path_info: Option<&'a [u8]>,
    query_string: Option<&'a [u8]>,
    protocol: Option<&'a [u8]>,
    content_length: Option<&'a [u8]>,
    remote_addr: Option<&'a [u8]>,
    remote_port: Option<&'a [u8]>,
    server_port: Option<&'a [u8]>,
    https: bool,
    headers: HeaderMap,
}

impl<'a> PacketRequest<'a> {
    fn note(
        &mut self,
        key: &'a [u8],
        value: &'a [u8],
        limits: &Limits,
    ) -> Result<(), RequestError> {
        match key {
            b"REQUEST_METHOD" => self.method = Some(value),
            b"REQUEST_URI" => self.request_uri = Some(value),
            b"PATH_INFO" => self.path_info = Some(value),
            b"QUERY_STRING" => self.query_string = Some(value),
            b"SERVER_PROTOCOL" => self.protocol = Some(value),
            b"REMOTE_ADDR" => self.remote_addr = Some(value),
            b"REMOTE_PORT" => self.remote_port = Some(value),
            b"SERVER_PORT" => self.server_port = Some(value),
            b"HTTPS" => self.https |= matches!(value, b"on" | b"ON" | b"1"),
            b"UWSGI_SCHEME" | b"wsgi.url_scheme" => self.https |= value == b"https",
            b"CONTENT_LENGTH" => {
                self.content_length = Some(value);
                self.header(CONTENT_LENGTH, value, limits)?;
            }
            b"CONTENT_TYPE" => self.header(CONTENT_TYPE, value, limits)?,
            _ => {
                if let Some(name) = key.strip_prefix(b"HTTP_") {
                    // CGI's HTTP_X_FOO is the field x-foo (RFC 3875 §4.1.18).
                    let name: Vec<u8> = name
                        .iter()
                        .map(|&b| {
                            if b == b'_' {
                                b'-'
                            } else {
                                b.to_ascii_lowercase()
                            }
                        })
                        .collect();
                    let name = HeaderName::from_bytes(&name).map_err(|_| {
                        RequestError::malformed("invalid header name in a uwsgi HTTP_ variable")
                    })?;
                    // The CGI names of these two come without the HTTP_ prefix.
                    if name != CONTENT_LENGTH && name != CONTENT_TYPE {
                        self.header(name, value, limits)?;
                    }
                }
                // Other variables (SCRIPT_NAME, SERVER_NAME, DOCUMENT_ROOT...) are the web
                // server's own; the environ is built from the request as for HTTP.
            }
        }
        Ok(())
    }

    fn header(
        &mut self,
        name: HeaderName,
        value: &[u8],
        limits: &Limits,
    ) -> Result<(), RequestError> {
        if value.is_empty() && (name == CONTENT_LENGTH || name == CONTENT_TYPE) {
            return Ok(()); // nginx's uwsgi_params always send both, empty when absent.
        }
        // The same limits as an HTTP/1 field line "name: value".
        if name.as_str().len() + 2 + value.len() > limits.header_field_bytes {
            return Err(RequestError::FieldTooLarge {
                limit: limits.header_field_bytes,
            });
        }
        if self.headers.len() >= limits.header_fields {
            return Err(RequestError::TooManyFields {
                limit: limits.header_fields,
            });
        }
        let value = HeaderValue::from_bytes(value).map_err(|_| {
            RequestError::malformed("invalid header value in a uwsgi variable (RFC 9110 §5.5)")
        })?;
        self.headers.append(name, value);
        Ok(())
    }

    fn into_head(mut self, limits: &Limits) -> Result<RequestHead, RequestError> {
        let method = self
            .method
            .ok_or_else(|| RequestError::malformed("uwsgi packet without REQUEST_METHOD"))?;
        let method = Method::from_bytes(method)
            .map_err(|_| RequestError::malformed("invalid REQUEST_METHOD (RFC 9110 §9.1)"))?;
        let target = self.target();
        if target.len() > limits.request_line_bytes {
            return Err(RequestError::LineTooLong {
                limit: limits.request_line_bytes,
            });
        }
        let uri = Uri::from_maybe_shared(target)
            .ok()
            .filter(|uri| uri.scheme().is_none() && uri.path().starts_with(['/', '*']))
            .ok_or_else(|| RequestError::malformed("invalid REQUEST_URI (RFC 9112 §3.2)"))?;
        let framing = match self.content_length.filter(|text| !text.is_empty()) {
            None => BodyFraming::Empty,
            Some(text) => {
                let length = std::str::from_utf8(text)
                    .ok()
                    .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|text| text.parse::<u64>().ok())
                    .ok_or_else(|| RequestError::malformed("invalid CONTENT_LENGTH"))?;
                if let Some(limit) = limits.body_bytes.filter(|&limit| length > limit) {
                    return Err(RequestError::BodyTooLarge { limit });
                }
                match length {
                    0 => BodyFraming::Empty,
                    _ => BodyFraming::Length(length),
                }
            }
        };
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = method;
        parts.uri = uri;
        parts.version = match self.protocol {
            Some(b"HTTP/1.0") => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        parts.headers = std::mem::take(&mut self.headers);
        let facts = GatewayFacts {
            client: self.client(),
            https: self.https,
            server_port: parse_number(self.server_port),
        };
        Ok(RequestHead {
            parts,
            framing,
            // One request per connection: nginx closes after the answer.
            keep_alive: false,
            expects_continue: false,
            // The web server's own variables say who the client is, not forwarded headers.
            has_proxy_headers: false,
            gateway: Some(Box::new(facts)),
        })
    }

    /// REQUEST_URI as the client sent it, or PATH_INFO (re-encoded) and QUERY_STRING.
    fn target(&self) -> Vec<u8> {
        if let Some(uri) = self.request_uri.filter(|uri| !uri.is_empty()) {
            return uri.to_vec();
        }
        let path = self
            .path_info
            .filter(|path| !path.is_empty())
            .unwrap_or(b"/");
        let mut target: Vec<u8> = percent_encoding::percent_encode(path, PATH)
            .collect::<String>()
            .into();
        if let Some(query) = self.query_string.filter(|query| !query.is_empty()) {
            target.push(b'?');
            target.extend_from_slice(query);
        }
        target
    }

    fn client(&self) -> Option<SocketAddr> {
        let ip: IpAddr = std::str::from_utf8(self.remote_addr?).ok()?.parse().ok()?;
        Some(SocketAddr::new(
            ip,
            parse_number(self.remote_port).unwrap_or(0),
        ))
    }
}

fn parse_number(text: Option<&[u8]>) -> Option<u16> {
    std::str::from_utf8(text?).ok()?.parse().ok()
}

/// What a decoded PATH_INFO must escape to be a request target again.
const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

#[cfg(test)]
#[path = "uwsgi_tests.rs"]
mod tests;
