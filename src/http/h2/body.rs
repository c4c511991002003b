//! A stream's request body, fed to the handler's `RequestBody` as it reads: each DATA frame
//! goes through a small bounded channel, and its bytes are given back to the client's window
//! (WINDOW_UPDATE) only once the channel has taken them. So a slow app holds the client to
//! `--http2-initial-stream-window-size` plus a few frames, whatever the upload's size.

use std::time::Duration;

use bytes::Bytes;
use h2::RecvStream;
use tokio::sync::mpsc;

use crate::http::{BodyReadError, RequestBody};
use crate::observe::metrics::WorkerMetrics;

/// DATA frames queued for the app beyond what it has read (each at most the frame size).
const QUEUED_FRAMES: usize = 4;

/// How a stream's body is read: its limits, and where its bytes are counted.
pub struct BodyReading {
    pub body_limit: Option<u64>,
    pub socket_timeout: Duration,
    /// With `--metrics-bind`: each DATA frame's bytes, as received.
    pub metrics: Option<WorkerMetrics>,
}

/// The `RequestBody` a handler reads `recv` through, and the task feeding it.
pub fn stream_body(recv: RecvStream, reading: BodyReading) -> RequestBody {
    let (tx, rx) = mpsc::channel(QUEUED_FRAMES);
    tokio::spawn(pump(recv, tx, reading));
    RequestBody::streamed(None, rx, None)
}

async fn pump(
    mut recv: RecvStream,
    tx: mpsc::Sender<Result<Bytes, BodyReadError>>,
    reading: BodyReading,
) {
    let BodyReading {
        body_limit,
        socket_timeout,
        metrics,
    } = reading;
    let mut received = 0u64;
    loop {
        // Dropped by the app (it answered without reading): stop, and let h2 refuse the rest.
        let next = tokio::select! {
            next = tokio::time::timeout(socket_timeout, recv.data()) => next,
            () = tx.closed() => return,
        };
        let data = match next {
            Err(_) => {
                let _ = tx.send(Err(BodyReadError::TimedOut(socket_timeout))).await;
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(_))) => {
                let _ = tx.send(Err(BodyReadError::Incomplete)).await;
                return;
            }
            Ok(Some(Ok(data))) => data,
        };
        received += data.len() as u64;
        if let Some(metrics) = &metrics {
            metrics.body_received(data.len() as u64);
        }
        if let Some(limit) = body_limit.filter(|&limit| received > limit) {
            let _ = tx.send(Err(BodyReadError::TooLarge { limit })).await;
            return;
        }
        let len = data.len();
        if tx.send(Ok(data)).await.is_err() {
            return;
        }
        // RFC 9113 §6.9: the window opens as the app takes the bytes.
        let _ = recv.flow_control().release_capacity(len);
    }
}
