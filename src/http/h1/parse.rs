//! The request head: parsed out of the connection's buffer with httparse, held to RFC 9112 and
//! the server's limits (one unambiguous body framing, a known version, a conventional method,
//! a well-formed target, at most one Host), and turned into `http` types whose header values
//! share the received bytes. The checks httparse does not make are `target.rs` and `fields.rs`.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Uri, Version};
use smallvec::SmallVec;

use super::fields::{body_framing, is_conventional_method, FramingHeaders};
use super::target::{check_target, TargetForm};
use crate::http::error::RequestError;
use crate::http::limits::{Limits, MAX_HEAD_BYTES};
use crate::http::uwsgi::GatewayFacts;

pub use super::fields::BodyFraming;

/// Header fields parsed into storage on the stack; a head with more (where the limit allows
/// them) is parsed again into storage on the heap.
const STACK_HEADERS: usize = 128;

#[derive(Debug)]
pub struct RequestHead {
    pub parts: Parts,
    pub framing: BodyFraming,
    /// Whether the client is willing to send another request on this connection.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending its body.
    pub expects_continue: bool,
    /// A header a proxy sets (`Forwarded`, `X-Forwarded-*`) is present: worth resolving when
    /// the peer is a trusted proxy.
    pub has_proxy_headers: bool,
    /// What a uwsgi packet's web server said of the client (http/uwsgi.rs); `None` for HTTP.
    pub gateway: Option<Box<GatewayFacts>>,
}

/// Takes a complete request head off the front of `buf`; `Ok(None)` means more bytes are
/// needed. Empty lines before a request line are skipped (RFC 9112 §2.2).
pub fn parse_head(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, RequestError> {
    let leading_blank = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if leading_blank > 0 {
        let _ = buf.split_to(leading_blank);
    }
    if limits.header_fields <= STACK_HEADERS {
        // PERF: returned as it is, the head is built in the caller's slot instead of being
        // copied out of a match (benches/callgrind hello).
        return parse_into(buf, limits, limits.header_fields);
    }
    match parse_into(buf, limits, STACK_HEADERS) {
        Err(RequestError::TooManyFields { .. }) => {
            let fields = count_lines(buf).min(limits.header_fields);
            parse_into(buf, limits, fields)
        }
        parsed => parsed,
    }
}

/// Lines in the head at the front of `buf` (an upper bound on its fields), within the cap.
fn count_lines(buf: &[u8]) -> usize {
    let head = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    head.iter().filter(|&&b| b == b'\n').count()
}

/// Parses with room for `fields` header fields: on the stack up to STACK_HEADERS.
fn parse_into(
    buf: &mut BytesMut,
    limits: &Limits,
    fields: usize,
) -> Result<Option<RequestHead>, RequestError> {
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let storage = if fields <= STACK_HEADERS {
        &mut stack[..fields]
    } else {
        heap.resize_with(fields, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut request = httparse::Request::new(&mut []);
    let length = match request.parse_with_uninit_headers(buf, storage) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            // The head may be whole (the caller then parses it again with room for more
            // fields), so only the request line can be judged here, not the head cap.
            check_request_line(buf, limits)?;
            return Err(RequestError::TooManyFields {
                limit: limits.header_fields,
            });
        }
        // Parsed again at most once: the downgraded line has a version httparse knows.
        Err(httparse::Error::Version) if downgrade_minor_version(buf) => {
            return parse_head(buf, limits)
        }
        Err(httparse::Error::Version) => return Err(RequestError::UnsupportedVersion),
        Err(error) => return Err(RequestError::malformed(describe(error))),
    };
    if length > MAX_HEAD_BYTES {
        return Err(RequestError::HeadTooLarge);
    }
    // PERF: the request line ends where the first field starts, no scan needed.
    let line_length = match request.headers.first() {
        Some(first) => line_length(
            buf,
            first.name.as_ptr() as usize - buf.as_ptr() as usize - 1,
        ),
        None => request_line_length(buf),
    };
    if line_length > limits.request_line_bytes {
        return Err(RequestError::LineTooLong {
            limit: limits.request_line_bytes,
        });
    }
    let base = buf.as_ptr() as usize;
    let offset = |part: &[u8]| part.as_ptr() as usize - base;
    let method_text = request.method.unwrap_or_default();
    if !limits.any_method && !is_conventional_method(method_text.as_bytes()) {
        return Err(RequestError::malformed(format!(
            "method {:?} is not 3 to 20 of A-Z, 0-9, '-', '_' (--permit-unconventional-methods)",
            shortened(method_text)
        )));
    }
    let method = Method::from_bytes(method_text.as_bytes())
        .map_err(|_| RequestError::malformed("invalid method (RFC 9110 §9.1)"))?;
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let target = request.path.unwrap_or_default();
    let form = check_target(&method, target.as_bytes())?;
    let target_range = (offset(target.as_bytes()), target.len());
    // PERF: on the stack for a usual head: no allocation per request (perf, deny403).
    let mut names: SmallVec<[(HeaderName, usize, usize); 16]> = SmallVec::new();
    let mut noted = FramingHeaders::default();
    for header in request.headers.iter() {
        let line = offset(header.value) + header.value.len() - offset(header.name.as_bytes());
        if line > limits.header_field_bytes {
            return Err(RequestError::FieldTooLarge {
                limit: limits.header_field_bytes,
            });
        }
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| RequestError::malformed("invalid header field name (RFC 9110 §5.1)"))?;
        noted.note(&name, header.value);
        names.push((name, offset(header.value), header.value.len()));
    }
    let bytes: Bytes = buf.split_to(length).freeze();
    let uri = Uri::from_maybe_shared(bytes.slice(target_range.0..target_range.0 + target_range.1))
        .map_err(|_| RequestError::malformed("invalid request target (RFC 9112 §3.2)"))?;
    let mut headers = HeaderMap::with_capacity(names.len());
    // Drained, not moved: the stack storage stays where it is.
    for (name, start, len) in names.drain(..) {
        // PERF: httparse has refused every byte HeaderValue would (RFC 9110 §5.5: HTAB, SP,
        // VCHAR and obs-text pass), so the bytes are not checked a second time
        // (benches/callgrind hello; the sets are compared byte by byte in
        // `httparse_refuses_every_byte_a_header_value_may_not_hold`).
        // SAFETY: not memory safety: http's only requirement is that the bytes are a valid
        // field value, which httparse checked above.
        let value =
            unsafe { HeaderValue::from_maybe_shared_unchecked(bytes.slice(start..start + len)) };
        headers.append(name, value);
    }
    match noted.hosts {
        0 if version == Version::HTTP_11 => {
            return Err(RequestError::malformed(
                "HTTP/1.1 request without Host (RFC 9112 §3.2)",
            ))
        }
        0 | 1 => {}
        _ => {
            return Err(RequestError::malformed(
                "more than one Host (RFC 9112 §3.2)",
            ))
        }
    }
    if form == TargetForm::Absolute {
        // RFC 9112 §3.2.2: the target's authority replaces the Host field.
        let authority = uri
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
            .ok_or_else(|| {
                RequestError::malformed("absolute-form target without a host (RFC 9112 §3.2.2)")
            })?;
        headers.insert(HOST, authority);
    }
    if noted.content_length_tokens > 1 {
        // Identical values were merged (RFC 9112 §6.3 rule 5): the app sees the one number.
        if let Some(length) = noted.content_length() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    // PERF: the empty map `Request::new` made holds no memory ("will not allocate", says
    // `HeaderMap::new`), so it is forgotten rather than run through its drop (benches/callgrind
    // hello: 64 instructions).
    std::mem::forget(std::mem::replace(&mut parts.headers, headers));
    let framing = body_framing(&parts, &noted, limits)?;
    let keep_alive = match version {
        Version::HTTP_10 => noted.keep_alive_asked,
        _ => !noted.close_asked,
    };
    let expects_continue = version == Version::HTTP_11
        && framing != BodyFraming::Empty
        && noted.expects_continue == Some(true);
    Ok(Some(RequestHead {
        parts,
        framing,
        keep_alive,
        expects_continue,
        has_proxy_headers: noted.proxy_headers,
        gateway: None,
    }))
}

/// The limits that can be judged before the head is complete, so a client cannot make the
/// server buffer up to the head cap before it is told no.
fn check_partial(buf: &[u8], limits: &Limits) -> Result<(), RequestError> {
    check_request_line(buf, limits)?;
    if buf.len() >= MAX_HEAD_BYTES {
        return Err(RequestError::HeadTooLarge);
    }
    Ok(())
}

fn check_request_line(buf: &[u8], limits: &Limits) -> Result<(), RequestError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    let line = line_end.map_or(buf.len(), |end| line_length(buf, end));
    if line > limits.request_line_bytes {
        return Err(RequestError::LineTooLong {
            limit: limits.request_line_bytes,
        });
    }
    Ok(())
}

