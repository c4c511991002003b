//! Ending a connection well: the refusal answer (a 4xx before or instead of a request) and
//! the close that lets the client read it (FIN, TLS close_notify, a short linger over unread
//! bytes). Knows nothing of handlers; conn.rs decides when.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::conn::ConnectionError;
use super::encode::{encode_head, ResponseFraming};
use super::io::{Socket, TimedWriter};
use super::send_file::SendFile;
use super::write::{write_body, WriteBatch};
use crate::http::error::RequestError;
use crate::http::limits::{HEAD_READ_BYTES, LINGER, MAX_LINGER_BYTES};
use crate::http::status::Failure;

/// Answers a connection with `error`'s status before any request is read from it (plain
/// HTTP sent to a TLS port), then closes it.
pub async fn refuse_connection<S: Socket>(mut socket: S, error: RequestError) -> ConnectionError {
    let (mut reader, writer) = socket.halves();
    let mut writer = TimedWriter::new(writer, REFUSAL_WRITE_TIMEOUT);
    refuse(&mut reader, &mut writer, &mut WriteBatch::default(), error).await
}

/// How long a client refused before its first request gets to take the answer.
const REFUSAL_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers a refused request with its status, then closes without resetting the connection.
/// Returns the error for the caller's log line.
pub(super) async fn refuse<R: AsyncRead + Unpin, W: AsyncWrite + SendFile + Unpin>(
    reader: &mut R,
    writer: &mut W,
    batch: &mut WriteBatch,
    error: RequestError,
) -> ConnectionError {
    let response = Failure::Refused(error.clone()).into_response();
    let length = response.body.known_length().unwrap_or(0);
    let framing = ResponseFraming::Length(length);
    encode_head(&mut batch.text, &response, framing, Some(b"close"));
    if write_body(writer, batch, response.body, framing)
        .await
        .is_ok()
    {
        close(reader, writer, true, false).await;
    }
    ConnectionError::Refused(error)
}

/// Ends the connection with a FIN (after TLS's close_notify when `encrypted`). With `unread`
/// (the client may still be sending), what it sends is read and discarded for a moment
/// first: closing a socket with unread data resets the connection, and the reset can
/// destroy the response before the client has read it.
pub(super) async fn close<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut R,
    writer: &mut W,
    unread: bool,
    encrypted: bool,
) {
    // PERF: without `unread`, dropping a plain socket sends the FIN; no shutdown() needed.
    if !unread && !encrypted {
        return;
    }
    // On TLS this sends close_notify first.
    if writer.shutdown().await.is_err() || !unread {
        return;
    }
    let mut discard = vec![0u8; HEAD_READ_BYTES];
    let _ = tokio::time::timeout(LINGER, async {
        let mut total = 0;
        while let Ok(n @ 1..) = reader.read(&mut discard).await {
            total += n;
            if total > MAX_LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}
