//! One worker's serving loop: bound listeners, the accept loop, per-connection tasks and the
//! graceful drain. Generic over `Handler`; knows nothing of WSGI or Python.

mod accept;
pub mod handover;
mod listener;
mod outcome;
mod port_owner;
pub mod roles;
mod room;
pub mod tls;

pub use accept::{serve, serve_one_connection, Endpoint};
pub use listener::{bind, bind_shared, BindError, Listener, Sharing};
