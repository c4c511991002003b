//! HTTP/1 on hyper: the per-connection service, the response body type every handler returns,
//! and the one mapping from failures to status codes. Knows nothing of WSGI or Python.

mod body;
mod idle;
mod service;
mod small_writes;
pub mod status;

pub use body::{BodyError, BodySender, ResponseBody};
pub use idle::ConnectionActivity;
pub use service::{ConnectionOptions, HttpService, InFlight};
pub use small_writes::JoinSmallWrites;
