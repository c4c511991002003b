//! HTTP/1.0 and 1.1 on the wire: the connection driver and one file per job (reading a head,
//! parse, target and field rules, body decoding, the body pump and direct reads, encoding,
//! writing, ending a connection, the idle watch). Knows nothing of WSGI or Python; the `h2` driver sits beside it.

mod body_pump;
mod conn;
mod continue_state;
mod decode;
mod direct_body;
mod encode;
mod ending;
mod fields;
mod head_read;
mod idle;
mod io;
mod observed;
mod parse;
mod send_file;
mod target;
mod write;

pub use conn::{ConnectionError, ConnectionOptions, HttpServer};
pub use direct_body::DirectBody;
pub use ending::refuse_connection;
pub use idle::ConnectionActivity;
pub use io::Socket;
pub(crate) use io::TimedWriter;
pub(crate) use observed::note_response;
pub use send_file::SendFile;
/// For the uwsgi protocol (http/uwsgi.rs), which makes the same heads from its packets.
pub(crate) use {fields::BodyFraming, parse::RequestHead};

/// For the fuzz harness (src/fuzz_tests.rs), which drives the parser and decoder directly.
#[cfg(test)]
pub(crate) use {
    decode::{BodyDecoder, Decoded},
    parse::parse_head,
};
