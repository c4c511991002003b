//! Validators and conditional requests (RFC 9110 §8.8, §13): the ETag and Last-Modified of
//! one representation, whether If-None-Match / If-Modified-Since make the answer a 304,
//! and whether If-Range lets a Range apply. Knows nothing of files beyond their size and
//! mtime, nor of ranges themselves.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::encoding::Encoding;

/// The validators of one representation (a file, or one of its precompressed siblings).
#[derive(Debug, Clone)]
pub(super) struct Validators {
    /// A strong entity tag, quoted. Strong so If-Range can use it (RFC 9110 §13.1.5 needs
    /// a strong match); as strong as nginx's, which is built the same way.
    pub(super) etag: String,
    /// The mtime truncated to whole seconds, the resolution of an HTTP-date; `None` when
    /// the filesystem has no mtime (then no Last-Modified is sent).
    last_modified: Option<SystemTime>,
}

impl Validators {
    /// From the file's size and mtime. A sibling's coding is part of its tag: two
    /// representations of one URL must never share a strong ETag (RFC 9110 §8.8.3), even
    /// when the files happen to have the same size and mtime.
    pub(super) fn new(len: u64, mtime: Option<SystemTime>, encoding: Option<Encoding>) -> Self {
        let since_epoch = mtime.and_then(|mtime| mtime.duration_since(UNIX_EPOCH).ok());
        let suffix = encoding.map_or(String::new(), |encoding| format!("-{}", encoding.token()));
        let etag = match since_epoch {
            Some(since) => format!("\"{len:x}-{:x}{suffix}\"", since.as_nanos()),
            None => format!("\"{len:x}{suffix}\""),
        };
        let last_modified =
            since_epoch.map(|since| UNIX_EPOCH + Duration::from_secs(since.as_secs()));
        Validators {
            etag,
            last_modified,
        }
    }

    /// The Last-Modified field value (RFC 9110 §8.8.2), if there is an mtime.
    pub(super) fn last_modified(&self) -> Option<String> {
        self.last_modified.map(httpdate::fmt_http_date)
    }

    /// Whether a GET/HEAD is answered 304 Not Modified (RFC 9110 §13.2.2, steps 3 and 4):
    /// If-None-Match decides when present (weak comparison, `*` matches any current
    /// representation) and If-Modified-Since is then ignored; otherwise If-Modified-Since
    /// is true when the file is not newer than the date. An invalid date is ignored
    /// (RFC 9110 §13.1.3).
    pub(super) fn is_not_modified(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if let Some(tags) = if_none_match {
            return tags.trim() == "*" || entity_tags(tags).any(|tag| weak_eq(tag, &self.etag));
        }
        let (Some(since), Some(modified)) = (if_modified_since, self.last_modified) else {
            return false;
        };
        match httpdate::parse_http_date(since.trim()) {
            Ok(since) => modified <= since,
            Err(_) => false,
        }
    }

    /// Whether a Range applies given If-Range (RFC 9110 §13.1.5): always without one;
    /// with an entity tag, only on a strong match (a weak tag never matches); with a
    /// date, only when it equals Last-Modified exactly. Anything else: the whole file.
    pub(super) fn is_range_allowed(&self, if_range: Option<&str>) -> bool {
        let Some(value) = if_range.map(str::trim) else {
            return true;
        };
        // RFC 9110 §13.1.5: an entity-tag starts with DQUOTE or "W/", a date never does.
        if value.starts_with('"') || value.starts_with("W/") {
            return value == self.etag;
        }
        match (httpdate::parse_http_date(value), self.last_modified) {
            (Ok(date), Some(modified)) => date == modified,
            _ => false,
        }
    }
}

/// The entity tags of an If-None-Match list (RFC 9110 §8.8.3), each with its optional
/// `W/` and quotes. A tag may contain ',' so the list is scanned, not split; parsing stops
/// at the first malformed element.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let start = rest;
        let after_weak = rest.strip_prefix("W/").unwrap_or(rest);
        let opaque = after_weak.strip_prefix('"')?;
        let close = opaque.find('"')?;
        let tag_len = (start.len() - opaque.len()) + close + 1;
        let tag = &start[..tag_len];
        rest = &start[tag_len..];
        Some(tag)
    })
}

