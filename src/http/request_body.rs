//! Request bodies: the decoder that takes a body off the connection's buffer (by length or
//! chunked), and `RequestBody`, the receiving end a handler reads it from, on any thread.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::{mpsc, Notify};

use super::connection::CLIENT_TIMEOUT;
use super::direct_body::DirectBody;
use super::request::BodyFraming;

/// Longest chunk-size line (size plus extensions) or trailer section accepted.
const MAX_CHUNK_LINE_BYTES: usize = 4096;
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Why a request body could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyReadError {
    /// The chunked coding was broken (RFC 9112 §7.1).
    Malformed(&'static str),
    /// The client closed the connection before the end of the body.
    Incomplete,
    /// The client sent nothing for CLIENT_TIMEOUT.
    TimedOut,
    /// The response went out before the body was asked for, so the client, waiting for
    /// `100 Continue`, was never told to send it.
    NotRequested,
}

impl std::fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyReadError::Malformed(why) => write!(f, "invalid chunked body: {why}"),
            BodyReadError::Incomplete => f.write_str("the client closed before the body ended"),
            BodyReadError::TimedOut => {
                write!(f, "no body data for {}s", CLIENT_TIMEOUT.as_secs())
            }
            BodyReadError::NotRequested => {
                f.write_str("the body was asked for after the response was sent")
            }
        }
    }
}

pub enum Decoded {
    Data(Bytes),
    /// The buffer holds no more of the body; read from the socket and call again.
    NeedMore,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Reading the hex size; `line` counts the bytes of the size line so far.
    Size {
        value: u64,
        digits: u32,
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
    TrailerStart {
        total: usize,
    },
    TrailerLine {
        total: usize,
    },
    TrailerLf {
        total: usize,
    },
    EndLf,
    Done,
}

pub enum BodyDecoder {
    Length(u64),
    Chunked(Chunked),
}

impl BodyDecoder {
    pub fn new(framing: BodyFraming) -> BodyDecoder {
        match framing {
            BodyFraming::Empty => BodyDecoder::Length(0),
            BodyFraming::Length(length) => BodyDecoder::Length(length),
            BodyFraming::Chunked => BodyDecoder::Chunked(Chunked::Size {
                value: 0,
                digits: 0,
                line: 0,
            }),
        }
    }

    /// Body bytes still expected, when known: how much to read at once.
    pub fn remaining_hint(&self) -> Option<u64> {
        match self {
            BodyDecoder::Length(remaining) => Some(*remaining),
            BodyDecoder::Chunked(Chunked::Data(remaining)) => Some(*remaining),
            BodyDecoder::Chunked(_) => None,
        }
    }

    /// The next piece of body data from the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BodyReadError> {
        match self {
            BodyDecoder::Length(0) => Ok(Decoded::End),
            BodyDecoder::Length(_) if buf.is_empty() => Ok(Decoded::NeedMore),
            BodyDecoder::Length(remaining) => {
                let take = (*remaining).min(buf.len() as u64);
                *remaining -= take;
                Ok(Decoded::Data(buf.split_to(take as usize).freeze()))
            }
            BodyDecoder::Chunked(state) => decode_chunked(state, buf),
        }
    }
}

fn decode_chunked(state: &mut Chunked, buf: &mut BytesMut) -> Result<Decoded, BodyReadError> {
    use BodyReadError::Malformed;
    loop {
        match state {
            Chunked::Done => return Ok(Decoded::End),
            Chunked::Data(_) if buf.is_empty() => return Ok(Decoded::NeedMore),
            Chunked::Data(remaining) => {
                let take = (*remaining).min(buf.len() as u64);
                *remaining -= take;
                if *remaining == 0 {
                    *state = Chunked::DataCr;
                }
                return Ok(Decoded::Data(buf.split_to(take as usize).freeze()));
            }
            _ => {}
        }
        let Some(&byte) = buf.first() else {
            return Ok(Decoded::NeedMore);
        };
        buf.advance(1);
        *state = match (*state, byte) {
            (Chunked::Size { line, .. } | Chunked::Extension { line, .. }, _)
                if line >= MAX_CHUNK_LINE_BYTES =>
            {
                return Err(Malformed("chunk-size line too long"))
            }
            (
                Chunked::Size {
                    value,
                    digits,
                    line,
                },
                b,
            ) if b.is_ascii_hexdigit() => {
                if digits >= 16 {
                    return Err(Malformed("chunk size too large"));
                }
                let digit = u64::from((b as char).to_digit(16).unwrap_or_default());
                Chunked::Size {
                    value: value << 4 | digit,
                    digits: digits + 1,
                    line: line + 1,
                }
            }
            (Chunked::Size { digits: 0, .. }, _) => return Err(Malformed("missing chunk size")),
            (Chunked::Size { value, .. } | Chunked::Extension { value, .. }, b'\r') => {
                Chunked::SizeLf { value }
            }
            // RFC 9112 §7.1.1: whitespace may precede `;`; extensions are skipped.
            (Chunked::Size { value, line, .. }, b';' | b' ' | b'\t') => Chunked::Extension {
                value,
                line: line + 1,
            },
            (Chunked::Size { .. }, _) => return Err(Malformed("invalid chunk size")),
            (Chunked::Extension { value, line }, b) if b == b'\t' || (b >= b' ' && b != 0x7f) => {
                Chunked::Extension {
                    value,
                    line: line + 1,
                }
            }
            (Chunked::Extension { .. }, _) => return Err(Malformed("invalid chunk extension")),
            (Chunked::SizeLf { value: 0 }, b'\n') => Chunked::TrailerStart { total: 0 },
            (Chunked::SizeLf { value }, b'\n') => Chunked::Data(value),
            (Chunked::SizeLf { .. }, _) => {
                return Err(Malformed("chunk-size line not ended by CRLF"))
            }
            (Chunked::DataCr, b'\r') => Chunked::DataLf,
            (Chunked::DataLf, b'\n') => Chunked::Size {
                value: 0,
                digits: 0,
                line: 0,
            },
            (Chunked::DataCr | Chunked::DataLf, _) => {
                return Err(Malformed("chunk data not followed by CRLF"))
            }
            (Chunked::TrailerStart { .. }, b'\r') => Chunked::EndLf,
            (Chunked::TrailerLine { total }, b'\r') => Chunked::TrailerLf { total },
            (Chunked::TrailerStart { total } | Chunked::TrailerLine { total }, b) => {
                if total >= MAX_TRAILER_BYTES {
                    return Err(Malformed("trailer section too large"));
                }
                if b < b' ' && b != b'\t' {
                    return Err(Malformed("invalid trailer line"));
                }
                Chunked::TrailerLine { total: total + 1 }
            }
            (Chunked::TrailerLf { total }, b'\n') => Chunked::TrailerStart { total },
            (Chunked::EndLf, b'\n') => Chunked::Done,
            (Chunked::TrailerLf { .. } | Chunked::EndLf, _) => {
                return Err(Malformed("trailer line not ended by CRLF"))
            }
            (Chunked::Done | Chunked::Data(_), _) => unreachable!("handled before the match"),
        };
    }
}

