//! HTTP for the handler chain: request heads and bodies off the wire, responses onto it, the
//! limits, trusted-proxy resolution, and the one mapping from failures to status codes. The
//! HTTP/1 driver is `h1/`, the HTTP/2 one `h2/`. Knows nothing of WSGI or Python.

mod body;
pub mod date;
pub mod error;
pub(crate) mod forwarded;
pub mod h1;
pub mod h2;
mod in_flight;
pub mod limits;
mod proxy_protocol;
mod request_body;
pub mod request_start;
mod response;
pub mod status;
pub mod uwsgi;

pub use body::{BodyContent, BodyError, BodySender, ResponseBody};
pub use error::{BodyReadError, RequestError};
pub use h1::{
    refuse_connection, ConnectionActivity, ConnectionError, ConnectionOptions, HttpServer,
    SendFile, Socket,
};
pub use in_flight::InFlight;
pub use limits::Limits;
pub use proxy_protocol::PreambleError;
pub use request_body::RequestBody;
pub use response::{HeaderBlock, Response};
