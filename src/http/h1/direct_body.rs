//! Request bodies the handler's own thread reads straight off the socket into its buffer.
//!
//! Why: a body handed over by the I/O thread is copied twice (kernel to our buffer, buffer to
//! the app's) and costs a thread wake-up per piece; read here, it is copied once, by the
//! kernel, into the memory the app gets (benches/README.md, "direct body reads").

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, Notify};

use super::continue_state::ContinueState;
use crate::http::error::BodyReadError;
use crate::observe::metrics::WorkerMetrics;

/// What is left of a body when its reader lets go of it.
pub struct Released {
    /// Body bytes still on the socket: the connection discards them before the next request.
    pub remaining: u64,
    /// The socket failed or the client closed: the connection cannot go on.
    pub broken: bool,
    /// It broke because the client sent nothing for the socket timeout.
    pub timed_out: bool,
}

/// How the first read asks the connection for `100 Continue`.
pub struct ContinueRequest {
    pub state: Arc<ContinueState>,
    /// Wakes the connection, whose writer then sends it.
    pub wanted: Arc<Notify>,
}

/// A body of known length being read, by a blocking thread, off the socket it is still on.
/// While it exists, nothing else reads that socket.
pub struct DirectBody {
    /// A duplicate of the connection's descriptor. Why: if the connection is closed while this
    /// thread reads, the number could otherwise be reused for another client's socket.
    socket: OwnedFd,
    remaining: u64,
    /// `remaining` at the start: what was read is counted once, when the reader lets go.
    taken_over: u64,
    /// With `--metrics-bind`: where the bytes read are counted.
    metrics: Option<WorkerMetrics>,
    broken: bool,
    timed_out: bool,
    /// `--socket-timeout`: how long one wait for the client may last.
    timeout: Duration,
    /// Set until the first read when the client waits for `100 Continue` before sending.
    continue_request: Option<ContinueRequest>,
    released: Option<oneshot::Sender<Released>>,
}

impl DirectBody {
    /// Takes over reading the last `remaining` bytes of a body from `socket`; the receiver
    /// resolves when the reader is done with it.
    pub(super) fn new(
        socket: RawFd,
        remaining: u64,
        timeout: Duration,
        continue_request: Option<ContinueRequest>,
    ) -> io::Result<(DirectBody, oneshot::Receiver<Released>)> {
        // SAFETY: the caller's connection owns `socket` and keeps it open during this call.
        let socket = unsafe { BorrowedFd::borrow_raw(socket) }.try_clone_to_owned()?;
        let (tx, rx) = oneshot::channel();
        let body = DirectBody {
            socket,
            remaining,
            taken_over: remaining,
            metrics: None,
            broken: false,
            timed_out: false,
            timeout,
            continue_request,
            released: Some(tx),
        };
        Ok((body, rx))
    }

    /// Counts the bytes this reader reads into `metrics` (when it lets go of the body).
    pub(super) fn counted_by(mut self, metrics: Option<WorkerMetrics>) -> DirectBody {
        self.metrics = metrics;
        self
    }

    /// Body bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    pub fn is_over(&self) -> bool {
        self.remaining == 0 || self.broken
    }

    /// Fills all of `dst` (no longer than `remaining`), blocking this thread while the client
    /// sends.
    pub fn read_exact(&mut self, dst: &mut [MaybeUninit<u8>]) -> Result<(), BodyReadError> {
        assert!(
            dst.len() as u64 <= self.remaining,
            "read past the body's end"
        );
        let mut filled = 0;
        while filled < dst.len() {
            filled += self.read_some(&mut dst[filled..])?;
        }
        Ok(())
    }

    /// The next bytes of the body, at most `max` of them, blocking until there is at least one.
    pub fn read_chunk(&mut self, max: usize) -> Result<Bytes, BodyReadError> {
        let mut chunk = BytesMut::with_capacity(max.min(self.remaining as usize));
        let count = self.read_some(chunk.spare_capacity_mut())?;
        // SAFETY: the kernel wrote `count` bytes at the start of the spare capacity.
        unsafe { chunk.set_len(count) };
        Ok(chunk.freeze())
    }

    /// Reads at least one byte into `dst` (which must not be empty).
    fn read_some(&mut self, dst: &mut [MaybeUninit<u8>]) -> Result<usize, BodyReadError> {
        if self.broken || self.remaining == 0 {
            return Err(BodyReadError::Incomplete);
        }
        if let Some(request) = self.continue_request.take() {
            // Fails once the response has gone out: the client will not send the body then.
            if !request.state.request() {
                return Err(self.fail(BodyReadError::NotRequested));
            }
            request.wanted.notify_one();
        }
        let wanted = dst
            .len()
            .min(self.remaining.try_into().unwrap_or(usize::MAX));
        loop {
            // SAFETY: `dst` is valid for `wanted` bytes of writes; recv writes no more.
            let count = unsafe {
                libc::recv(
                    self.socket.as_raw_fd(),
                    dst.as_mut_ptr().cast(),
                    wanted,
                    libc::MSG_DONTWAIT,
                )
            };
            if count > 0 {
                self.remaining -= count as u64;
                return Ok(count as usize);
            }
            let error = io::Error::last_os_error();
            match (count, error.kind()) {
                (0, _) => return Err(self.fail(BodyReadError::Incomplete)),
                (_, io::ErrorKind::Interrupted) => {}
                (_, io::ErrorKind::WouldBlock) => self.wait_readable()?,
                _ => return Err(self.fail(BodyReadError::Incomplete)),
            }
        }
    }

    /// Parks this thread until the socket has data (or news of its end), up to the timeout.
    fn wait_readable(&mut self) -> Result<(), BodyReadError> {
        let deadline = Instant::now() + self.timeout;
        let mut poll = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.timed_out = true;
                return Err(self.fail(BodyReadError::TimedOut(self.timeout)));
            }
            let millis = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            match unsafe { libc::poll(&mut poll, 1, millis) } {
                1.. => return Ok(()),
                0 => {}
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => return Err(self.fail(BodyReadError::Incomplete)),
            }
        }
    }

    fn fail(&mut self, error: BodyReadError) -> BodyReadError {
        self.broken = true;
        error
    }
}

impl Drop for DirectBody {
    fn drop(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.body_received(self.taken_over - self.remaining);
        }
        if let Some(released) = self.released.take() {
            let _ = released.send(Released {
                remaining: self.remaining,
                broken: self.broken,
                timed_out: self.timed_out,
            });
        }
    }
}
