//! The status line and headers an app passes to start_response, checked as PEP 3333 and
//! RFC 9110 require before anything reaches the wire.

use hyper::ext::ReasonPhrase;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH};
use hyper::{Response, StatusCode};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::http::ResponseBody;

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
    /// Kept only when it differs from the canonical phrase, so hyper writes what the app said.
    reason: Option<ReasonPhrase>,
    headers: HeaderMap,
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

fn parse_status(status: &Bound<'_, PyAny>) -> PyResult<(StatusCode, Option<ReasonPhrase>)> {
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
        let phrase = latin1_bytes(reason).and_then(|b| ReasonPhrase::try_from(b).ok()).ok_or_else(|| {
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

fn parse_header(item: &Bound<'_, PyAny>) -> PyResult<(HeaderName, HeaderValue)> {
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
    let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        PyValueError::new_err(format!(
            "start_response(): {name:?} is not a valid header name"
        ))
    })?;
    if HOP_BY_HOP.contains(&header_name.as_str()) {
        return Err(PyValueError::new_err(format!(
            "start_response(): hop-by-hop header {name:?} is not allowed from a WSGI application (PEP 3333)"
        )));
    }
    // PERF: ASCII values (nearly all) are checked and copied once (benches/callgrind).
    let header_value = if value.is_ascii() {
        HeaderValue::from_str(value).ok()
    } else {
        latin1_bytes(value).and_then(|b| HeaderValue::from_bytes(&b).ok())
    };
    let header_value = header_value
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "start_response(): value of header {name:?} contains CR, LF, NUL, another control character, \
                 or a character beyond latin-1"
            ))
        })?;
    Ok((header_name, header_value))
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
        let mut map = HeaderMap::with_capacity(items.len() + 2);
        for item in items.iter() {
            let (name, value) = parse_header(&item)?;
            map.append(name, value);
        }
        let content_length = match map
            .get_all(CONTENT_LENGTH)
            .iter()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => None,
            [value] => Some(
                value
                    .to_str()
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        PyValueError::new_err(
                            "start_response(): Content-Length must be a non-negative integer",
                        )
                    })?,
            ),
            _ => {
                return Err(PyValueError::new_err(
                    "start_response(): more than one Content-Length header",
                ))
            }
        };
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

    pub fn into_response(self, body: ResponseBody) -> Response<ResponseBody> {
        let body = match self.content_length {
            Some(length) => body.with_declared_length(length),
            None => body,
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        if let Some(reason) = self.reason {
            response.extensions_mut().insert(reason);
        }
        response
    }
}
