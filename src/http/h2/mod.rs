//! HTTP/2 on the wire, on the `h2` crate (RFC 9113): the connection driver (`conn.rs`), one
//! WSGI request per stream (`stream.rs`: pseudo-headers in, the response out with flow
//! control), the request body fed as the app reads (`body.rs`), and the byte stream the
//! connection runs on (`duplex.rs`). Knows nothing of WSGI or Python: it calls the same
//! `Handler` as `h1/`.
//!
//! How a connection gets here: on a plain port, `h1::conn` sees the client's connection
//! preface (h2c with prior knowledge, `is_preface_start`); over TLS, the accept path calls
//! `HttpServer::serve_http2` when ALPN chose `h2` (`speaks_h2`). `Upgrade: h2c` is not
//! offered: such a request is served as HTTP/1.1 (docs/architecture.md, "HTTP/2").

mod body;
mod conn;
mod duplex;
mod stream;

use crate::config::HttpVersions;

pub use duplex::Duplex;

/// The client connection preface (RFC 9113 §3.4), which an h2c client sends first.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether `bytes`, the first a client sent, are (the start of) the HTTP/2 preface.
pub fn is_preface_start(bytes: &[u8]) -> bool {
    let n = bytes.len().min(PREFACE.len());
    n > 0 && bytes[..n] == PREFACE[..n]
}

/// The seam for TLS: whether a connection whose ALPN result is `alpn` is served by the HTTP/2
/// driver (`HttpServer::serve_http2`) rather than the HTTP/1 one.
pub fn speaks_h2(alpn: Option<&[u8]>, versions: HttpVersions) -> bool {
    match versions {
        HttpVersions::One => false,
        HttpVersions::Two => true,
        HttpVersions::Auto => alpn == Some(b"h2"),
    }
}

/// The ALPN protocols a TLS listener offers under `--http`, most preferred first.
pub fn alpn_protocols(versions: HttpVersions) -> &'static [&'static [u8]] {
    match versions {
        HttpVersions::One => &[b"http/1.1"],
        HttpVersions::Two => &[b"h2"],
        HttpVersions::Auto => &[b"h2", b"http/1.1"],
    }
}

/// The HTTP/2 settings of a server (`--http2-*`), and the limits no setting names.
#[derive(Debug, Clone)]
pub struct Http2Options {
    /// `--http`: whether a plain port looks for the h2c preface (auto), expects it (2), or
    /// never does (1).
    pub versions: HttpVersions,
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams (requests) a client may have open at once.
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: a bigger header list (decoded, RFC 9113 §6.5.2) is
    /// refused, which also bounds a CONTINUATION flood and an HPACK bomb.
    pub max_header_list_bytes: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a client may send one stream before
    /// the app reads them.
    pub stream_window_bytes: u32,
    /// The connection's receive window: body bytes buffered for all its streams at once.
    pub connection_window_bytes: u32,
    /// SETTINGS_MAX_FRAME_SIZE we accept.
    pub max_frame_bytes: u32,
}

impl Default for Http2Options {
    fn default() -> Self {
        Http2Options {
            versions: HttpVersions::Auto,
            max_concurrent_streams: 100,
            max_header_list_bytes: 64 * 1024,
            stream_window_bytes: 256 * 1024,
            connection_window_bytes: 1024 * 1024,
            max_frame_bytes: 16 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preface_is_recognised_from_its_first_byte() {
        assert!(is_preface_start(b"P"));
        assert!(is_preface_start(b"PRI * HTTP/2.0\r\n"));
        assert!(is_preface_start(PREFACE));
        assert!(is_preface_start(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"
        ));
        assert!(!is_preface_start(b"POST / HTTP/1.1\r\n"));
        assert!(!is_preface_start(b""));
    }

    #[test]
    fn alpn_h2_goes_to_the_h2_driver_only_when_allowed() {
        assert!(speaks_h2(Some(b"h2"), HttpVersions::Auto));
        assert!(!speaks_h2(Some(b"http/1.1"), HttpVersions::Auto));
        assert!(!speaks_h2(None, HttpVersions::Auto));
        assert!(!speaks_h2(Some(b"h2"), HttpVersions::One));
        assert!(speaks_h2(None, HttpVersions::Two));
    }
}
