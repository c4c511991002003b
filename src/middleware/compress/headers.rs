//! The header rewrite that goes with compressing a response: what changes when the body's
//! bytes become an encoded representation (RFC 9110 §8.4). Owns those edits; knows nothing
//! of whether compression was the right call (`policy`, `negotiate`) nor of the encoders.
//! Called once per compressed response, before its head is sent.

use super::Encoding;

/// Rewrites a response's headers for a body encoded with `encoding`. Header names are
/// matched case-insensitively; the order of the headers kept is unchanged.
///
/// - `Content-Length` is removed: the encoded length is only known once the body is done
///   (a one-shot caller that knows it sets it again).
/// - `Content-Encoding` is set (replacing an `identity` the app may have sent).
/// - `Vary` gains `Accept-Encoding` (RFC 9110 §12.5.5): the response now depends on that
///   request field, and a shared cache must not hand brotli to a client that asked for
///   gzip. An existing `Vary` keeps its names; `Vary: *` already covers everything.
/// - A strong `ETag` becomes weak (RFC 9110 §8.8.3: a strong validator changes with the
///   bytes): the encoded bytes differ from the identity ones the app tagged, and our
///   encoders need not produce the same bytes twice.
/// - `Accept-Ranges` is removed: ranges are answered on the identity representation
///   (`policy` never encodes a range), so advertising them for this one would mislead.
pub fn adjust_headers(headers: &mut Vec<(String, String)>, encoding: Encoding) {
    headers.retain(|(name, _)| {
        !(name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("content-encoding")
            || name.eq_ignore_ascii_case("accept-ranges"))
    });
    headers.push(("Content-Encoding".to_owned(), encoding.token().to_owned()));
    add_vary_accept_encoding(headers);
    for (name, value) in headers.iter_mut() {
        if name.eq_ignore_ascii_case("etag") {
            weaken_etag(value);
        }
    }
}

pub fn add_vary_accept_encoding(headers: &mut Vec<(String, String)>) {
    let mut vary_values = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("vary"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim);
    if vary_values.any(|member| member == "*" || member.eq_ignore_ascii_case("accept-encoding")) {
        return;
    }
    // Append to the first Vary line rather than add a second one: several lines are
    // equivalent (RFC 9110 §5.3) but some caches only read the first.
    match headers
        .iter_mut()
        .find(|(name, value)| name.eq_ignore_ascii_case("vary") && !value.trim().is_empty())
    {
        Some((_, value)) => value.push_str(", Accept-Encoding"),
        None => {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("vary"));
            headers.push(("Vary".to_owned(), "Accept-Encoding".to_owned()));
        }
    }
}

/// `"x"` → `W/"x"`. A weak tag stays as it is, and so does a malformed one (no opening
/// quote): it was never a strong validator, and guessing its form would not make it one.
fn weaken_etag(value: &mut String) {
    let trimmed = value.trim();
    if trimmed.starts_with('"') {
        *value = format!("W/{trimmed}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn adjusted(headers: &[(&str, &str)], encoding: Encoding) -> Vec<(String, String)> {
        let mut headers = owned(headers);
        adjust_headers(&mut headers, encoding);
        headers
    }

    fn values<'a>(headers: &'a [(String, String)], wanted: &str) -> Vec<&'a str> {
        headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    #[test]
    fn a_plain_response_gets_encoding_and_vary_and_loses_its_length() {
        let headers = adjusted(
            &[("Content-Type", "text/html"), ("Content-Length", "1234")],
            Encoding::Brotli,
        );
        assert_eq!(
            headers,
            owned(&[
                ("Content-Type", "text/html"),
                ("Content-Encoding", "br"),
                ("Vary", "Accept-Encoding"),
            ])
        );
    }

    #[test]
    fn content_length_is_dropped_whatever_its_case_or_count() {
        let headers = adjusted(
            &[("content-length", "5"), ("CONTENT-LENGTH", "5")],
            Encoding::Gzip,
        );
        assert!(values(&headers, "content-length").is_empty());
    }

    #[test]
    fn an_identity_content_encoding_is_replaced_not_duplicated() {
        let headers = adjusted(&[("content-encoding", "identity")], Encoding::Zstd);
        assert_eq!(values(&headers, "content-encoding"), ["zstd"]);
    }

    #[test]
    fn vary_keeps_its_other_names_and_gains_accept_encoding() {
        let headers = adjusted(&[("vary", "Cookie, Origin")], Encoding::Gzip);
        assert_eq!(
            values(&headers, "vary"),
            ["Cookie, Origin, Accept-Encoding"]
        );
    }

    #[test]
    fn vary_already_naming_accept_encoding_is_left_alone() {
        let headers = adjusted(
            &[("Vary", "Cookie"), ("Vary", "accept-encoding")],
            Encoding::Gzip,
        );
        assert_eq!(values(&headers, "vary"), ["Cookie", "accept-encoding"]);
    }

    #[test]
    fn vary_star_stays_star() {
        let headers = adjusted(&[("Vary", "*")], Encoding::Gzip);
        assert_eq!(values(&headers, "vary"), ["*"]);
    }

    #[test]
    fn an_empty_vary_becomes_accept_encoding() {
        let headers = adjusted(&[("Vary", " ")], Encoding::Gzip);
        assert_eq!(values(&headers, "vary"), ["Accept-Encoding"]);
    }

    #[test]
    fn a_strong_etag_is_weakened() {
        let headers = adjusted(&[("ETag", "\"abc\"")], Encoding::Brotli);
        assert_eq!(values(&headers, "etag"), ["W/\"abc\""]);
    }

    #[test]
    fn a_weak_or_malformed_etag_is_kept() {
        let headers = adjusted(&[("etag", "W/\"abc\"")], Encoding::Brotli);
        assert_eq!(values(&headers, "etag"), ["W/\"abc\""]);
        let headers = adjusted(&[("etag", "abc")], Encoding::Brotli);
        assert_eq!(values(&headers, "etag"), ["abc"]);
    }

    #[test]
    fn accept_ranges_is_dropped() {
        let headers = adjusted(&[("Accept-Ranges", "bytes")], Encoding::Gzip);
        assert!(values(&headers, "accept-ranges").is_empty());
    }

    #[test]
    fn unrelated_headers_keep_their_order() {
        let headers = adjusted(
            &[
                ("X-A", "1"),
                ("Content-Length", "9"),
                ("Set-Cookie", "a=b"),
                ("X-B", "2"),
            ],
            Encoding::Gzip,
        );
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            ["X-A", "Set-Cookie", "X-B", "Content-Encoding", "Vary"]
        );
    }
}
