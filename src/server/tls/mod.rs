//! TLS for the listeners that serve https: the rustls configuration built from the TLS
//! settings (`config.rs`), the session tickets and session cache every worker shares
//! (`tickets.rs`, `session_cache.rs`), and the connection's TLS stream, its handshake and
//! the facts a request is told about it (`stream.rs`). Knows nothing of WSGI; the HTTP/1 driver sees a
//! TLS connection only as a `Socket` whose `body_fd` is `None`.

mod config;
mod session_cache;
mod stream;
mod tickets;

pub use config::{roll_ticket_keys, ServerTls, TlsConfigError};
pub use stream::{handshake, Handshake, HandshakeError, TlsSocket};
