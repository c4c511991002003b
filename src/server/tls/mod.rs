//! TLS for the listeners that serve https: the rustls configuration built from the TLS
//! settings (`config.rs`), and the connection's TLS stream, its handshake and the facts a
//! request is told about it (`stream.rs`). Knows nothing of WSGI; the HTTP/1 driver sees a
//! TLS connection only as a `Socket` whose `body_fd` is `None`.

mod config;
mod stream;

pub use config::{ServerTls, TlsConfigError};
pub use stream::{handshake, Handshake, HandshakeError, TlsSocket};
