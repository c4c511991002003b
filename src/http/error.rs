//! Why a request could not be read: the refusals of a request head (each answered with its
//! status by `status.rs`), and the ways a request body can break off.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::limits::MAX_HEAD_BYTES;

/// Why a request was refused before the app saw it. The connection is closed after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Not valid HTTP/1.1; the text names the rule broken.
    Malformed(Cow<'static, str>),
    LineTooLong {
        limit: usize,
    },
    TooManyFields {
        limit: usize,
    },
    FieldTooLarge {
        limit: usize,
    },
    HeadTooLarge,
    BodyTooLarge {
        limit: u64,
    },
    UnsupportedCoding(String),
    /// CONNECT: a WSGI app cannot tunnel.
    Tunnel,
    UnsupportedVersion,
    HeadTimeout(Duration),
    /// A plain-HTTP request on a port that serves TLS (nginx answers it with 400 too).
    PlainHttpOnTlsPort,
}

impl RequestError {
    pub fn malformed(why: impl Into<Cow<'static, str>>) -> RequestError {
        RequestError::Malformed(why.into())
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed(why) => f.write_str(why),
            RequestError::LineTooLong { limit } => {
                write!(f, "request line over {limit} bytes (--limit-request-line)")
            }
            RequestError::TooManyFields { limit } => {
                write!(
                    f,
                    "more than {limit} header fields (--limit-request-fields)"
                )
            }
            RequestError::FieldTooLarge { limit } => write!(
                f,
                "a header line over {limit} bytes (--limit-request-field-size)"
            ),
            RequestError::HeadTooLarge => write!(f, "request head over {MAX_HEAD_BYTES} bytes"),
            RequestError::BodyTooLarge { limit } => {
                write!(f, "request body over {limit} bytes (--max-request-body)")
            }
            RequestError::UnsupportedCoding(coding) => {
                write!(f, "unsupported transfer coding {coding:?} (RFC 9112 §6.1)")
            }
            RequestError::Tunnel => f.write_str("CONNECT cannot be served by a WSGI app"),
            RequestError::UnsupportedVersion => f.write_str("unsupported HTTP version"),
            RequestError::PlainHttpOnTlsPort => {
                f.write_str("a plain HTTP request was sent to a port that serves HTTPS")
            }
            RequestError::HeadTimeout(timeout) => write!(
                f,
                "request head not complete within {}s (--header-timeout)",
                timeout.as_secs_f64()
            ),
        }
    }
}

/// Why a request body could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyReadError {
    /// The chunked coding was broken; the text names the rule (RFC 9112 §7.1).
    Malformed(&'static str),
    /// The body grew past `--max-request-body`.
    TooLarge { limit: u64 },
    /// The client closed the connection before the end of the body.
    Incomplete,
    /// The client sent nothing for this long (`--socket-timeout`).
    TimedOut(Duration),
    /// The response went out before the body was asked for, so the client, waiting for
    /// `100 Continue`, was never told to send it.
    NotRequested,
}

impl BodyReadError {
    /// The refusal this is when it happens before the response has started: the client broke
    /// the protocol or a limit (400, 413), rather than just going away.
    pub fn as_refusal(&self) -> Option<RequestError> {
        match self {
            BodyReadError::Malformed(why) => Some(RequestError::malformed(*why)),
            BodyReadError::TooLarge { limit } => Some(RequestError::BodyTooLarge { limit: *limit }),
            _ => None,
        }
    }
}

impl fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyReadError::Malformed(why) => write!(f, "invalid chunked body: {why}"),
            BodyReadError::TooLarge { limit } => {
                write!(f, "request body over {limit} bytes (--max-request-body)")
            }
            BodyReadError::Incomplete => f.write_str("the client closed before the body ended"),
            BodyReadError::TimedOut(timeout) => write!(
                f,
                "no body data for {}s (--socket-timeout)",
                timeout.as_secs_f64()
            ),
            BodyReadError::NotRequested => {
                f.write_str("the body was asked for after the response was sent")
            }
        }
    }
}

impl std::error::Error for BodyReadError {}
impl std::error::Error for RequestError {}
