//! The status line and headers an app passes to start_response, checked as PEP 3333 and
//! RFC 9110 require before anything reaches the wire.

use http::StatusCode;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::http::{HeaderBlock, Response, ResponseBody};

/// PEP 3333: "the application must not generate any hop-by-hop headers" (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub struct ResponseHead {
    status: StatusCode,
    /// Kept only when it differs from the canonical phrase.
    reason: Option<Box<[u8]>>,
    /// As the app gave them: names keep the app's case on the wire.
    headers: HeaderBlock,
    /// The app's Content-Length, which the body is then held to.
    pub content_length: Option<u64>,
}

/// The name of a Python value's type, for error messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn parse_status(status: &Bound<'_, PyAny>) -> PyResult<(StatusCode, Option<Box<[u8]>>)> {
    let text = status
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "start_response(): status must be a str, not {}",
                type_name(status)
            ))
        })?
        .to_str()?;
    let invalid = || {
        PyValueError::new_err(format!(
            "start_response(): status {text:?} is not of the form \"NNN Reason\" (three digits, a space, a reason phrase)"
        ))
    };
    let bytes = text.as_bytes();
    if bytes.len() < 5 || !bytes[..3].iter().all(u8::is_ascii_digit) || bytes[3] != b' ' {
        return Err(invalid());
    }
    let reason = &text[4..];
    if reason.trim().is_empty() {
        return Err(invalid());
    }
    let code: u16 = text[..3].parse().map_err(|_| invalid())?;
    // A final response: 1xx are interim responses the server manages itself.
    if !(200..=599).contains(&code) {
        return Err(PyValueError::new_err(format!(
            "start_response(): status code {code} is not a final status (200-599)"
        )));
    }
    let status = StatusCode::from_u16(code).map_err(|_| invalid())?;
    let reason = if status.canonical_reason() == Some(reason) {
        None
    } else {
        let phrase = latin1_bytes(reason).filter(|b| is_field_value(b)).map(Vec::into_boxed_slice).ok_or_else(|| {
            PyValueError::new_err(format!("start_response(): reason phrase {reason:?} contains a control or non-latin-1 character"))
        })?;
        Some(phrase)
    };
    Ok((status, reason))
}

/// PEP 3333 header strings are latin-1; anything beyond U+00FF cannot be sent.
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(c as u32).ok()).collect()
}

/// RFC 9110 §5.6.2 `tchar`, as a table: a header name is checked a byte at a time on every
/// start_response call.
const TOKEN_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        byte += 1;
    }
    table
};

/// RFC 9110 §5.6.2 `token`: what a header name is made of.
fn is_token(name: &[u8]) -> bool {
    // PERF: a table lookup per byte, not a search of the punctuation list (benches/callgrind
    // hello: -0.3k instructions per request).
    !name.is_empty() && name.iter().all(|&b| TOKEN_CHARS[usize::from(b)])
}

/// RFC 9110 §5.5: visible characters, spaces, tabs and obs-text; no CR, LF, NUL or DEL.
fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f))
}

/// What `parse_header` found worth knowing about a header line.
enum HeaderLine {
    ContentLength(Option<u64>),
    Other,
}

/// A Content-Length value: digits only, as a number; `None` if it is not one.
fn content_length_value(value: &str) -> Option<u64> {
    Some(value.trim())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
}

/// One `(name, value)` pair, checked and added to `headers`.
fn parse_header(item: &Bound<'_, PyAny>, headers: &mut HeaderBlock) -> PyResult<HeaderLine> {
    let pair = item
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| {
            PyTypeError::new_err(format!(
                "start_response(): each header must be a (name, value) tuple, not {}",
                type_name(item)
            ))
        })?;
    let name = pair.get_item(0)?;
    let value = pair.get_item(1)?;
    let (Ok(name), Ok(value)) = (name.cast::<PyString>(), value.cast::<PyString>()) else {
        return Err(PyTypeError::new_err(format!(
            "start_response(): header names and values must be str, got ({}, {})",
            type_name(&name),
            type_name(&value)
        )));
    };
    let name = name.to_str()?;
    let value = value.to_str()?;
    if !is_token(name.as_bytes()) {
        return Err(PyValueError::new_err(format!(
            "start_response(): {name:?} is not a valid header name"
        )));
    }
    if HOP_BY_HOP.iter().any(|hop| hop.eq_ignore_ascii_case(name)) {
        return Err(PyValueError::new_err(format!(
            "start_response(): hop-by-hop header {name:?} is not allowed from a WSGI application (PEP 3333)"
        )));
    }
    let invalid_value = || {
        PyValueError::new_err(format!(
            "start_response(): value of header {name:?} contains CR, LF, NUL, another control character, \
             or a character beyond latin-1"
        ))
    };
    // PERF: ASCII values (nearly all) are checked and copied once (benches/callgrind).
    if value.is_ascii() {
        if !is_field_value(value.as_bytes()) {
            return Err(invalid_value());
        }
        headers.push(name.as_bytes(), value.as_bytes());
    } else {
        let bytes = latin1_bytes(value)
            .filter(|b| is_field_value(b))
            .ok_or_else(invalid_value)?;
        headers.push(name.as_bytes(), &bytes);
    }
    Ok(if name.eq_ignore_ascii_case("content-length") {
        HeaderLine::ContentLength(content_length_value(value))
    } else {
        HeaderLine::Other
    })
}

impl ResponseHead {
    pub fn from_python(
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
    ) -> PyResult<ResponseHead> {
        let (status, reason) = parse_status(status)?;
        // PEP 3333: "It must be a Python list; i.e. type(response_headers) is ListType".
        let items = headers.cast::<PyList>().map_err(|_| {
            PyTypeError::new_err(format!(
                "start_response(): headers must be a list of (name, value) tuples, not {}",
                type_name(headers)
            ))
        })?;
        let mut map = HeaderBlock::with_capacity(items.len() * 32);
        let mut content_length = None;
        for item in items.iter() {
            let HeaderLine::ContentLength(length) = parse_header(&item, &mut map)? else {
                continue;
            };
            if content_length.is_some() {
                return Err(PyValueError::new_err(
                    "start_response(): more than one Content-Length header",
                ));
            }
            let length = length.ok_or_else(|| {
                PyValueError::new_err(
                    "start_response(): Content-Length must be a non-negative integer",
                )
            })?;
            content_length = Some(length);
        }
        Ok(ResponseHead {
            status,
            reason,
            headers: map,
            content_length,
        })
    }

    /// 204 and 304 responses never carry a body (RFC 9110 §15.3.5, §15.4.5).
    pub fn allows_body(&self) -> bool {
        !matches!(
            self.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
    }

    pub fn into_response(self, body: ResponseBody) -> Response {
        let body = match self.content_length {
            Some(length) => body.with_declared_length(length),
            None => body,
        };
        let mut response = Response::new(self.status, self.headers, body);
        response.reason = self.reason;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_chars_are_rfc_9110_tchar() {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        for b in 0..=255u8 {
            assert_eq!(is_token(&[b]), tchar(b), "byte {b:#04x}");
        }
        assert!(is_token(b"Content-Type"));
        assert!(!is_token(b""));
        assert!(!is_token(b"Bad Name"));
        assert!(!is_token(b"X:Y"));
    }
}
