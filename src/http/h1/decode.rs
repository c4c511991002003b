//! The request body decoder: takes a body off the connection's buffer, by length or chunked
//! (RFC 9112 §7.1), strictly: no whitespace after a chunk size unless an extension follows, no
//! bare LF, bounded sizes, extensions and trailers, trailers read and discarded, and none that
//! would change how the request is framed, routed or authorised (RFC 9110 §6.5.1).

use bytes::{Buf, Bytes, BytesMut};

use super::fields::BodyFraming;
use crate::http::error::BodyReadError;
use crate::http::limits::{MAX_CHUNK_EXTENSION_BYTES, MAX_CHUNK_LINE_BYTES, MAX_TRAILER_BYTES};

pub enum Decoded {
    Data(Bytes),
    /// The buffer holds no more of the body; read from the socket and call again.
    NeedMore,
    End,
}

/// Where the chunked decoder is, byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Reading the hex size; `line` counts the bytes of the size line so far.
    Size {
        value: u64,
        digits: u32,
        line: usize,
    },
    /// Whitespace after the size: only `;` and an extension may follow (RFC 9112 §7.1.1 BWS).
    SizeSpace {
        value: u64,
        line: usize,
    },
    Extension {
        value: u64,
        line: usize,
    },
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

/// Trailer names that would change how the request is framed, routed, authorised or
/// interpreted if a later hop merged them into the head (RFC 9110 §6.5.1); `if-*` too.
const FORBIDDEN_TRAILERS: &[&[u8]] = &[
    b"content-length",
    b"transfer-encoding",
    b"host",
    b"authorization",
    b"proxy-authorization",
    b"cookie",
    b"set-cookie",
    b"content-type",
    b"content-encoding",
    b"content-range",
    b"trailer",
    b"te",
    b"connection",
    b"expect",
    b"range",
    b"cache-control",
    b"max-forwards",
];

/// Bytes of a trailer name kept to compare with the forbidden ones (all are shorter).
const TRAILER_NAME_KEPT: usize = 24;

pub struct ChunkedDecoder {
    state: Chunked,
    extension_bytes: usize,
    trailer_bytes: usize,
    /// The current trailer name, lowercased, up to TRAILER_NAME_KEPT bytes.
    trailer_name: [u8; TRAILER_NAME_KEPT],
    trailer_name_len: usize,
}

pub struct BodyDecoder {
    kind: DecoderKind,
    /// Data bytes decoded so far, held to `limit` (chunked bodies; a length is checked up front).
    decoded: u64,
    limit: Option<u64>,
}

enum DecoderKind {
    Length(u64),
    Chunked(ChunkedDecoder),
}

fn malformed(why: &'static str) -> BodyReadError {
    BodyReadError::Malformed(why)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl BodyDecoder {
    /// `limit` is `--max-request-body`.
    pub fn new(framing: BodyFraming, limit: Option<u64>) -> BodyDecoder {
        let kind = match framing {
            BodyFraming::Empty => DecoderKind::Length(0),
            BodyFraming::Length(length) => DecoderKind::Length(length),
            BodyFraming::Chunked => DecoderKind::Chunked(ChunkedDecoder {
                state: Chunked::Size {
                    value: 0,
                    digits: 0,
                    line: 0,
                },
                extension_bytes: 0,
                trailer_bytes: 0,
                trailer_name: [0; TRAILER_NAME_KEPT],
                trailer_name_len: 0,
            }),
        };
        BodyDecoder {
            kind,
            decoded: 0,
            limit,
        }
    }

    /// A decoder for the last `remaining` bytes of a body of known length.
    pub fn remaining(remaining: u64) -> BodyDecoder {
        BodyDecoder::new(BodyFraming::Length(remaining), None)
    }

    /// Body bytes still expected, when known: how much to read at once.
    pub fn remaining_hint(&self) -> Option<u64> {
        match &self.kind {
            DecoderKind::Length(remaining) => Some(*remaining),
            DecoderKind::Chunked(ChunkedDecoder {
                state: Chunked::Data(remaining),
                ..
            }) => Some(*remaining),
            DecoderKind::Chunked(_) => None,
        }
    }

    /// Bytes of body data still expected of a body of known length (0 for chunked).
    pub fn length_remaining(&self) -> Option<u64> {
        match self.kind {
            DecoderKind::Length(remaining) => Some(remaining),
            DecoderKind::Chunked(_) => None,
        }
    }

    /// The next piece of body data from the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BodyReadError> {
        let decoded = match &mut self.kind {
            DecoderKind::Length(0) => return Ok(Decoded::End),
            DecoderKind::Length(_) if buf.is_empty() => return Ok(Decoded::NeedMore),
            DecoderKind::Length(remaining) => {
                let take = (*remaining).min(buf.len() as u64);
                *remaining -= take;
                return Ok(Decoded::Data(buf.split_to(take as usize).freeze()));
            }
            DecoderKind::Chunked(chunked) => chunked.decode(buf)?,
        };
        if let (Decoded::Data(data), Some(limit)) = (&decoded, self.limit) {
            self.decoded += data.len() as u64;
            if self.decoded > limit {
                return Err(BodyReadError::TooLarge { limit });
            }
        }
        Ok(decoded)
    }
}

