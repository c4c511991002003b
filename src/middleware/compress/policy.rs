//! Which responses may be compressed: status, existing codings, `Cache-Control:
//! no-transform`, range answers, media type and size. Owns those rules and the list of
//! compressible media types; knows nothing of the request's `Accept-Encoding` (that is
//! `negotiate`) nor of how headers are rewritten (`headers`). Called once per response,
//! after the app has chosen its status and headers.

use super::CompressOptions;

/// What the compression layer needs to know about a response, read from its head.
#[derive(Clone, Copy, Debug, Default)]
pub struct ResponseFacts<'a> {
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    /// `None` when the app streams without announcing a length.
    pub content_length: Option<u64>,
    pub cache_control: Option<&'a str>,
    /// A `Content-Range` header is present: the body is a byte range of the identity
    /// representation (206, or 416's `bytes */len`).
    pub content_range: bool,
    /// The request was HEAD: there is no body to encode.
    pub request_method_head: bool,
}

/// Media types that compress well and are not already compressed, beyond `text/*` and the
/// `+json` / `+xml` structured-syntax suffixes (RFC 6839), which also cover
/// `image/svg+xml`, `application/ld+json`, `application/problem+json`, `application/rss+xml`.
/// Left out on purpose: images other than SVG and icons, audio, video, fonts in woff/woff2,
/// archives and `application/octet-stream`: their bytes are already compressed or unknown,
/// and compressing them again costs CPU for nothing.
const COMPRESSIBLE_TYPES: &[&str] = &[
    "application/json",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/xml",
    "application/x-ndjson",
    "application/wasm",
    "application/graphql",
    "font/ttf",
    "font/otf",
    "image/x-icon",
    "image/vnd.microsoft.icon",
];

/// Whether this response may be compressed (the client's consent is `negotiate`'s part).
pub fn should_compress(facts: &ResponseFacts<'_>, options: &CompressOptions) -> bool {
    // RFC 9110 §9.3.2: a HEAD response has no content to encode. Like nginx, its headers
    // then describe the identity representation (the Content-Length stays).
    !facts.request_method_head
        && is_compressible_status(facts.status)
        && is_identity(facts.content_encoding)
        && !has_no_transform(facts.cache_control)
        // RFC 9110 §14.4: a range is counted in the bytes of the identity representation;
        // encoding it would make Content-Range describe bytes the client never receives.
        && !facts.content_range
        && facts.content_type.is_some_and(is_compressible_type)
        && is_large_enough(facts.content_length, options.min_size)
}

/// 2xx with a full representation, and 4xx/5xx error pages (a JSON validation error can
/// be large). Never 1xx, 204, 205 or 304, which carry no content (RFC 9110 §15), never 206
/// (a range, see above), nor 3xx, whose short bodies nobody reads.
fn is_compressible_status(status: u16) -> bool {
    matches!(status, 200..=203 | 400..=599)
}

/// No coding applied yet. `identity` is not a content coding (RFC 9110 §8.4.1 reserves it
/// for Accept-Encoding), but apps send it meaning "none".
fn is_identity(content_encoding: Option<&str>) -> bool {
    content_encoding.is_none_or(|value| {
        let value = value.trim();
        value.is_empty() || value.eq_ignore_ascii_case("identity")
    })
}

/// RFC 9111 §5.2.2.6: an intermediary must not change a `no-transform` response's content,
/// and content coding is such a change.
fn has_no_transform(cache_control: Option<&str>) -> bool {
    cache_control.is_some_and(|value| {
        value.split(',').any(|directive| {
            let name = directive
                .split_once('=')
                .map_or(directive, |(name, _)| name);
            name.trim().eq_ignore_ascii_case("no-transform")
        })
    })
}

fn is_compressible_type(content_type: &str) -> bool {
    // RFC 9110 §8.3.1: `type "/" subtype *( OWS ";" OWS parameter )`, case-insensitive.
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    if kind.is_empty() || subtype.is_empty() {
        return false;
    }
    kind == "text"
        || subtype.ends_with("+json")
        || subtype.ends_with("+xml")
        || COMPRESSIBLE_TYPES.contains(&essence.as_str())
}

/// A body announced shorter than `min_size` is not worth the coding's header and trailer;
/// an empty one never is. Unknown length means the app streams: assume it is large.
fn is_large_enough(content_length: Option<u64>, min_size: usize) -> bool {
    content_length.is_none_or(|length| length > 0 && length >= min_size as u64)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
