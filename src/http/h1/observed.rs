//! What the connection notes of a response for the access log and the metrics, before the
//! response is consumed by writing it (conn.rs calls it only when either is on; the h2
//! stream driver for its access log).

use crate::http::Response;
use crate::observe::{AccessLog, ResponseNote};

/// What the access log wants of a response before it is written: the queue time and the
/// headers its format names.
pub(crate) fn note_response(log: Option<&AccessLog>, response: &Response) -> Box<ResponseNote> {
    let wanted = log.map_or(&[][..], AccessLog::response_headers);
    let headers = match wanted.is_empty() {
        true => Vec::new(),
        false => response
            .headers
            .lines()
            .filter_map(|(name, value)| {
                let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                wanted
                    .contains(&name)
                    .then(|| (name, String::from_utf8_lossy(value).into_owned()))
            })
            .collect(),
    };
    Box::new(ResponseNote {
        queue_time: response.queue_time,
        headers,
    })
}
