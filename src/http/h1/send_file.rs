//! `SendFile`: a connection writer that can hand a file's pages to its socket with
//! sendfile(2), so a file body is never mapped or copied in user space. Plain TCP and Unix
//! sockets can; a stream that transforms its bytes (TLS) cannot, and its file bodies are
//! memory-mapped and written as before (write.rs).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{ready, Context, Poll};

use tokio::io::Interest;

/// Most bytes one sendfile(2) call moves on Linux (0x7ffff000).
const SENDFILE_MAX_BYTES: usize = 0x7fff_f000;

pub trait SendFile {
    /// Whether `poll_send_file` works on this writer.
    fn can_send_file(&self) -> bool {
        false
    }

    /// Sends up to `len` bytes of `file` starting at `*offset`, and advances it by what was
    /// sent; `Ok(0)` means the file ended first (it shrank since its length was taken).
    fn poll_send_file(
        &mut self,
        _cx: &mut Context<'_>,
        _file: RawFd,
        _offset: &mut u64,
        _len: usize,
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }
}

/// The sockets tokio registers for readiness: TCP and Unix streams and their write halves.
trait ReadySocket {
    fn raw_fd(&self) -> RawFd;
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

fn poll_send_file_on<S: ReadySocket>(
    socket: &S,
    cx: &mut Context<'_>,
    file: RawFd,
    offset: &mut u64,
    len: usize,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(socket.poll_write_ready(cx))?;
        let sent = socket.try_io(Interest::WRITABLE, || {
            let mut at = *offset as libc::off_t;
            // SAFETY: both descriptors are open for the call (the socket is borrowed, the
            // file is owned by the response body being written); `at` is a valid off_t.
            let sent = unsafe {
                libc::sendfile(socket.raw_fd(), file, &mut at, len.min(SENDFILE_MAX_BYTES))
            };
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(sent as usize)
        });
        match sent {
            Ok(sent) => {
                *offset += sent as u64;
                return Poll::Ready(Ok(sent));
            }
            // try_io cleared the readiness: wait for the next.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Poll::Ready(Err(error)),
        }
    }
}

macro_rules! ready_socket {
    ($socket:ty, $s:ident => $stream:expr) => {
        impl ReadySocket for $socket {
            fn raw_fd(&self) -> RawFd {
                let $s = self;
                $stream.as_raw_fd()
            }
            fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self;
                $stream.poll_write_ready(cx)
            }
            fn try_io<R>(
                &self,
                interest: Interest,
                f: impl FnOnce() -> io::Result<R>,
            ) -> io::Result<R> {
                let $s = self;
                $stream.try_io(interest, f)
            }
        }

        impl SendFile for $socket {
            fn can_send_file(&self) -> bool {
                true
            }
            fn poll_send_file(
                &mut self,
                cx: &mut Context<'_>,
                file: RawFd,
                offset: &mut u64,
                len: usize,
            ) -> Poll<io::Result<usize>> {
                poll_send_file_on(&*self, cx, file, offset, len)
            }
        }
    };
}

ready_socket!(tokio::net::TcpStream, s => s);
ready_socket!(tokio::net::tcp::WriteHalf<'_>, s => AsRef::<tokio::net::TcpStream>::as_ref(s));
ready_socket!(tokio::net::UnixStream, s => s);
ready_socket!(tokio::net::unix::WriteHalf<'_>, s => AsRef::<tokio::net::UnixStream>::as_ref(s));

/// In-memory writers (tests): file bodies are mapped and written.
impl SendFile for Vec<u8> {}
impl SendFile for tokio::io::DuplexStream {}
impl<W: SendFile + ?Sized> SendFile for &mut W {
    fn can_send_file(&self) -> bool {
        (**self).can_send_file()
    }
    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        file: RawFd,
        offset: &mut u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        (**self).poll_send_file(cx, file, offset, len)
    }
}