/// Weak comparison (RFC 9110 §8.8.3.2): the opaque tags match, `W/` ignored on both sides.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::new(secs, nanos))
    }

    fn validators() -> Validators {
        // 2023-11-14T22:13:20.5Z
        Validators::new(255, at(1_700_000_000, 500_000_000), None)
    }

    const LAST_MODIFIED: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    #[test]
    fn etag_is_strong_from_size_and_mtime_nanos() {
        assert_eq!(validators().etag, "\"ff-17979cfe53f76500\"");
    }

    #[test]
    fn precompressed_sibling_etag_names_its_coding() {
        let gzip = Validators::new(255, at(1_700_000_000, 500_000_000), Some(Encoding::Gzip));
        assert_eq!(gzip.etag, "\"ff-17979cfe53f76500-gzip\"");
    }

    #[test]
    fn last_modified_is_the_mtime_in_whole_seconds() {
        assert_eq!(validators().last_modified().as_deref(), Some(LAST_MODIFIED));
    }

    #[test]
    fn no_mtime_means_no_last_modified_and_size_only_etag() {
        let validators = Validators::new(16, None, None);
        assert_eq!(validators.etag, "\"10\"");
        assert_eq!(validators.last_modified(), None);
        assert!(!validators.is_not_modified(None, Some(LAST_MODIFIED)));
    }

    #[test]
    fn if_none_match_with_current_tag_is_not_modified() {
        let v = validators();
        let tag = v.etag.clone();
        assert!(v.is_not_modified(Some(&tag), None));
        assert!(v.is_not_modified(Some(&format!("\"other\", W/{tag}")), None));
        assert!(v.is_not_modified(Some("*"), None));
    }

    #[test]
    fn if_none_match_tag_containing_a_comma_is_one_tag() {
        let v = Validators {
            etag: "\"a,b\"".into(),
            last_modified: None,
        };
        assert!(v.is_not_modified(Some("\"x\", \"a,b\""), None));
        assert!(!v.is_not_modified(Some("\"a\", \"b\""), None));
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let v = validators();
        // A stale tag with a date that alone would give 304: the tag decides, 200.
        assert!(!v.is_not_modified(Some("\"stale\""), Some(LAST_MODIFIED)));
    }

    #[test]
    fn if_modified_since_not_older_than_mtime_is_not_modified() {
        let v = validators();
        assert!(v.is_not_modified(None, Some(LAST_MODIFIED)));
        assert!(v.is_not_modified(None, Some("Wed, 15 Nov 2023 00:00:00 GMT")));
        assert!(!v.is_not_modified(None, Some("Tue, 14 Nov 2023 22:13:19 GMT")));
    }

    #[test]
    fn invalid_if_modified_since_is_ignored() {
        assert!(!validators().is_not_modified(None, Some("yesterday")));
    }

    #[test]
    fn if_range_with_strong_matching_etag_allows_range() {
        let v = validators();
        assert!(v.is_range_allowed(None));
        assert!(v.is_range_allowed(Some(&v.etag.clone())));
        assert!(!v.is_range_allowed(Some("\"other\"")));
    }

    #[test]
    fn if_range_with_weak_etag_never_matches() {
        let v = validators();
        let weak = format!("W/{}", v.etag);
        assert!(!v.is_range_allowed(Some(&weak)));
    }

    #[test]
    fn if_range_date_must_equal_last_modified_exactly() {
        let v = validators();
        assert!(v.is_range_allowed(Some(LAST_MODIFIED)));
        assert!(!v.is_range_allowed(Some("Wed, 15 Nov 2023 00:00:00 GMT")));
        assert!(!v.is_range_allowed(Some("garbage")));
    }
}
