//! The response as a handler gives it: a status, the handler's header lines already encoded
//! (in the case the handler gave them), and a body. The protocol driver adds `Server`, `Date`
//! and the framing headers when it writes the head (`h1::encode`).

use http::StatusCode;

use super::ResponseBody;

/// Header lines a handler chose, encoded as `Name: value\r\n`. Callers check names and
/// values (no CR, LF or other control bytes) before pushing them.
#[derive(Default)]
pub struct HeaderBlock {
    encoded: Vec<u8>,
    has_server: bool,
    has_date: bool,
}

impl HeaderBlock {
    pub fn with_capacity(bytes: usize) -> HeaderBlock {
        HeaderBlock {
            encoded: Vec::with_capacity(bytes),
            ..HeaderBlock::default()
        }
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.has_server |= name.eq_ignore_ascii_case(b"server");
        self.has_date |= name.eq_ignore_ascii_case(b"date");
        self.encoded.extend_from_slice(name);
        self.encoded.extend_from_slice(b": ");
        self.encoded.extend_from_slice(value);
        self.encoded.extend_from_slice(b"\r\n");
    }

    /// The lines pushed so far as (name, value) pairs, for a layer that rewrites them.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.encoded
            .split(|&b| b == b'\n')
            .filter_map(|line| line.strip_suffix(b"\r"))
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((&line[..colon], line[colon + 1..].trim_ascii_start()))
            })
    }

    /// Rewrites every name as `Foo-Bar` (each '-'-separated word capitalized), as
    /// eventlet.wsgi does by default (`--capitalize-response-headers`). In place: the
    /// lengths do not change.
    pub fn capitalize_names(&mut self) {
        let mut in_name = true;
        let mut word_start = true;
        for byte in self.encoded.iter_mut() {
            match (*byte, in_name) {
                (b'\n', _) => (in_name, word_start) = (true, true),
                (b':', true) => in_name = false,
                (b'-', true) => word_start = true,
                (_, true) => {
                    *byte = match word_start {
                        true => byte.to_ascii_uppercase(),
                        false => byte.to_ascii_lowercase(),
                    };
                    word_start = false;
                }
                _ => {}
            }
        }
    }

    /// The lines pushed so far, as they go on the wire.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Whether the handler set `Server` / `Date` itself.
    pub fn has_server(&self) -> bool {
        self.has_server
    }

    pub fn has_date(&self) -> bool {
        self.has_date
    }
}

pub struct Response {
    pub status: StatusCode,
    /// Sent instead of the canonical reason phrase (a latin-1 phrase the handler chose).
    pub reason: Option<Box<[u8]>>,
    pub headers: HeaderBlock,
    pub body: ResponseBody,
    /// How long the request waited for a Python thread, for the access log; `None` when no
    /// Python thread answered it.
    pub queue_time: Option<std::time::Duration>,
}

impl Response {
    pub fn new(status: StatusCode, headers: HeaderBlock, body: ResponseBody) -> Response {
        Response {
            status,
            reason: None,
            headers,
            body,
            queue_time: None,
        }
    }

    /// 1xx, 204 and 304 responses never carry a body (RFC 9110 §6.4.1).
    pub fn allows_body(&self) -> bool {
        !(self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_capitalized_per_word_and_values_left_alone() {
        let mut headers = HeaderBlock::default();
        headers.push(b"content-TYPE", b"text/plain; x-Y=z");
        headers.push(b"etag", b"\"aB-c\"");
        headers.push(b"X-OBJECT-meta-a_b", b"v: w");
        headers.capitalize_names();
        assert_eq!(
            headers.encoded(),
            b"Content-Type: text/plain; x-Y=z\r\nEtag: \"aB-c\"\r\nX-Object-Meta-A_b: v: w\r\n"
        );
    }
}
