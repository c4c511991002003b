//! The request head: parsed out of the connection's buffer with httparse, checked for what
//! RFC 9112 asks of a server (one unambiguous body framing, a known version), and turned into
//! `http` types whose header values share the received bytes.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING,
};
use http::request::Parts;
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};

/// Largest request head (request line plus headers) accepted; beyond it the answer is 431.
/// 64 KiB is well above any browser's and far below what would let a client pin memory.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// Most header lines in one request head; beyond it the answer is 431 (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// Why a request head was refused. Each maps to the status the client is told before the
/// connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    Malformed(String),
    HeadTooLarge,
    UnsupportedCoding(String),
    UnsupportedVersion,
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Malformed(_) => StatusCode::BAD_REQUEST,
            RequestError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            RequestError::UnsupportedCoding(_) => StatusCode::NOT_IMPLEMENTED,
            RequestError::UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Malformed(why) => f.write_str(why),
            RequestError::HeadTooLarge => write!(
                f,
                "request head over {MAX_REQUEST_HEAD_BYTES} bytes or {MAX_HEADERS} header lines"
            ),
            RequestError::UnsupportedCoding(coding) => {
                write!(f, "unsupported transfer coding {coding:?}")
            }
            RequestError::UnsupportedVersion => f.write_str("unsupported HTTP version"),
        }
    }
}

fn malformed(why: impl Into<String>) -> RequestError {
    RequestError::Malformed(why.into())
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Empty,
    Length(u64),
    Chunked,
}

#[derive(Debug)]
pub struct RequestHead {
    pub parts: Parts,
    pub framing: BodyFraming,
    /// Whether the client is willing to send another request on this connection.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending its body.
    pub expects_continue: bool,
}