impl ChunkedDecoder {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BodyReadError> {
        loop {
            match self.state {
                Chunked::Done => return Ok(Decoded::End),
                Chunked::Data(_) if buf.is_empty() => return Ok(Decoded::NeedMore),
                Chunked::Data(remaining) => {
                    let take = remaining.min(buf.len() as u64);
                    self.state = match remaining - take {
                        0 => Chunked::DataCr,
                        left => Chunked::Data(left),
                    };
                    return Ok(Decoded::Data(buf.split_to(take as usize).freeze()));
                }
                _ => {}
            }
            let Some(&byte) = buf.first() else {
                return Ok(Decoded::NeedMore);
            };
            buf.advance(1);
            self.state = self.step(byte)?;
        }
    }

    /// The state after `b`, for every state but `Data` and `Done`.
    fn step(&mut self, b: u8) -> Result<Chunked, BodyReadError> {
        use Chunked::*;
        if b == b'\n' && !matches!(self.state, SizeLf { .. } | DataLf | TrailerLf | EndLf) {
            return Err(malformed("bare LF in chunked framing (RFC 9112 §7.1)"));
        }
        Ok(match (self.state, b) {
            (Size { line, .. } | SizeSpace { line, .. } | Extension { line, .. }, _)
                if line >= MAX_CHUNK_LINE_BYTES =>
            {
                return Err(malformed("chunk-size line too long (RFC 9112 §7.1)"))
            }
            (
                Size {
                    value,
                    digits,
                    line,
                },
                b,
            ) if b.is_ascii_hexdigit() => {
                if digits >= 16 {
                    return Err(malformed("chunk size over 16 hex digits (RFC 9112 §7.1)"));
                }
                let digit = u64::from((b as char).to_digit(16).unwrap_or_default());
                Size {
                    value: value << 4 | digit,
                    digits: digits + 1,
                    line: line + 1,
                }
            }
            (Size { digits: 0, .. }, _) => {
                return Err(malformed("missing chunk size (RFC 9112 §7.1)"))
            }
            (Size { value, .. } | Extension { value, .. }, b'\r') => SizeLf { value },
            (Size { value, line, .. } | SizeSpace { value, line }, b' ' | b'\t') => SizeSpace {
                value,
                line: line + 1,
            },
            (SizeSpace { .. }, b'\r') => {
                return Err(malformed(
                    "chunk size followed by whitespace (RFC 9112 §7.1)",
                ))
            }
            (Size { value, line, .. } | SizeSpace { value, line }, b';') => {
                self.count_extension()?;
                Extension {
                    value,
                    line: line + 1,
                }
            }
            (Size { .. } | SizeSpace { .. }, _) => {
                return Err(malformed("invalid chunk size (RFC 9112 §7.1)"))
            }
            (Extension { value, line }, b) if b == b'\t' || (b >= b' ' && b != 0x7f) => {
                self.count_extension()?;
                Extension {
                    value,
                    line: line + 1,
                }
            }
            (Extension { .. }, _) => {
                return Err(malformed("invalid chunk extension (RFC 9112 §7.1.1)"))
            }
            (SizeLf { value: 0 }, b'\n') => TrailerStart,
            (SizeLf { value }, b'\n') => Data(value),
            (SizeLf { .. }, _) => {
                return Err(malformed(
                    "chunk-size line not ended by CRLF (RFC 9112 §7.1)",
                ))
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size {
                value: 0,
                digits: 0,
                line: 0,
            },
            (DataCr | DataLf, _) => {
                return Err(malformed("chunk data not followed by CRLF (RFC 9112 §7.1)"))
            }
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart | TrailerName, b) if is_token(b) => {
                self.count_trailer()?;
                if self.state == TrailerStart {
                    self.trailer_name_len = 0;
                }
                if self.trailer_name_len < TRAILER_NAME_KEPT {
                    self.trailer_name[self.trailer_name_len] = b.to_ascii_lowercase();
                }
                self.trailer_name_len += 1;
                TrailerName
            }
            (TrailerName, b':') => {
                self.check_trailer_name()?;
                TrailerValue
            }
            (TrailerStart | TrailerName, _) => {
                return Err(malformed(
                    "trailer line is not `name: value` (RFC 9112 §7.1.2)",
                ))
            }
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, b) if b == b'\t' || (b >= b' ' && b != 0x7f) => {
                self.count_trailer()?;
                TrailerValue
            }
            (TrailerValue, _) => {
                return Err(malformed(
                    "control character in a trailer field (RFC 9110 §5.5)",
                ))
            }
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            (TrailerLf | EndLf, _) => {
                return Err(malformed(
                    "trailer line not ended by CRLF (RFC 9112 §7.1.2)",
                ))
            }
            (Data(_) | Done, _) => unreachable!("handled before step"),
        })
    }

    fn count_extension(&mut self) -> Result<(), BodyReadError> {
        self.extension_bytes += 1;
        if self.extension_bytes > MAX_CHUNK_EXTENSION_BYTES {
            return Err(malformed("chunk extensions over 4096 bytes"));
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), BodyReadError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err(malformed("trailer section over 64 KiB"));
        }
        Ok(())
    }

    fn check_trailer_name(&self) -> Result<(), BodyReadError> {
        let kept = &self.trailer_name[..self.trailer_name_len.min(TRAILER_NAME_KEPT)];
        let whole = self.trailer_name_len <= TRAILER_NAME_KEPT;
        if kept.starts_with(b"if-") || (whole && FORBIDDEN_TRAILERS.contains(&kept)) {
            return Err(malformed(
                "a trailer field that must not be sent as a trailer (RFC 9110 §6.5.1)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
