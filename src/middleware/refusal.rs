//! The answers a layer gives instead of the app: one mapping to a status, headers and a short
//! text body, used by the lifted pipeline (as a `Response`) and by the WSGI objects (as a
//! status line, header list and body), so both say exactly the same thing.

use std::sync::LazyLock;

use http::StatusCode;

use super::rate_limit::LimitHeaders;
use crate::http::HeaderBlock;

/// The header lines of the answers that are the same every time (all but the rate limit's),
/// encoded; `Refusal::fixed_index` says which is whose.
const FIXED_LINES: [&[u8]; 3] = [
    b"Content-Type: text/plain; charset=utf-8\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\nAllow: GET, HEAD\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n",
];

/// `FIXED_LINES` read once into header blocks, which `fixed_block` clones: the lines stay
/// borrowed, so a refusal's head allocates nothing. PERF: reading the lines per request cost
/// ~300 instructions (benches/callgrind deny403).
static FIXED_BLOCKS: LazyLock<[HeaderBlock; 3]> =
    LazyLock::new(|| FIXED_LINES.map(HeaderBlock::from_static));

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// ProxyHeaders: a trusted proxy's headers contradict each other.
    BadRequest,
    /// The IP filter: the client is denied, or not on the allow list.
    Forbidden,
    /// Nothing is mounted at the path, or a static file is missing with no app behind it.
    NotFound,
    /// A static mount got a method other than GET or HEAD and has no app behind it.
    MethodNotAllowed,
    /// The rate limit; `headers` are the limit's own (Retry-After, RateLimit...).
    TooManyRequests { headers: LimitHeaders },
    /// The rate limit's store (Redis) did not answer and the limit fails closed.
    Unavailable,
    /// Forward: no upstream answered (refused, reset, all out of rotation).
    BadGateway,
    /// Forward: the upstream did not answer within the timeout.
    GatewayTimeout,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadRequest => StatusCode::BAD_REQUEST,
            Refusal::Forbidden => StatusCode::FORBIDDEN,
            Refusal::NotFound => StatusCode::NOT_FOUND,
            Refusal::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::BadGateway => StatusCode::BAD_GATEWAY,
            Refusal::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// `403 Forbidden`, as WSGI's start_response takes it.
    pub fn status_line(&self) -> String {
        let status = self.status();
        format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        )
    }

    pub fn body(&self) -> &'static [u8] {
        match self {
            Refusal::BadRequest => b"400 Bad Request\n",
            Refusal::Forbidden => b"403 Forbidden\n",
            Refusal::NotFound => b"404 Not Found\n",
            Refusal::MethodNotAllowed => b"405 Method Not Allowed\n",
            Refusal::TooManyRequests { .. } => b"429 Too Many Requests\n",
            Refusal::Unavailable => b"503 Service Unavailable\n",
            Refusal::BadGateway => b"502 Bad Gateway\n",
            Refusal::GatewayTimeout => b"504 Gateway Timeout\n",
        }
    }

    /// The headers of the answer but Content-Length (the writer frames the body), as
    /// `(name, value)` pairs to `push`, borrowed: no string is made (benches/callgrind
    /// deny403, ratelimit429).
    pub fn each_header(&self, mut push: impl FnMut(&'static str, &str)) {
        push("Content-Type", "text/plain; charset=utf-8");
        match self {
            Refusal::MethodNotAllowed => push("Allow", "GET, HEAD"),
            Refusal::TooManyRequests { headers } => headers.each(push),
            // RFC 9110 §10.2.3: a short outage, so a well-behaved client comes back soon.
            Refusal::Unavailable => push("Retry-After", "1"),
            Refusal::BadRequest
            | Refusal::Forbidden
            | Refusal::NotFound
            | Refusal::BadGateway
            | Refusal::GatewayTimeout => {}
        }
    }

    /// Which of `FIXED_LINES` are this answer's; `None` for the rate limit's, whose headers
    /// change with every decision.
    fn fixed_index(&self) -> Option<usize> {
        match self {
            Refusal::MethodNotAllowed => Some(1),
            Refusal::Unavailable => Some(2),
            Refusal::TooManyRequests { .. } => None,
            Refusal::BadRequest
            | Refusal::Forbidden
            | Refusal::NotFound
            | Refusal::BadGateway
            | Refusal::GatewayTimeout => Some(0),
        }
    }

    /// The header lines `each_header` gives, as a block borrowing `FIXED_LINES`, when they
    /// are the same every time: the pipeline's answer.
    pub fn fixed_block(&self) -> Option<HeaderBlock> {
        self.fixed_index().map(|index| FIXED_BLOCKS[index].clone())
    }

    /// Every header of the answer, Content-Length included.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::with_capacity(4);
        self.each_header(|name, value| headers.push((name, value.to_owned())));
        headers.insert(1, ("Content-Length", self.body().len().to_string()));
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_lines_say_what_each_header_says() {
        for refusal in [
            Refusal::BadRequest,
            Refusal::Forbidden,
            Refusal::NotFound,
            Refusal::MethodNotAllowed,
            Refusal::Unavailable,
            Refusal::BadGateway,
            Refusal::GatewayTimeout,
        ] {
            let index = refusal.fixed_index().expect("fixed");
            let fixed = HeaderBlock::from_static(FIXED_LINES[index]);
            let block = refusal.fixed_block().expect("fixed");
            let mut pushed = HeaderBlock::default();
            refusal.each_header(|name, value| pushed.push(name.as_bytes(), value.as_bytes()));
            for made in [&fixed, &block] {
                assert_eq!(made.encoded(), pushed.encoded(), "{refusal:?}");
                assert!(made.lines().eq(pushed.lines()), "{refusal:?}");
            }
        }
    }
}
