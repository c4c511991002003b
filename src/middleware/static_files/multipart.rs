//! The multipart/byteranges framing of a 206 with several ranges (RFC 9110 §14.6): the
//! boundary, each part's header block, the closing delimiter, and the exact total length
//! (so the response carries Content-Length rather than chunking). Knows nothing of how the
//! ranges were chosen (range.rs) nor of the file itself: the caller streams the pieces.

use std::hash::{BuildHasher, Hasher};

use super::range::ByteRange;
use super::MultipartPiece;

/// The framed body of a multipart/byteranges response.
pub(super) struct Multipart {
    /// The boundary, for the `Content-Type: multipart/byteranges; boundary=...` header.
    pub(super) boundary: String,
    /// Part headers interleaved with the ranges, ready to stream.
    pub(super) pieces: Vec<MultipartPiece>,
    /// The exact body length: every literal plus every range.
    pub(super) len: u64,
}

/// Frames `ranges` of a `size`-byte file whose own type is `content_type`.
pub(super) fn frame(ranges: &[ByteRange], size: u64, content_type: &str) -> Multipart {
    frame_with_boundary(new_boundary(), ranges, size, content_type)
}

fn frame_with_boundary(
    boundary: String,
    ranges: &[ByteRange],
    size: u64,
    content_type: &str,
) -> Multipart {
    let mut pieces = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut len = 0u64;
    for (index, range) in ranges.iter().enumerate() {
        // RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter; the
        // first part needs none.
        let separator = if index == 0 { "" } else { "\r\n" };
        let head = format!(
            "{separator}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            range.content_range(size)
        );
        len += head.len() as u64 + range.len;
        pieces.push(MultipartPiece::Literal(head.into_bytes()));
        pieces.push(MultipartPiece::Range {
            offset: range.offset,
            len: range.len,
        });
    }
    let close = format!("\r\n--{boundary}--\r\n");
    len += close.len() as u64;
    pieces.push(MultipartPiece::Literal(close.into_bytes()));
    Multipart {
        boundary,
        pieces,
        len,
    }
}

/// A boundary unlikely to occur in the file (RFC 2046 §5.1.1 asks for one that does not).
/// Random per response via std's per-instance random hasher keys, so a file crafted to
/// contain the boundary cannot be prepared in advance; no RNG dependency needed.
fn new_boundary() -> String {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("ferrogate-{random:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(piece: &MultipartPiece) -> &str {
        match piece {
            MultipartPiece::Literal(bytes) => std::str::from_utf8(bytes).expect("ascii"),
            MultipartPiece::Range { .. } => panic!("expected a literal"),
        }
    }

    #[test]
    fn parts_are_framed_with_type_and_content_range() {
        let ranges = [
            ByteRange { offset: 0, len: 2 },
            ByteRange { offset: 5, len: 3 },
        ];
        let body = frame_with_boundary("B".into(), &ranges, 10, "text/plain");
        assert_eq!(body.pieces.len(), 5);
        assert_eq!(
            literal(&body.pieces[0]),
            "--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n"
        );
        assert!(matches!(
            body.pieces[1],
            MultipartPiece::Range { offset: 0, len: 2 }
        ));
        assert_eq!(
            literal(&body.pieces[2]),
            "\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-7/10\r\n\r\n"
        );
        assert_eq!(literal(&body.pieces[4]), "\r\n--B--\r\n");
    }

    #[test]
    fn length_counts_every_literal_and_range() {
        let ranges = [
            ByteRange { offset: 0, len: 2 },
            ByteRange { offset: 5, len: 3 },
        ];
        let body = frame_with_boundary("B".into(), &ranges, 10, "text/plain");
        let counted: u64 = body
            .pieces
            .iter()
            .map(|piece| match piece {
                MultipartPiece::Literal(bytes) => bytes.len() as u64,
                MultipartPiece::Range { len, .. } => *len,
            })
            .sum();
        assert_eq!(body.len, counted);
    }

    #[test]
    fn boundaries_differ_between_responses() {
        assert_ne!(new_boundary(), new_boundary());
    }
}
