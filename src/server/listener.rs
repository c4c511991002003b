//! Listening sockets: bound (or inherited, `fd://N`) once by the master before forking, and
//! shared by every worker; with `--reuse-port` the master only reserves each TCP address and
//! every worker listens on a socket of its own there (`into_own`).

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::config::BindAddress;

pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        /// The socket file, removed on exit; `None` when the socket was inherited (its
        /// owner, such as systemd, keeps the file).
        path: Option<PathBuf>,
        shown_as: String,
    },
}

#[derive(Debug)]
pub struct BindError {
    pub address: String,
    pub source: io::Error,
    /// Who holds the port, when it is in use and the holder can be seen (`pid N (name)`).
    pub holder: Option<String>,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}: {}", self.address, self.source)?;
        match &self.holder {
            Some(holder) => write!(f, "; {holder} is listening there"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// How the workers share a TCP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// One listening socket, bound by the master, that every worker accepts from.
    Shared,
    /// `--reuse-port`: the master binds without listening, which reserves the address (and
    /// reports it in use at start), and each worker listens on its own SO_REUSEPORT socket.
    /// The master's socket never listens, so the kernel queues no connection on it.
    PerWorker,
}

/// Binds `address` with room for `backlog` pending connections, non-blocking, ready to be
/// handed to tokio in each worker.
pub fn bind(address: &BindAddress, backlog: i32) -> Result<Listener, BindError> {
    bind_shared(address, backlog, Sharing::Shared)
}

/// `bind`, with the TCP addresses shared as `sharing` says.
pub fn bind_shared(
    address: &BindAddress,
    backlog: i32,
    sharing: Sharing,
) -> Result<Listener, BindError> {
    let fail = |source: io::Error| {
        let holder = match address {
            BindAddress::Tcp { port, .. } if source.kind() == io::ErrorKind::AddrInUse => {
                super::port_owner::find(*port)
            }
            _ => None,
        };
        BindError {
            address: address.to_string(),
            source,
            holder,
        }
    };
    match address {
        BindAddress::Tcp { host, port, .. } => {
            let resolved = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(fail)?
                .next()
                .ok_or_else(|| fail(io::Error::new(io::ErrorKind::NotFound, "no address found")))?;
            let socket = bind_tcp(resolved, sharing).map_err(fail)?;
            if sharing == Sharing::Shared {
                socket.listen(backlog).map_err(fail)?;
            }
            Ok(Listener::Tcp(socket.into()))
        }
        BindAddress::Unix { path, .. } => {
            remove_stale_socket(path).map_err(fail)?;
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
            socket
                .bind(&SockAddr::unix(path).map_err(fail)?)
                .map_err(fail)?;
            socket.listen(backlog).map_err(fail)?;
            socket.set_nonblocking(true).map_err(fail)?;
            Ok(Listener::Unix {
                listener: socket.into(),
                path: Some(path.clone()),
                shown_as: format!("unix:{}", path.display()),
            })
        }
        BindAddress::Fd(fd) => inherit(*fd).map_err(fail),
    }
}

/// Takes over a listening socket this process was started with. Why each check: a wrong
/// number must be an error at start, not a worker that fails on its first accept.
pub(super) fn inherit(fd: RawFd) -> io::Result<Listener> {
    // SAFETY: fcntl on any number is harmless; it tells whether the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no such open descriptor",
        ));
    }
    // SAFETY: the descriptor is open, and `fd://N` (or systemd's LISTEN_FDS) hands it to
    // this process to own; bind_all refuses the same number twice, so nothing else closes it.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    if !socket.is_listener().unwrap_or(false) {
        // Not ours to close: leave the descriptor as it was.
        std::mem::forget(socket);
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the descriptor is not a listening socket",
        ));
    }
    socket.set_nonblocking(true)?;
    // The app's subprocesses must not hold the listener open.
    socket.set_cloexec(true)?;
    let local = socket.local_addr()?;
    if local.as_socket().is_some() {
        return Ok(Listener::Tcp(socket.into()));
    }
    let shown_as = match local.as_pathname() {
        Some(path) => format!("fd://{fd} (unix:{})", path.display()),
        None => format!("fd://{fd} (unix)"),
    };
    Ok(Listener::Unix {
        listener: socket.into(),
        path: None,
        shown_as,
    })
}

