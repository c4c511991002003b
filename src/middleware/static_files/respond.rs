//! Puts together the answer for one resolved file: picks the representation (identity or
//! a precompressed sibling), opens it safely, then applies the conditional headers, the
//! Range and HEAD to build the status, headers and body. Owns the header set of each
//! status. Knows nothing of URL paths (resolve.rs did that) nor of the wire.

use std::fs::File;
use std::path::Path;

use super::conditional::Validators;
use super::encoding::{self, Encoding};
use super::headers;
use super::multipart;
use super::options::StaticOptions;
use super::range::{self, ByteRange, RangePlan};
use super::resolve::ResolvedFile;
use super::root::{Opened, Root};
use super::{StaticAnswer, StaticBody, StaticRequest, StaticResponse};

/// What `file` needs besides the file itself.
pub(super) struct Context<'a> {
    /// The mount's root: siblings must stay inside it too.
    pub(super) root: &'a Root,
    pub(super) request: &'a StaticRequest<'a>,
    pub(super) options: &'a StaticOptions,
    pub(super) is_head: bool,
}

/// The opened file chosen to answer, and what it is.
struct Representation {
    file: File,
    size: u64,
    encoding: Option<Encoding>,
    validators: Validators,
}

/// 301 to the directory's slash form (nginx's status for this redirect).
pub(super) fn add_slash_redirect(location: String) -> StaticResponse {
    StaticResponse {
        status: 301,
        headers: vec![("Location", location), ("Content-Length", "0".into())],
        body: StaticBody::Empty,
    }
}

/// GET or HEAD of a resolved regular file.
pub(super) fn file(context: &Context<'_>, file: ResolvedFile) -> StaticAnswer {
    let ResolvedFile { requested, opened } = file;
    let Some(representation) = representation(context, &requested, opened) else {
        // Deleted, replaced by a non-file, or unreadable since it was resolved.
        return StaticAnswer::FallThrough;
    };
    let request = context.request;
    let content_type = headers::content_type(&requested);
    let mut validator_headers = vec![("ETag", representation.validators.etag.clone())];
    if let Some(last_modified) = representation.validators.last_modified() {
        validator_headers.push(("Last-Modified", last_modified));
    }
    let mut cache_headers = Vec::new();
    if let Some(cache_control) = headers::cache_control(&requested, context.options) {
        cache_headers.push(("Cache-Control", cache_control));
    }
    if context.options.precompressed {
        // Always, not only for files with a sibling: one rule, and a cache never keeps one
        // variant for every client (RFC 9110 §12.5.5).
        cache_headers.push(("Vary", "Accept-Encoding".to_owned()));
    }

    let validators = &representation.validators;
    if validators.is_not_modified(request.if_none_match, request.if_modified_since) {
        // RFC 9110 §15.4.5: a 304 carries the validators and cache headers of the 200.
        let mut headers = validator_headers;
        headers.extend(cache_headers);
        return respond(304, headers, StaticBody::Empty);
    }

    let plan = match validators.is_range_allowed(request.if_range) {
        true => range::plan(request.range, representation.size),
        false => RangePlan::Whole,
    };
    let size = representation.size;
    let mut headers = Vec::with_capacity(10);
    let (status, body) = match plan {
        RangePlan::Whole => {
            headers.push(("Content-Type", content_type));
            headers.push(("Content-Length", size.to_string()));
            (200, file_body(representation.file, 0, size))
        }
        RangePlan::Partial(ranges) if ranges.len() == 1 => {
            let ByteRange { offset, len } = ranges[0];
            headers.push(("Content-Type", content_type));
            headers.push(("Content-Length", len.to_string()));
            headers.push(("Content-Range", ranges[0].content_range(size)));
            (206, file_body(representation.file, offset, len))
        }
        RangePlan::Partial(ranges) => {
            // RFC 9110 §14.6: each part has the file's type; the response has multipart's.
            let framed = multipart::frame(&ranges, size, &content_type);
            let multipart_type = format!("multipart/byteranges; boundary={}", framed.boundary);
            headers.push(("Content-Type", multipart_type));
            headers.push(("Content-Length", framed.len.to_string()));
            let body = StaticBody::Multipart {
                file: representation.file,
                parts: framed.pieces,
            };
            (206, body)
        }
        RangePlan::Unsatisfiable => {
            // RFC 9110 §15.5.17: 416 says how long the representation is.
            headers.push(("Content-Range", format!("bytes */{size}")));
            // PEP 3333 servers (and wsgiref's validator) want a Content-Type on every answer
            // with a body, an empty one included.
            headers.push(("Content-Type", "text/plain; charset=utf-8".to_owned()));
            headers.push(("Content-Length", "0".to_owned()));
            headers.push(("Accept-Ranges", "bytes".to_owned()));
            headers.extend(
                cache_headers
                    .into_iter()
                    .filter(|(name, _)| *name == "Vary"),
            );
            return respond(416, headers, StaticBody::Empty);
        }
    };
    if let Some(encoding) = representation.encoding {
        headers.push(("Content-Encoding", encoding.token().to_owned()));
    }
    // RFC 9110 §14.3: tells clients they may resume or seek with Range.
    headers.push(("Accept-Ranges", "bytes".to_owned()));
    headers.extend(validator_headers);
    headers.extend(cache_headers);
    // HEAD: the headers a GET would get, no body (RFC 9110 §9.3.2); the file closes here.
    let body = if context.is_head {
        StaticBody::Empty
    } else {
        body
    };
    respond(status, headers, body)
}

fn respond(status: u16, headers: Vec<(&'static str, String)>, body: StaticBody) -> StaticAnswer {
    StaticAnswer::Respond(StaticResponse {
        status,
        headers,
        body,
    })
}

fn file_body(file: File, offset: u64, len: u64) -> StaticBody {
    if len == 0 {
        return StaticBody::Empty;
    }
    StaticBody::File { file, offset, len }
}

/// The best precompressed sibling the client accepts, else the file itself. A request
/// with a Range always gets the file itself: resuming downloaders and media players count
/// offsets in the decoded bytes, and a 206 with Content-Encoding is mishandled by enough
/// clients that nginx-style "ranges of the .gz" is not worth it. The ETags differ anyway,
/// so an If-Range from a coded response never matches the identity one (200, whole file).
fn representation(
    context: &Context<'_>,
    requested: &Path,
    opened: Opened,
) -> Option<Representation> {
    let request = context.request;
    if context.options.precompressed && request.range.is_none() {
        for encoding in encoding::preferred(request.accept_encoding) {
            let mut sibling = requested.as_os_str().to_owned();
            sibling.push(encoding.file_suffix());
            let Some(opened) = context
                .root
                .open_below(sibling.as_ref(), context.options.follow_symlinks)
            else {
                continue;
            };
            if let Some(found) = regular(opened, Some(encoding)) {
                return Some(found);
            }
        }
    }
    regular(opened, None)
}

/// The representation of `opened` if it is a regular file. Size and validators come from
/// the open handle, so they describe exactly what will be read.
fn regular(opened: Opened, encoding: Option<Encoding>) -> Option<Representation> {
    if !opened.metadata.is_file() {
        return None;
    }
    let size = opened.metadata.len();
    Some(Representation {
        file: opened.file,
        size,
        encoding,
        validators: Validators::new(size, opened.metadata.modified().ok(), encoding),
    })
}
