//! The per-file header values that depend only on the file's name and the options:
//! Content-Type (from the extension) and Cache-Control (max-age, or a year and `immutable`
//! for content-hashed names). Knows nothing of the request or of the disk.

use std::path::Path;

use super::options::StaticOptions;

/// A year, the longest max-age worth sending (RFC 9111 §5.2.2.1 caps nothing, but caches
/// and whitenoise/nginx conventions treat a year as "forever").
const IMMUTABLE_MAX_AGE_SECS: u32 = 31_536_000;

/// The shortest run of hex digits taken as a content hash when it holds a letter: build
/// tools emit 8 (webpack, Vite) or more; shorter runs are too often version numbers.
const MIN_HASH_HEX_DIGITS: usize = 8;
/// The shortest run of hex digits taken as a hash even with no letter (Django's manifest
/// storage emits 12). An 8-digit all-decimal part is more likely a date (`report.20240101.csv`)
/// and must not be cached for a year.
const MIN_DECIMAL_HASH_DIGITS: usize = 12;

/// Content-Type for `name`, by extension; `application/octet-stream` when unknown, so a
/// browser never sniffs a download into something executable.
pub(super) fn content_type(name: &Path) -> String {
    let Some(guess) = mime_guess::from_path(name).first_raw() else {
        return "application/octet-stream".to_owned();
    };
    if has_charset(guess) {
        format!("{guess}; charset=utf-8")
    } else {
        guess.to_owned()
    }
}

/// Textual types get `charset=utf-8`: without it browsers fall back to a locale-dependent
/// legacy encoding (WHATWG Encoding). Like whitenoise, UTF-8 is assumed for every text file.
fn has_charset(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "application/manifest+json"
        )
}

/// Cache-Control for `name`, or `None` when no header is to be sent.
pub(super) fn cache_control(name: &Path, options: &StaticOptions) -> Option<String> {
    if options.immutable_hashed && is_hashed_name(name) {
        return Some(format!(
            "public, max-age={IMMUTABLE_MAX_AGE_SECS}, immutable"
        ));
    }
    options
        .max_age
        .map(|secs| format!("public, max-age={secs}"))
}

/// Whether the file name carries a content hash as an inner dot-separated part, as in
/// `app.3f2a9c1b.js` (whitenoise's rule: not the first part, which is the name, nor the
/// last, which is the extension).
fn is_hashed_name(name: &Path) -> bool {
    let Some(name) = name.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 3 {
        return false;
    }
    parts[1..parts.len() - 1].iter().any(|part| is_hash(part))
}

fn is_hash(part: &str) -> bool {
    if !part.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return false;
    }
    let has_letter = part.bytes().any(|byte| byte.is_ascii_alphabetic());
    part.len() >= MIN_DECIMAL_HASH_DIGITS || (has_letter && part.len() >= MIN_HASH_HEX_DIGITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_get_utf8_charset() {
        assert_eq!(
            content_type(Path::new("a/app.css")),
            "text/css; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("index.html")),
            "text/html; charset=utf-8"
        );
        assert!(content_type(Path::new("app.js")).ends_with("javascript; charset=utf-8"));
        assert_eq!(
            content_type(Path::new("data.json")),
            "application/json; charset=utf-8"
        );
    }

    #[test]
    fn binary_types_have_no_charset() {
        assert_eq!(content_type(Path::new("logo.png")), "image/png");
    }

    #[test]
    fn unknown_extension_is_octet_stream() {
        assert_eq!(
            content_type(Path::new("blob.zzzunknown")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type(Path::new("Makefile")),
            "application/octet-stream"
        );
    }

    #[test]
    fn no_cache_control_by_default() {
        assert_eq!(
            cache_control(Path::new("app.js"), &StaticOptions::default()),
            None
        );
    }

    #[test]
    fn max_age_gives_public_cache_control() {
        let options = StaticOptions {
            max_age: Some(60),
            ..StaticOptions::default()
        };
        assert_eq!(
            cache_control(Path::new("app.js"), &options).as_deref(),
            Some("public, max-age=60")
        );
    }

    #[test]
    fn hashed_name_is_immutable_for_a_year() {
        let options = StaticOptions {
            max_age: Some(60),
            immutable_hashed: true,
            ..StaticOptions::default()
        };
        for name in [
            "app.3f2a9c1b.js",
            "css/site.0123456789ab.css",
            "a.B3F2A9C1.min.js",
        ] {
            assert_eq!(
                cache_control(Path::new(name), &options).as_deref(),
                Some("public, max-age=31536000, immutable"),
                "{name}"
            );
        }
    }

    #[test]
    fn unhashed_names_keep_the_plain_max_age() {
        let options = StaticOptions {
            max_age: Some(60),
            immutable_hashed: true,
            ..StaticOptions::default()
        };
        // Too short, the extension, the base name, a date, not hex.
        for name in [
            "app.3f2a9c.js",
            "app.3f2a9c1b",
            "3f2a9c1b.js",
            "report.20240101.csv",
            "app.3f2a9c1g.js",
        ] {
            assert_eq!(
                cache_control(Path::new(name), &options).as_deref(),
                Some("public, max-age=60"),
                "{name}"
            );
        }
    }
}