/// Takes a complete request head off the front of `buf`; `Ok(None)` means more bytes are
/// needed. Empty lines before a request line are skipped (RFC 9112 §2.2).
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<RequestHead>, RequestError> {
    let leading_blank = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if leading_blank > 0 {
        let _ = buf.split_to(leading_blank);
    }
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let length = match request.parse_with_uninit_headers(buf, &mut storage) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_HEAD_BYTES => {
            return Err(RequestError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        // Parsed again at most once: the downgraded line has a version httparse knows.
        Err(httparse::Error::Version) if downgrade_minor_version(buf) => return parse_head(buf),
        Err(httparse::Error::Version) => return Err(RequestError::UnsupportedVersion),
        Err(error) => {
            return Err(malformed(format!(
                "cannot parse the request head ({error})"
            )))
        }
    };
    if length > MAX_REQUEST_HEAD_BYTES {
        return Err(RequestError::HeadTooLarge);
    }
    let base = buf.as_ptr() as usize;
    let offset = |part: &[u8]| part.as_ptr() as usize - base;
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|_| malformed("invalid method"))?;
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let target = request.path.unwrap_or_default();
    let target_range = (offset(target.as_bytes()), target.len());
    let mut names = Vec::with_capacity(request.headers.len());
    let mut framing_headers = FramingHeaders::default();
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| malformed(format!("invalid header name {:?}", header.name)))?;
        framing_headers.note(&name, header.value);
        names.push((name, offset(header.value), header.value.len()));
    }
    let bytes: Bytes = buf.split_to(length).freeze();
    let uri = Uri::from_maybe_shared(bytes.slice(target_range.0..target_range.0 + target_range.1))
        .map_err(|_| malformed("invalid request target"))?;
    let mut headers = HeaderMap::with_capacity(names.len());
    for (name, start, len) in names {
        let value = HeaderValue::from_maybe_shared(bytes.slice(start..start + len))
            .map_err(|_| malformed(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    let framing = body_framing(&parts, &framing_headers)?;
    let keep_alive = match version {
        Version::HTTP_10 => framing_headers.keep_alive_asked,
        _ => !framing_headers.close_asked,
    };
    let expects_continue = version == Version::HTTP_11
        && framing != BodyFraming::Empty
        && framing_headers.expects_continue == Some(true);
    Ok(Some(RequestHead {
        parts,
        framing,
        keep_alive,
        expects_continue,
    }))
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

/// What the headers that decide framing and keep-alive say, noted as the head's lines are
/// read. PERF: one comparison per line instead of a header-map lookup per question
/// (benches/callgrind hello).
#[derive(Default)]
struct FramingHeaders {
    transfer_encoding: bool,
    has_content_length: bool,
    /// Every Content-Length token so far, when all were the same number.
    content_length: Option<u64>,
    /// Why the Content-Length headers cannot be used, if they cannot.
    content_length_error: Option<&'static str>,
    /// A `Connection: close` token (RFC 9112 §9.6).
    close_asked: bool,
    /// A `Connection: keep-alive` token (HTTP/1.0 keep-alive).
    keep_alive_asked: bool,
    /// Whether the first `Expect` header is `100-continue` (RFC 9110 §10.1.1).
    expects_continue: Option<bool>,
}

impl FramingHeaders {
    fn note(&mut self, name: &HeaderName, value: &[u8]) {
        if name == CONTENT_LENGTH {
            self.has_content_length = true;
            for token in value_tokens(value) {
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
        }
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
            (None, _) => self.content_length_error = Some("invalid Content-Length"),
            (Some(value), Some(seen)) if seen != value => {
                self.content_length_error = Some("conflicting Content-Length values")
            }
            (Some(value), _) => self.content_length = Some(value),
        }
    }
}

/// One framing or none: a request that could be read two ways is refused, never guessed at
/// (request smuggling, RFC 9112 §6.1 and §11.2).
fn body_framing(parts: &Parts, noted: &FramingHeaders) -> Result<BodyFraming, RequestError> {
    let headers = &parts.headers;
    if noted.transfer_encoding {
        if parts.version == Version::HTTP_10 {
            return Err(malformed("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if noted.has_content_length {
            return Err(malformed("both Transfer-Encoding and Content-Length"));
        }
        let codings: Vec<&[u8]> = tokens(headers, TRANSFER_ENCODING).collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            [.., last] if !last.eq_ignore_ascii_case(b"chunked") => {
                Err(malformed("chunked is not the final transfer coding"))
            }
            _ => Err(RequestError::UnsupportedCoding(
                String::from_utf8_lossy(&codings.join(&b", "[..])).into_owned(),
            )),
        };
    }
    if let Some(why) = noted.content_length_error {
        return Err(malformed(why));
    }
    Ok(match noted.content_length {
        None | Some(0) => BodyFraming::Empty,
        Some(length) => BodyFraming::Length(length),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<RequestHead>, RequestError> {
        parse_head(&mut BytesMut::from(text))
    }

    #[test]
    fn simple_get_is_parsed_and_the_buffer_keeps_what_follows() {
        let mut buf = BytesMut::from("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /next");
        let head = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(head.parts.uri.path(), "/a");
        assert_eq!(head.parts.headers["host"], "x");
        assert_eq!(head.framing, BodyFraming::Empty);
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"GET /next");
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert!(parse("GET / HTTP/1.1\r\nHost:").unwrap().is_none());
    }

    #[test]
    fn framing_is_unambiguous_or_refused() {
        let framing = |headers: &str| {
            parse(&format!("POST / HTTP/1.1\r\n{headers}\r\n")).map(|h| h.unwrap().framing)
        };
        assert_eq!(framing("Content-Length: 5\r\n"), Ok(BodyFraming::Length(5)));
        assert_eq!(
            framing("Content-Length: 5\r\nContent-Length: 5\r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            framing("Transfer-Encoding: Chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        for bad in [
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: 5, 6\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 99999999999999999999999\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
        ] {
            assert_eq!(
                framing(bad).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        assert_eq!(
            framing("Transfer-Encoding: gzip, chunked\r\n")
                .unwrap_err()
                .status(),
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn http10_keeps_alive_only_when_asked() {
        let head = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive);
        let head = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
        let head = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
    }

    #[test]
    fn connection_tokens_are_read_from_every_line_in_any_case() {
        let head = parse("GET / HTTP/1.1\r\nConnection: Upgrade\r\nConnection: foo, CLOSE\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
        let head = parse("GET / HTTP/1.0\r\nConnection: te, Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
    }

    #[test]
    fn expect_100_continue_counts_only_for_a_body_on_http11() {
        let expects = |text: &str| parse(text).unwrap().unwrap().expects_continue;
        assert!(expects(
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n"
        ));
        assert!(!expects("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
        assert!(!expects(
            "POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        ));
        // Only the first Expect line is read, as a header-map lookup would.
        assert!(!expects(
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: x\r\nExpect: 100-continue\r\n\r\n"
        ));
    }

    #[test]
    fn higher_minor_version_is_served_as_http11_and_other_majors_are_505() {
        let head = parse("GET / HTTP/1.2\r\nHost: x\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert!(parse("GET / HTTP/1.9\r\nHost:").unwrap().is_none());
        for refused in [
            "GET / HTTP/2.0\r\n\r\n",
            "GET / HTTP/0.9\r\n\r\n",
            "GET / HTTP/1.x\r\n\r\n",
        ] {
            assert_eq!(
                parse(refused).unwrap_err(),
                RequestError::UnsupportedVersion,
                "{refused}"
            );
        }
    }

    #[test]
    fn oversized_or_crowded_heads_are_431() {
        let huge = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n",
            "a".repeat(MAX_REQUEST_HEAD_BYTES)
        );
        assert_eq!(parse(&huge).unwrap_err(), RequestError::HeadTooLarge);
        let crowded = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(parse(&crowded).unwrap_err(), RequestError::HeadTooLarge);
    }
}
