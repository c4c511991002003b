//! The connection's socket as hyper sees it: small vectored writes (a response head plus a
//! short body) are joined into one contiguous write.
//!
//! Why: hyper hands the head and every body chunk to `writev` as separate buffers. For a
//! small response the kernel's per-segment work on a multi-buffer write costs more than
//! copying a few hundred bytes here (benches/README.md, "one write per small response").

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Vectored writes up to this many bytes in total are copied into one buffer first.
/// Larger ones (a 64 KiB body) go to `writev` as they are: the copy would cost more than it saves.
const JOIN_LIMIT: usize = 4096;

thread_local! {
    // One per I/O thread: a write completes (or fails) before the next connection's begins.
    static JOINED: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(JOIN_LIMIT));
}

/// A stream whose small vectored writes become single writes.
pub struct JoinSmallWrites<IO>(pub IO);

impl<IO: AsyncRead + Unpin> AsyncRead for JoinSmallWrites<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JoinSmallWrites<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if bufs.len() < 2 || total > JOIN_LIMIT {
            return Pin::new(&mut self.0).poll_write_vectored(cx, bufs);
        }
        JOINED.with_borrow_mut(|joined| {
            joined.clear();
            for b in bufs {
                joined.extend_from_slice(b);
            }
            // A partial write reports fewer bytes; hyper advances its buffers by that count.
            Pin::new(&mut self.0).poll_write(cx, joined)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
