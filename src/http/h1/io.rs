//! The connection's byte streams: the `Socket` abstraction the HTTP/1 driver runs on (TCP,
//! Unix, TLS from `server::tls`), and a writer that gives up on a client that stops reading.

use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use super::send_file::SendFile;

/// A stream that splits into halves usable at the same time by one task.
pub trait Socket: Send + 'static {
    type Reader<'a>: AsyncRead + Unpin + Send
    where
        Self: 'a;
    type Writer<'a>: AsyncWrite + SendFile + Unpin + Send
    where
        Self: 'a;
    /// Whether the stream is TLS: then a close sends close_notify first, so the client can
    /// tell a complete response read until close from a cut one.
    const ENCRYPTED: bool = false;
    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>);
    /// The descriptor a blocking thread may read a request body from directly; `None` where
    /// the bytes on the socket are not the request's (an encrypted stream).
    fn body_fd(&self) -> Option<RawFd>;
}

impl Socket for tokio::net::TcpStream {
    type Reader<'a> = tokio::net::tcp::ReadHalf<'a>;
    type Writer<'a> = tokio::net::tcp::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        self.split()
    }
    fn body_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

impl Socket for tokio::net::UnixStream {
    type Reader<'a> = tokio::net::unix::ReadHalf<'a>;
    type Writer<'a> = tokio::net::unix::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        self.split()
    }
    fn body_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

/// A writer that fails with `TimedOut` once the client has taken nothing for `timeout`
/// (`--socket-timeout`). PERF: the timer is armed only when a write would block, so a
/// client that keeps up costs no timer at all (benches/callgrind hello).
pub struct TimedWriter<W> {
    inner: W,
    timeout: Duration,
    /// Created on the first write that blocks; re-armed at the start of each stall.
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
}

impl<W> TimedWriter<W> {
    pub fn new(inner: W, timeout: Duration) -> TimedWriter<W> {
        TimedWriter {
            inner,
            timeout,
            stall: None,
            stalled: false,
        }
    }

    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = false;
            return poll;
        }
        let deadline = Instant::now() + self.timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.stalled {
            stall.as_mut().reset(deadline);
            self.stalled = true;
        }
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {}s (--socket-timeout)",
                    self.timeout.as_secs_f64()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for TimedWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, slices);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

impl<W: SendFile> SendFile for TimedWriter<W> {
    fn can_send_file(&self) -> bool {
        self.inner.can_send_file()
    }

    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        file: RawFd,
        offset: &mut u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let poll = self.inner.poll_send_file(cx, file, offset, len);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_timed_out_and_one_that_reads_is_not() {
        let (client, server) = tokio::io::duplex(16);
        let mut writer = TimedWriter::new(server, Duration::from_secs(5));
        writer.write_all(&[0; 16]).await.unwrap();
        let started = Instant::now();
        let error = writer.write_all(&[0; 1]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(5));
        drop(client);
    }
}
