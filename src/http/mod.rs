//! HTTP/1.0 and 1.1: request heads and bodies off the wire, responses onto it, keep-alive,
//! pipelining, chunked coding both ways, `100 Continue`, and the one mapping from failures to
//! status codes. Knows nothing of WSGI or Python.

mod body;
mod body_pump;
mod connection;
mod direct_body;
mod idle;
mod in_flight;
mod request;
mod request_body;
mod response;
pub mod status;
mod write;

pub use body::{BodyError, BodySender, ResponseBody};
pub use connection::{ConnectionError, ConnectionOptions, HttpServer, Socket, CLIENT_TIMEOUT};
pub use idle::ConnectionActivity;
pub use in_flight::InFlight;
pub use request::RequestError;
pub use request_body::{BodyReadError, RequestBody};
pub use response::{HeaderBlock, Response};
