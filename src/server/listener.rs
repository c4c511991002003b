//! Listening sockets: bound once by the master (before forking) and shared by every worker.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use socket2::{Domain, Socket, Type};

use crate::config::BindAddress;

/// Pending connections the kernel queues per listener: what gunicorn uses, enough for bursts.
const LISTEN_BACKLOG: i32 = 2048;

pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

#[derive(Debug)]
pub struct BindError {
    pub address: String,
    pub source: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}: {}", self.address, self.source)
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Binds `address`, non-blocking, ready to be handed to tokio in each worker.
pub fn bind(address: &BindAddress) -> Result<Listener, BindError> {
    let fail = |source| BindError {
        address: address.to_string(),
        source,
    };
    match address {
        BindAddress::Tcp { host, port } => {
            let resolved = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(fail)?
                .next()
                .ok_or_else(|| fail(io::Error::new(io::ErrorKind::NotFound, "no address found")))?;
            bind_tcp(resolved).map(Listener::Tcp).map_err(fail)
        }
        BindAddress::Unix(path) => {
            remove_stale_socket(path).map_err(fail)?;
            let listener = UnixListener::bind(path).map_err(fail)?;
            listener.set_nonblocking(true).map_err(fail)?;
            Ok(Listener::Unix {
                listener,
                path: path.clone(),
            })
        }
    }
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    // A restarted server must be able to bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Responses are written whole; Nagle would only delay the last segment. Accepted sockets
    // inherit it on Linux.
    socket.set_tcp_nodelay(true)?;
    defer_accept_until_data(&socket);
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
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

    /// A handle on the same socket, for another serving loop in the same process.
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(listener) => Listener::Tcp(listener.try_clone()?),
            Listener::Unix { listener, path } => Listener::Unix {
                listener: listener.try_clone()?,
                path: path.clone(),
            },
        })
    }

    /// Removes a Unix socket's file; called once by the master as it exits.
    pub fn remove_socket_file(&self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(addr) => write!(f, "http://{addr}"),
                Err(_) => f.write_str("http://?"),
            },
            Listener::Unix { path, .. } => write!(f, "unix:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn port_zero_binds_a_free_port_and_displays_it() {
        let listener = bind(&"127.0.0.1:0".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(listener.to_string(), format!("http://127.0.0.1:{port}"));
    }

    #[test]
    fn accepted_sockets_inherit_tcp_nodelay_from_the_listener() {
        // The accept loop relies on it and skips a setsockopt per connection.
        let Listener::Tcp(listener) = bind(&"127.0.0.1:0".parse().unwrap()).unwrap() else {
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
        let first = bind(&"127.0.0.1:0".parse().unwrap()).unwrap();
        let port = first.local_addr().unwrap().port();
        let err = bind(&format!("127.0.0.1:{port}").parse().unwrap())
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
        let address = BindAddress::Unix(path.clone());
        drop(bind(&address).unwrap());
        let again = bind(&address).unwrap();
        again.remove_socket_file();
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(bind(&address).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
