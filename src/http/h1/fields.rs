//! What a request head's fields and method say that the server itself must act on: the body
//! framing (RFC 9112 §6), keep-alive, `Expect`, the Host count, proxy headers; and gunicorn's
//! rule for a conventional method.

use http::header::{
    HeaderName, CONNECTION, CONTENT_LENGTH, EXPECT, FORWARDED, HOST, TRANSFER_ENCODING,
};
use http::request::Parts;
use http::{HeaderMap, Version};

use crate::http::error::RequestError;
use crate::http::limits::Limits;

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Empty,
    Length(u64),
    Chunked,
}

/// Shortest and longest conventional method. Why: gunicorn refuses others by default, and a
/// gunicorn command line must carry over with its behaviour.
const METHOD_LENGTHS: std::ops::RangeInclusive<usize> = 3..=20;

/// A method as gunicorn accepts one by default: 3 to 20 of `A-Z`, `0-9`, `-`, `_`. Lowercase
/// methods are refused because a lowercase `get` is not `GET` (methods are case-sensitive,
/// RFC 9110 §9.1) and apps that compare with "GET" would misroute it.
pub fn is_conventional_method(method: &[u8]) -> bool {
    METHOD_LENGTHS.contains(&method.len())
        && method
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The comma-separated tokens of a header value, trimmed.
fn value_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(|token| token.trim_ascii())
}

/// The comma-separated tokens of every `name` header, trimmed.
fn tokens(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|value| value_tokens(value.as_bytes()))
}

/// Whether `name` is one a proxy sets to describe the client (`X-Forwarded-*`); `Forwarded`
/// is a standard name and compared as one.
fn is_forwarded_extension(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    name.len() > 12 && name[0] == b'x' && name.starts_with(b"x-forwarded-")
}

/// What the headers that decide framing and keep-alive say, noted as the head's lines are
/// read. PERF: one comparison per line instead of a header-map lookup per question
/// (benches/callgrind hello).
#[derive(Default)]
pub struct FramingHeaders {
    transfer_encoding: bool,
    has_content_length: bool,
    /// Every Content-Length token so far, when all were the same number.
    content_length: Option<u64>,
    /// Content-Length values seen (more than one: identical duplicates, to be merged).
    pub content_length_tokens: u32,
    /// Why the Content-Length headers cannot be used, if they cannot.
    content_length_error: Option<&'static str>,
    /// A `Connection: close` token (RFC 9112 §9.6).
    pub close_asked: bool,
    /// A `Connection: keep-alive` token (HTTP/1.0 keep-alive).
    pub keep_alive_asked: bool,
    /// Whether the first `Expect` header is `100-continue` (RFC 9110 §10.1.1).
    pub expects_continue: Option<bool>,
    /// Host lines: exactly one is allowed (RFC 9112 §3.2).
    pub hosts: u32,
    /// A `Forwarded` or `X-Forwarded-*` line.
    pub proxy_headers: bool,
}

impl FramingHeaders {
    pub fn note(&mut self, name: &HeaderName, value: &[u8]) {
        if name == HOST {
            self.hosts += 1;
        } else if name == CONTENT_LENGTH {
            self.has_content_length = true;
            for token in value_tokens(value) {
                self.content_length_tokens += 1;
                self.note_content_length(token);
            }
        } else if name == TRANSFER_ENCODING {
            self.transfer_encoding = true;
        } else if name == CONNECTION {
            for token in value_tokens(value) {
                self.close_asked |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive_asked |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name == EXPECT && self.expects_continue.is_none() {
            self.expects_continue = Some(value.eq_ignore_ascii_case(b"100-continue"));
        } else if name == FORWARDED || is_forwarded_extension(name) {
            self.proxy_headers = true;
        }
    }

    /// The one Content-Length, when the headers give a usable one.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
            .filter(|_| self.content_length_error.is_none())
    }

    fn note_content_length(&mut self, token: &[u8]) {
        if self.content_length_error.is_some() {
            return;
        }
        let value = std::str::from_utf8(token)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok());
        match (value, self.content_length) {
            (None, _) => {
                self.content_length_error =
                    Some("Content-Length is not a number of bytes (RFC 9110 §8.6)")
            }
            (Some(value), Some(seen)) if seen != value => {
                self.content_length_error =
                    Some("conflicting Content-Length values (RFC 9112 §6.3)")
            }
            (Some(value), _) => self.content_length = Some(value),
        }
    }
}

/// One framing or none: a request that could be read two ways is refused, never guessed at
/// (request smuggling, RFC 9112 §6.1 and §11.2). A declared body over the limit is refused
/// before a byte of it is read.
pub fn body_framing(
    parts: &Parts,
    noted: &FramingHeaders,
    limits: &Limits,
) -> Result<BodyFraming, RequestError> {
    let headers = &parts.headers;
    if noted.transfer_encoding {
        if parts.version == Version::HTTP_10 {
            return Err(RequestError::malformed(
                "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)",
            ));
        }
        if noted.has_content_length {
            return Err(RequestError::malformed(
                "both Transfer-Encoding and Content-Length (RFC 9112 §6.1)",
            ));
        }
        let codings: Vec<&[u8]> = tokens(headers, TRANSFER_ENCODING).collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            [.., last] if !last.eq_ignore_ascii_case(b"chunked") => Err(RequestError::malformed(
                "chunked is not the final transfer coding (RFC 9112 §6.3)",
            )),
            _ => Err(RequestError::UnsupportedCoding(
                String::from_utf8_lossy(&codings.join(&b", "[..])).into_owned(),
            )),
        };
    }
    if let Some(why) = noted.content_length_error {
        return Err(RequestError::malformed(why));
    }
    match (noted.content_length, limits.body_bytes) {
        (Some(length), Some(limit)) if length > limit => Err(RequestError::BodyTooLarge { limit }),
        (None | Some(0), _) => Ok(BodyFraming::Empty),
        (Some(length), _) => Ok(BodyFraming::Length(length)),
    }
}