/// A TCP socket bound to `address`, not yet listening.
fn bind_tcp(address: SocketAddr, sharing: Sharing) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    // A restarted server must be able to bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if sharing == Sharing::PerWorker {
        // Every socket of the group must set it, the master's reservation included.
        socket.set_reuse_port(true)?;
    }
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Responses are written whole; Nagle would only delay the last segment. Accepted sockets
    // inherit it on Linux.
    socket.set_tcp_nodelay(true)?;
    defer_accept_until_data(&socket);
    socket.bind(&address.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Has the kernel hand a connection over only once the client's first bytes are in (as
/// nginx's `listen ... deferred`), so the first read finds the request: PERF, a wake-up and
/// a read less per connection (benches/README.md, "per-connection syscalls"). A client that
/// connects and sends nothing is handed over after about this long anyway.
fn defer_accept_until_data(socket: &Socket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        const DEFER_SECONDS: libc::c_int = 1;
        // SAFETY: a valid socket and an int option of the size given. Failure only loses the
        // saving, so it is ignored.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&DEFER_SECONDS as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// A socket file left by a server that died is replaced; any other file is an error.
fn remove_stale_socket(path: &PathBuf) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Listener {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix { .. } => None,
        }
    }

    /// The socket file of a Unix socket this process bound (not of an inherited one).
    pub fn socket_file(&self) -> Option<&std::path::Path> {
        match self {
            Listener::Unix {
                path: Some(path), ..
            } => Some(path),
            _ => None,
        }
    }

    /// Whether the socket accepts connections (a `--reuse-port` reservation does not).
    pub fn is_listening(&self) -> bool {
        match self {
            Listener::Tcp(listener) => SockRef::from(listener).is_listener().unwrap_or(false),
            Listener::Unix { .. } => true,
        }
    }

    /// In a worker: a `--reuse-port` reservation becomes this worker's own listening socket
    /// on the same address (before privileges are dropped: the kernel lets only the same
    /// user join the group); a shared socket stays as it is.
    pub fn into_own(self, backlog: i32) -> io::Result<Listener> {
        match self {
            Listener::Tcp(reserved) if !SockRef::from(&reserved).is_listener()? => {
                let own = bind_tcp(reserved.local_addr()?, Sharing::PerWorker)?;
                own.listen(backlog)?;
                Ok(Listener::Tcp(own.into()))
            }
            shared => Ok(shared),
        }
    }

    /// A handle on the same socket, for another serving loop in the same process.
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(listener) => Listener::Tcp(listener.try_clone()?),
            Listener::Unix {
                listener,
                path,
                shown_as,
            } => Listener::Unix {
                listener: listener.try_clone()?,
                path: path.clone(),
                shown_as: shown_as.clone(),
            },
        })
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(addr) => write!(f, "http://{addr}"),
                Err(_) => f.write_str("http://?"),
            },
            Listener::Unix { shown_as, .. } => f.write_str(shown_as),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::IntoRawFd;

    use super::*;

    #[test]
    fn an_inherited_listener_is_taken_over_and_anything_else_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fd = listener.into_raw_fd();
        let taken = bind(&BindAddress::Fd(fd), 16).unwrap();
        assert_eq!(taken.local_addr().unwrap().port(), port);
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let not_listening = stream.into_raw_fd();
        assert!(bind(&BindAddress::Fd(not_listening), 16).is_err());
        assert!(bind(&BindAddress::Fd(987_654), 16).is_err());
        // SAFETY: the test owns this descriptor, which the refused bind left open.
        drop(unsafe { std::fs::File::from_raw_fd(not_listening) });
    }

    #[test]
    fn port_zero_binds_a_free_port_and_displays_it() {
        let listener = bind(&"127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(listener.to_string(), format!("http://127.0.0.1:{port}"));
    }

    #[test]
    fn accepted_sockets_inherit_tcp_nodelay_from_the_listener() {
        // The accept loop relies on it and skips a setsockopt per connection.
        let Listener::Tcp(listener) = bind(&"127.0.0.1:0".parse().unwrap(), 16).unwrap() else {
            unreachable!("a TCP address binds a TCP listener")
        };
        listener.set_nonblocking(false).unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // A deferred accept waits for the client's first bytes.
        (&client).write_all(b"x").unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    #[test]
    fn a_busy_port_is_a_bind_error_naming_the_address() {
        let first = bind(&"127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let port = first.local_addr().unwrap().port();
        let err = bind(&format!("127.0.0.1:{port}").parse().unwrap(), 16)
            .err()
            .unwrap();
        assert!(err
            .to_string()
            .starts_with(&format!("cannot listen on 127.0.0.1:{port}")));
    }

    #[test]
    fn unix_socket_replaces_a_stale_socket_but_not_a_regular_file() {
        let dir = std::env::temp_dir().join(format!("ferrogate-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let address = BindAddress::unix(path.clone());
        drop(bind(&address, 16).unwrap());
        let again = bind(&address, 16).unwrap();
        std::fs::remove_file(again.socket_file().unwrap()).unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(bind(&address, 16).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
