//! A request id for each request: the one a trusted proxy sent in `X-Request-ID`, or a new
//! UUIDv7 (time-ordered, so ids sort by arrival, and 74 random bits). The app sees it as
//! `HTTP_X_REQUEST_ID`, the client in the response header.

/// The longest id taken from a proxy; longer ones are replaced (they only feed logs).
pub const MAX_INCOMING_ID_BYTES: usize = 200;

/// The id for a request that arrived with `incoming` (its `X-Request-ID`, if any) from a
/// peer that is (`trusted`) or is not a trusted proxy. An incoming id is kept only when it
/// is short and plain (visible ASCII without spaces or quotes), so it cannot forge log lines.
pub fn request_id(incoming: Option<&[u8]>, trusted: bool) -> String {
    match incoming {
        Some(id) if trusted && is_plain(id) => String::from_utf8_lossy(id).into_owned(),
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

fn is_plain(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INCOMING_ID_BYTES
        && id
            .iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_plain_id_is_kept() {
        assert_eq!(request_id(Some(b"abc-123"), true), "abc-123");
    }

    #[test]
    fn an_untrusted_or_unplain_id_is_replaced_by_a_uuid_v7() {
        for (incoming, trusted) in [
            (Some(&b"abc"[..]), false),
            (Some(&b"a b"[..]), true),
            (Some(&b"x\"y"[..]), true),
            (Some(&[b'a'; MAX_INCOMING_ID_BYTES + 1][..]), true),
            (None, true),
        ] {
            let id = request_id(incoming, trusted);
            let parsed = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(parsed.get_version_num(), 7);
        }
        assert_eq!(
            request_id(Some(&[b'a'; MAX_INCOMING_ID_BYTES]), true).len(),
            200
        );
    }

    #[test]
    fn new_ids_differ_and_sort_by_time() {
        let (a, b) = (request_id(None, false), request_id(None, false));
        assert_ne!(a, b);
        assert!(a < b || a[..13] == b[..13]);
    }
}