/// The request line's length without its line ending, in a buffer holding a whole head.
fn request_line_length(buf: &[u8]) -> usize {
    let end = buf
        .iter()
        .position(|&b| b == b'\n')
        .expect("invariant: a complete head has a line end");
    line_length(buf, end)
}

fn line_length(buf: &[u8], newline_at: usize) -> usize {
    match newline_at.checked_sub(1) {
        Some(before) if buf[before] == b'\r' => before,
        _ => newline_at,
    }
}

/// What httparse found wrong, in words that name the rule.
fn describe(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => {
            "invalid header field name, whitespace before its colon, or a folded line (RFC 9112 §5)"
        }
        httparse::Error::HeaderValue => "control character in a header field value (RFC 9110 §5.5)",
        httparse::Error::NewLine => "invalid line ending (RFC 9112 §2.2)",
        httparse::Error::Token => "invalid method (RFC 9110 §9.1)",
        _ => "invalid request line (RFC 9112 §3)",
    }
}

/// A client's text, cut short for a log line.
fn shortened(text: &str) -> &str {
    match text.char_indices().nth(32) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// RFC 9110 §2.5: a request of a higher minor version than ours "SHOULD" be processed as the
/// highest minor version we implement. httparse knows only 1.0 and 1.1, so `HTTP/1.2`..`1.9`
/// at the end of the request line becomes `HTTP/1.1` in the buffer; returns whether it did.
fn downgrade_minor_version(buf: &mut BytesMut) -> bool {
    const PREFIX: &[u8] = b" HTTP/1.";
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let line = &buf[..line_end];
    let Some(minor_at) = line.len().checked_sub(1) else {
        return false;
    };
    let has_higher_minor = line.len() > PREFIX.len()
        && line[..minor_at].ends_with(PREFIX)
        && matches!(line[minor_at], b'2'..=b'9');
    if has_higher_minor {
        buf[minor_at] = b'1';
    }
    has_higher_minor
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
