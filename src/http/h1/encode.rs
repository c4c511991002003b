//! Encoding a response head for HTTP/1.1: the status line, the handler's lines, the framing
//! and `Connection` headers, `Server`, and `Date` (`http::date`, once per second per thread).

use crate::http::date::with_http_date;
use crate::http::Response;

/// How the body of a response is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body (HEAD, 204, 304); framing headers are the handler's.
    None,
    /// The handler declared this length.
    Declared(u64),
    /// The server knows the length and sends Content-Length itself.
    Length(u64),
    Chunked,
    /// HTTP/1.0 stream of unknown length: the end is the connection's close.
    UntilClose,
}

/// Appends the status line and headers of `response` to `out`.
pub fn encode_head(
    out: &mut Vec<u8>,
    response: &Response,
    framing: ResponseFraming,
    connection: Option<&'static [u8]>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(response.status.as_str().as_bytes());
    out.push(b' ');
    match &response.reason {
        Some(reason) => out.extend_from_slice(reason),
        None => out.extend_from_slice(
            response
                .status
                .canonical_reason()
                .unwrap_or("Unknown")
                .as_bytes(),
        ),
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(response.headers.encoded());
    match framing {
        ResponseFraming::Length(length) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        ResponseFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        ResponseFraming::None | ResponseFraming::Declared(_) | ResponseFraming::UntilClose => {}
    }
    if let Some(connection) = connection {
        out.extend_from_slice(b"Connection: ");
        out.extend_from_slice(connection);
        out.extend_from_slice(b"\r\n");
    }
    if !response.headers.has_server() {
        out.extend_from_slice(b"Server: ferrogate\r\n");
    }
    if !response.headers.has_date() {
        out.extend_from_slice(b"Date: ");
        with_http_date(|date| out.extend_from_slice(date));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeaderBlock, ResponseBody};
    use bytes::Bytes;
    use http::StatusCode;

    #[test]
    fn head_carries_handler_headers_framing_server_and_date() {
        let mut headers = HeaderBlock::default();
        headers.push(b"Content-Type", b"text/plain");
        let response = Response::new(
            StatusCode::OK,
            headers,
            ResponseBody::full(Bytes::from_static(b"hi")),
        );
        let mut out = Vec::new();
        encode_head(
            &mut out,
            &response,
            ResponseFraming::Length(2),
            Some(b"close"),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\nServer: ferrogate\r\nDate: "
        ));
        assert!(text.ends_with(" GMT\r\n\r\n"));
    }

    #[test]
    fn handler_server_and_date_headers_replace_the_defaults() {
        let mut headers = HeaderBlock::default();
        headers.push(b"server", b"custom");
        headers.push(b"Date", b"yesterday");
        let mut response = Response::new(
            StatusCode::IM_A_TEAPOT,
            headers,
            ResponseBody::full(Bytes::new()),
        );
        response.reason = Some(b"Short and stout".to_vec().into());
        let mut out = Vec::new();
        encode_head(&mut out, &response, ResponseFraming::None, None);
        assert_eq!(
            out,
            b"HTTP/1.1 418 Short and stout\r\nserver: custom\r\nDate: yesterday\r\n\r\n"
        );
    }
}
