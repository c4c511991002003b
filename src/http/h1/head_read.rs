//! Reading what starts a request off the wire: the next HTTP/1 head (or uwsgi packet), and
//! the HTTP/2 preface when a plain-port client opens with it. Owns the header timeout and
//! the "head in progress" mark for the idle watch; knows nothing of handlers or responses.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::conn::ConnectionError;
use super::idle::ConnectionActivity;
use super::parse::{parse_head, RequestHead};
use crate::config::Protocol;
use crate::http::error::RequestError;
use crate::http::h2::PREFACE;
use crate::http::limits::{Limits, HEAD_READ_BYTES};
use crate::http::uwsgi;

/// Reads until `buf` holds the whole HTTP/2 preface, within `--header-timeout`; an error if
/// what arrives is not the preface after all.
pub(super) async fn read_preface<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<(), ConnectionError> {
    let deadline = Instant::now() + limits.header_timeout;
    while buf.len() < PREFACE.len() {
        match tokio::time::timeout_at(deadline, reader.read_buf(buf)).await {
            Ok(Ok(0)) => return Err(ConnectionError::IncompleteHead),
            Ok(read) => read?,
            Err(_) => {
                return Err(ConnectionError::Refused(RequestError::HeadTimeout(
                    limits.header_timeout,
                )))
            }
        };
    }
    match buf.starts_with(PREFACE) {
        true => Ok(()),
        false => Err(ConnectionError::Refused(RequestError::UnsupportedVersion)),
    }
}

/// Reads until `buf` starts with a whole request head, and parses it into `head`; `head` is
/// left `None` when the client closed between requests. Once part of a head is in, the rest
/// must come within the header timeout; the connection counts as busy meanwhile, so the idle
/// watch leaves it to that timeout. PERF: a head that arrives in one read arms no timer, and
/// the ~250-byte head is written to the caller's place instead of being returned through
/// this future's output and the caller's match (benches/callgrind hello).
pub(super) async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    (limits, protocol): (&Limits, Protocol),
    activity: &Arc<ConnectionActivity>,
    head: &mut Option<RequestHead>,
) -> Result<(), ConnectionError> {
    let mut deadline = None;
    let mut _head_in_progress = None;
    loop {
        if !buf.is_empty() {
            let parsed = match protocol {
                Protocol::Http => parse_head(buf, limits),
                Protocol::Uwsgi => uwsgi::parse_packet(buf, limits),
            };
            match parsed {
                Ok(Some(parsed)) => {
                    *head = Some(parsed);
                    return Ok(());
                }
                Ok(None) => {}
                Err(error) => return Err(ConnectionError::Refused(error)),
            }
            if deadline.is_none() {
                deadline = Some(Instant::now() + limits.header_timeout);
                _head_in_progress = Some(activity.head_started());
            }
        }
        buf.reserve(HEAD_READ_BYTES);
        let read = match deadline {
            None => reader.read_buf(buf).await?,
            Some(deadline) => match tokio::time::timeout_at(deadline, reader.read_buf(buf)).await {
                Ok(read) => read?,
                Err(_) => {
                    return Err(ConnectionError::Refused(RequestError::HeadTimeout(
                        limits.header_timeout,
                    )))
                }
            },
        };
        if read == 0 {
            return match buf.iter().all(|b| b.is_ascii_whitespace()) {
                true => Ok(()),
                false => Err(ConnectionError::IncompleteHead),
            };
        }
    }
}