/// What a handler reads a request body from.
pub struct RequestBody {
    /// Data at hand when the request was dispatched (often the whole body).
    first: Option<Bytes>,
    /// The rest, fed by the connection; `None` when `first` is all there is.
    rest: Option<mpsc::Receiver<Result<Bytes, BodyReadError>>>,
    /// Or the rest, read by the handler's thread off the socket itself.
    direct: Option<DirectBody>,
    /// Set while the client waits for `100 Continue`: the first read asks the connection to send it.
    continue_wanted: Option<Arc<Notify>>,
}

impl RequestBody {
    /// A body that arrived whole with its head.
    pub fn complete(data: Bytes) -> RequestBody {
        RequestBody {
            first: Some(data),
            rest: None,
            direct: None,
            continue_wanted: None,
        }
    }

    /// A body whose rest the handler's thread reads off the socket.
    pub(super) fn direct(first: Option<Bytes>, rest: DirectBody) -> RequestBody {
        RequestBody {
            first,
            rest: None,
            direct: Some(rest),
            continue_wanted: None,
        }
    }

    pub(super) fn streamed(
        first: Option<Bytes>,
        rest: mpsc::Receiver<Result<Bytes, BodyReadError>>,
        continue_wanted: Option<Arc<Notify>>,
    ) -> RequestBody {
        RequestBody {
            first,
            rest: Some(rest),
            direct: None,
            continue_wanted,
        }
    }

    /// What arrived with the head, if it was not taken yet.
    pub fn take_first(&mut self) -> Option<Bytes> {
        self.first.take()
    }

    /// Where the rest of the body is read from by blocking reads, once `first` is taken; when
    /// `None`, it comes through `poll_next`.
    pub fn direct_mut(&mut self) -> Option<&mut DirectBody> {
        if self.first.is_some() {
            return None;
        }
        self.direct.as_mut()
    }

    /// The next piece of the body, or `None` at its end. For a body with a `DirectBody`,
    /// only `first` comes this way.
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BodyReadError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        if let Some(wanted) = self.continue_wanted.take() {
            wanted.notify_one();
        }
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let next = rest.poll_recv(cx);
        if let Poll::Ready(None | Some(Err(_))) = next {
            self.rest = None;
        }
        next
    }

    /// Whether the body is known to be over without waiting.
    pub fn is_end_stream(&self) -> bool {
        self.first.is_none()
            && self.direct.as_ref().is_none_or(DirectBody::is_over)
            && self
                .rest
                .as_ref()
                .is_none_or(|rest| rest.is_closed() && rest.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: BodyFraming, pieces: &[&[u8]]) -> Result<Vec<u8>, BodyReadError> {
        let mut decoder = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut pieces = pieces.iter();
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::End => return Ok(body),
                Decoded::NeedMore => match pieces.next() {
                    Some(piece) => buf.extend_from_slice(piece),
                    None => return Err(BodyReadError::Incomplete),
                },
            }
        }
    }

    #[test]
    fn chunked_body_is_decoded_across_any_split() {
        let wire = b"5;ext=1\r\nhello\r\n6 \r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
        for split in 0..wire.len() {
            let (a, b) = wire.split_at(split);
            assert_eq!(
                decode_all(BodyFraming::Chunked, &[a, b]).unwrap(),
                b"hello world",
                "split at {split}"
            );
        }
    }

    #[test]
    fn broken_chunked_bodies_are_errors() {
        for wire in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"fffffffffffffffff\r\n",
            b"5\r\nhelloX",
            b"5\nhello\r\n",
            b"0\r\nbad\x01trailer\r\n\r\n",
        ] {
            assert!(
                matches!(
                    decode_all(BodyFraming::Chunked, &[wire]),
                    Err(BodyReadError::Malformed(_))
                ),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn length_body_stops_at_its_length() {
        let mut decoder = BodyDecoder::new(BodyFraming::Length(3));
        let mut buf = BytesMut::from(&b"abcGET"[..]);
        assert!(matches!(decoder.decode(&mut buf), Ok(Decoded::Data(d)) if d == "abc"));
        assert!(matches!(decoder.decode(&mut buf), Ok(Decoded::End)));
        assert_eq!(&buf[..], b"GET");
    }
}
