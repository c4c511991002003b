//! Static files: answers GET/HEAD for files under mounted directories, the way werkzeug's
//! SharedDataMiddleware, whitenoise and nginx do (validators and 304, ranges, precompressed
//! siblings, cache headers, index pages). Pure Rust, blocking disk I/O, no Python, no tokio,
//! no wire format: the server's native pipeline and the Python WSGI object both call
//! `StaticFiles::answer` off the I/O thread and turn a `StaticAnswer` into their own response.
//!
//! Layout, one concept per file:
//! - `mount`: URL prefix → root directory, longest prefix wins
//! - `resolve`: URL path → file, traversal-proof, directories and index.html
//! - `encoding`: Accept-Encoding → which precompressed sibling to try
//! - `conditional`: ETag, Last-Modified, If-None-Match, If-Modified-Since, If-Range
//! - `range`: Range → whole / byte ranges / 416
//! - `multipart`: framing of several ranges
//! - `headers`: Content-Type and Cache-Control from the name
//! - `respond`: puts one resolved file's answer together
//!
//! Decisions (each documented where it is made):
//! - A refused path (traversal, dotfile, symlink escape, NUL...) is a `FallThrough`, exactly
//!   like a missing file, so nothing outside the rules can be probed.
//! - `dir` without its '/' (with `index` on and `dir/index.html` present) is a 301 to the
//!   relative `dir/`, nginx's status; the caller appends the query string.
//! - A request carrying Range is served from the identity file, never a precompressed
//!   sibling: offsets then count bytes of the file itself (see `respond.rs`).
//! - At most `range::MAX_RANGES` ranges; overlapping or touching ones are coalesced.

mod conditional;
mod encoding;
mod error;
mod headers;
mod mount;
mod multipart;
mod options;
mod range;
mod resolve;
mod respond;
mod root;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use error::StaticError;
pub use options::StaticOptions;
pub use range::MAX_RANGES;

use mount::MountTable;
use resolve::Resolution;

/// Mounted directories and how to serve them. Built once at startup, shared read-only by
/// every worker thread.
#[derive(Debug)]
pub struct StaticFiles {
    mounts: MountTable,
    options: StaticOptions,
}

impl StaticFiles {
    /// `mounts`: ("/static", "./public") pairs, URL prefix (decoded, starting with '/') to
    /// directory. Roots are canonicalized once here; a missing root or a prefix without its
    /// leading '/' is an error naming it.
    pub fn new(
        mounts: Vec<(String, PathBuf)>,
        options: StaticOptions,
    ) -> Result<StaticFiles, StaticError> {
        Ok(StaticFiles {
            mounts: MountTable::new(mounts)?,
            options,
        })
    }

    /// Whether `path` (decoded) falls under one of the mounts at all. No disk access: lets
    /// the caller skip the off-thread hop for requests that cannot be static.
    pub fn claims(&self, path: &[u8]) -> bool {
        self.mounts.find(path).is_some()
    }

    /// The answer for one request. Blocking (stats and opens files): run it off the I/O
    /// thread. Never fails: whatever cannot be served is a `FallThrough`.
    pub fn answer(&self, request: &StaticRequest<'_>) -> StaticAnswer {
        let Some((mount, rest)) = self.mounts.find(request.path) else {
            return StaticAnswer::FallThrough;
        };
        let resolution = resolve::resolve(&mount.root, rest, request.path, &self.options);
        if matches!(resolution, Resolution::Nothing) {
            return StaticAnswer::FallThrough;
        }
        // RFC 9110 §9.1: method names are case-sensitive; only GET and HEAD read a file.
        // Checked after resolving: a 405 must not reveal paths that would fall through.
        let is_head = match request.method {
            "GET" => false,
            "HEAD" => true,
            _ => return StaticAnswer::MethodNotAllowed,
        };
        match resolution {
            Resolution::File(file) => {
                let context = respond::Context {
                    root: &mount.root,
                    request,
                    options: &self.options,
                    is_head,
                };
                respond::file(&context, file)
            }
            Resolution::AddSlash(location) => {
                StaticAnswer::Respond(respond::add_slash_redirect(location))
            }
            Resolution::Nothing => StaticAnswer::FallThrough,
        }
    }
}

/// The parts of a request that static files look at; the caller extracts them from its own
/// request type.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaticRequest<'a> {
    pub method: &'a str,
    /// The percent-DECODED path (PEP 3333 PATH_INFO style bytes), e.g. b"/static/app.css".
    pub path: &'a [u8],
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub range: Option<&'a str>,
    pub if_range: Option<&'a str>,
    pub accept_encoding: Option<&'a str>,
}

#[derive(Debug)]
pub enum StaticAnswer {
    /// Not ours: no mount matches, the file does not exist, or the path is refused. The
    /// caller passes the request on to the wrapped app, or answers 404 when there is none.
    FallThrough,
    /// A mount matches and the file exists, but the method is neither GET nor HEAD: the
    /// caller passes it on to the app, or answers 405 with `Allow: GET, HEAD`.
    MethodNotAllowed,
    Respond(StaticResponse),
}

#[derive(Debug)]
pub struct StaticResponse {
    /// 200, 206, 301, 304 or 416.
    pub status: u16,
    /// Complete: Content-Length is always present except on 304 (RFC 9110 §15.4.5); the
    /// caller adds only its own (Date, Server, Connection).
    pub headers: Vec<(&'static str, String)>,
    pub body: StaticBody,
}

impl StaticResponse {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Debug)]
pub enum StaticBody {
    /// HEAD, 304, 416 and redirects (HEAD keeps the Content-Length a GET would have).
    Empty,
    /// One byte range of one open file (the whole file for 200).
    File {
        file: std::fs::File,
        offset: u64,
        len: u64,
    },
    /// multipart/byteranges: literal part headers interleaved with ranges of the one file.
    Multipart {
        file: std::fs::File,
        parts: Vec<MultipartPiece>,
    },
}

#[derive(Debug)]
pub enum MultipartPiece {
    Literal(Vec<u8>),
    Range { offset: u64, len: u64 },
}
