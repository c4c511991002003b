//! Response compression: whether to compress a response, with which coding, what that does
//! to its headers, and the encoders themselves. Pure Rust on protocol-neutral inputs (a
//! header value, a few facts about a response, a list of header pairs, body bytes): the
//! server's native pipeline and the Python WSGI middleware both call it, so the two give
//! the same answers. Knows nothing of Python, tokio or the HTTP wire format.
//!
//! A caller's order, per response:
//! 1. [`choose`] a coding from the request's `Accept-Encoding` and the allowed codings;
//! 2. if one was chosen, ask [`should_compress`] about the response's status and headers;
//! 3. if so, [`adjust_headers`] before the head is sent, then run the body through an
//!    [`Encoder`] (streamed: one call per chunk, then `finish`) or [`compress_all`] (a body
//!    known in full, whose new length the caller may then set as Content-Length).
//!
//! Layout: `encoding` (the codings and their levels), `negotiate` (Accept-Encoding),
//! `policy` (which responses), `headers` (the header rewrite), `encoder` (the codecs).

mod encoder;
mod encoding;
mod headers;
mod negotiate;
mod policy;

pub use encoder::{compress_all, Encoder};
pub use encoding::Encoding;
pub use headers::{add_vary_accept_encoding, adjust_headers};
pub use negotiate::choose;
pub use policy::{should_compress, ResponseFacts};

/// Bodies announced shorter than this are sent as they are: below about half a KiB the
/// coding's framing (gzip's 18 bytes, the codecs' block headers) and the CPU cost outweigh
/// what is saved, and a response that small fits one TCP segment either way.
pub const DEFAULT_MIN_SIZE_BYTES: usize = 512;

/// How the compression layer is set up (one per server or per WSGI middleware object).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressOptions {
    /// Smallest announced `Content-Length` worth compressing, in bytes.
    pub min_size: usize,
    /// Compression level for every coding, clamped into each codec's range; `None` uses
    /// each codec's default for on-the-fly compression (gzip 6, brotli 4, zstd 3).
    pub level: Option<u32>,
    /// Codings the server may use, most preferred first: a client that accepts several
    /// with the same q-value gets the first of them.
    pub encodings: Vec<Encoding>,
}

impl Default for CompressOptions {
    fn default() -> CompressOptions {
        CompressOptions {
            min_size: DEFAULT_MIN_SIZE_BYTES,
            level: None,
            encodings: Encoding::ALL.to_vec(),
        }
    }
}
