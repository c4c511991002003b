//! The one place that turns a failure into an HTTP status and an error response.

use bytes::Bytes;
use http::StatusCode;

use super::error::RequestError;
use super::{HeaderBlock, Response, ResponseBody};

/// Why a request is answered by the server rather than by the application.
#[derive(Debug)]
pub enum Failure {
    /// The request broke HTTP or a limit; the app was not called (or its answer is replaced).
    Refused(RequestError),
    /// The app raised or broke the WSGI contract before anything was sent. `detail` is shown
    /// in the body only in debug mode.
    Application { detail: Option<String> },
    /// The server is stopping or its request queue is gone.
    Unavailable,
    /// The worker sheds load: the request would wait longer than `--max-queue-time` for a
    /// Python thread, or find `--max-queue` requests ahead of it. The app was not called.
    Overloaded,
    /// The app ran past `--request-timeout` before sending a response head.
    RequestTimeout,
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::Refused(error) => match error {
                RequestError::Malformed(_) | RequestError::PlainHttpOnTlsPort => {
                    StatusCode::BAD_REQUEST
                }
                RequestError::LineTooLong { .. } => StatusCode::URI_TOO_LONG,
                RequestError::TooManyFields { .. }
                | RequestError::FieldTooLarge { .. }
                | RequestError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                RequestError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                RequestError::UnsupportedCoding(_) | RequestError::Tunnel => {
                    StatusCode::NOT_IMPLEMENTED
                }
                RequestError::UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                RequestError::HeadTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            },
            Failure::Application { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Failure::Unavailable | Failure::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Failure::RequestTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A short plain-text response: the status line's words, and the rule broken for a
    /// refusal (it helps the client's developer and tells an attacker nothing new).
    pub fn into_response(self) -> Response {
        let status = self.status();
        let mut text = format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        match self {
            Failure::Refused(error) => {
                text.push_str(&error.to_string());
                text.push('\n');
            }
            Failure::Application {
                detail: Some(detail),
            } => {
                text.push('\n');
                text.push_str(&detail);
            }
            Failure::Application { detail: None } | Failure::Unavailable => {}
            Failure::RequestTimeout => text.push_str("The request took too long.\n"),
            Failure::Overloaded => text.push_str("The server is overloaded; retry shortly.\n"),
        }
        let mut headers = HeaderBlock::with_capacity(64);
        headers.push(b"Content-Type", b"text/plain; charset=utf-8");
        if matches!(status, StatusCode::SERVICE_UNAVAILABLE) {
            // RFC 9110 §10.2.3: a short overload or restart; a well-behaved client (or proxy)
            // comes back after a second rather than at once.
            headers.push(b"Retry-After", b"1");
        }
        Response::new(status, headers, ResponseBody::full(Bytes::from(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_failure_is_a_plain_500_with_detail_only_when_given() {
        let quiet = Failure::Application { detail: None }.into_response();
        assert_eq!(quiet.status, 500);
        assert_eq!(quiet.body.known_length(), Some(26));
        let debug = Failure::Application {
            detail: Some("Traceback".into()),
        }
        .into_response();
        assert!(debug.body.known_length().unwrap() > 26);
    }

    #[test]
    fn overloaded_is_a_503_with_retry_after() {
        let response = Failure::Overloaded.into_response();
        assert_eq!(response.status, 503);
        let headers = String::from_utf8_lossy(response.headers.encoded()).into_owned();
        assert!(headers.contains("Retry-After: 1\r\n"), "{headers}");
    }

    #[test]
    fn request_timeout_is_a_504() {
        assert_eq!(Failure::RequestTimeout.into_response().status, 504);
    }

    #[test]
    fn each_refusal_has_its_status() {
        let status = |error| Failure::Refused(error).status().as_u16();
        assert_eq!(status(RequestError::malformed("x")), 400);
        assert_eq!(status(RequestError::LineTooLong { limit: 1 }), 414);
        assert_eq!(status(RequestError::TooManyFields { limit: 1 }), 431);
        assert_eq!(status(RequestError::FieldTooLarge { limit: 1 }), 431);
        assert_eq!(status(RequestError::HeadTooLarge), 431);
        assert_eq!(status(RequestError::BodyTooLarge { limit: 1 }), 413);
        assert_eq!(status(RequestError::UnsupportedCoding("gzip".into())), 501);
        assert_eq!(status(RequestError::Tunnel), 501);
        assert_eq!(status(RequestError::UnsupportedVersion), 505);
        assert_eq!(status(RequestError::PlainHttpOnTlsPort), 400);
        assert_eq!(
            status(RequestError::HeadTimeout(std::time::Duration::from_secs(1))),
            408
        );
    }
}
