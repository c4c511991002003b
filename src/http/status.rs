//! The one place that turns a failure into an HTTP response.

use bytes::Bytes;
use http::StatusCode;

use super::{HeaderBlock, Response, ResponseBody};

/// Why a request could not be answered by the application.
#[derive(Debug)]
pub enum Failure {
    /// The app raised or broke the WSGI contract before anything was sent. `detail` is shown
    /// in the body only in debug mode.
    Application { detail: Option<String> },
    /// The server is stopping or its request queue is gone.
    Unavailable,
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::Application { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Failure::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn into_response(self) -> Response {
        let status = self.status();
        let mut text = format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        if let Failure::Application {
            detail: Some(detail),
        } = self
        {
            text.push('\n');
            text.push_str(&detail);
        }
        let mut headers = HeaderBlock::with_capacity(48);
        headers.push(b"Content-Type", b"text/plain; charset=utf-8");
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
}
