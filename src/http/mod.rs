//! HTTP/1 on hyper: the per-connection service, the response body type every handler returns,
//! and the one mapping from failures to status codes. Knows nothing of WSGI or Python.

mod body;
mod service;
pub mod status;

pub use body::{BodyError, BodySender, ResponseBody};
pub use service::{ConnectionOptions, HttpService, InFlight};
