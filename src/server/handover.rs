//! The listening sockets a new master inherits from the old one (SIGUSR2), matched to the
//! addresses it is to listen on: a socket whose address is still bound is kept open (the
//! clients waiting in its backlog are served, no connection is refused meanwhile), an
//! address the old master did not have is bound afresh, and a socket no longer wanted is
//! closed.

use std::net::ToSocketAddrs;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

use socket2::SockRef;

use super::listener::{self, Listener};
use crate::config::BindAddress;

/// Takes over each inherited descriptor; one that is not a listening socket any more is
/// skipped with a warning (the old master's sockets are only ever listeners).
pub fn adopt(fds: &[RawFd]) -> Vec<Listener> {
    fds.iter()
        .filter_map(|&fd| match listener::inherit(fd) {
            Ok(listener) => Some(listener),
            Err(error) => {
                log::warn!("Inherited descriptor {fd} is not usable ({error}); skipped");
                None
            }
        })
        .collect()
}

/// The inherited socket that serves `address`, taken out of `inherited`. A Unix socket
/// taken for a `unix:` address is this process's to remove at exit, as if bound here.
pub fn take_matching(inherited: &mut Vec<Listener>, address: &BindAddress) -> Option<Listener> {
    let position = inherited.iter().position(|l| matches(l, address))?;
    let listener = inherited.remove(position);
    Some(match (listener, address) {
        (Listener::Unix { listener, .. }, BindAddress::Unix { path, .. }) => Listener::Unix {
            listener,
            path: Some(path.clone()),
            shown_as: format!("unix:{}", path.display()),
        },
        (listener, _) => listener,
    })
}

fn matches(listener: &Listener, address: &BindAddress) -> bool {
    match address {
        BindAddress::Fd(fd) => raw_fd(listener) == *fd,
        BindAddress::Tcp { host, port, .. } => {
            let Some(local) = listener.local_addr() else {
                return false;
            };
            (host.as_str(), *port)
                .to_socket_addrs()
                .map(|mut resolved| resolved.next() == Some(local))
                .unwrap_or(false)
        }
        BindAddress::Unix { path, .. } => unix_path(listener).as_ref() == Some(path),
    }
}

fn raw_fd(listener: &Listener) -> RawFd {
    match listener {
        Listener::Tcp(listener) => listener.as_raw_fd(),
        Listener::Unix { listener, .. } => listener.as_raw_fd(),
    }
}

fn unix_path(listener: &Listener) -> Option<PathBuf> {
    let Listener::Unix { listener, .. } = listener else {
        return None;
    };
    let local = SockRef::from(listener).local_addr().ok()?;
    local.as_pathname().map(PathBuf::from)
}

/// The descriptor numbers of `listeners`, for handing them to a successor. A `--reuse-port`
/// reservation is not handed over: its workers' sockets close with them, and the successor
/// joins the address's group with sockets of its own.
pub fn descriptors(listeners: &[Listener]) -> Vec<RawFd> {
    listeners
        .iter()
        .filter(|listener| listener.is_listening())
        .map(raw_fd)
        .collect()
}

/// Says which inherited sockets are closed because no address asks for them any more.
pub fn close_unwanted(unwanted: Vec<Listener>) {
    for listener in unwanted {
        log::info!("{listener}, inherited from the old master, is no longer bound; closed");
    }
}
