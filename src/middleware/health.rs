//! `--health-path` and `--ready-path`: probe paths the worker answers itself, on the I/O
//! thread, before any layer or Python sees the request, so a probe says what the server is
//! doing even while every Python thread is busy. The answer follows the worker's phase
//! (observe/readiness.rs): health is 200 until a graceful stop begins, readiness is 200 only
//! between the app's import and that stop.

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;

use crate::http::{HeaderBlock, Response, ResponseBody};
use crate::observe::{Phase, Readiness};

/// The probe paths of one worker and the phase they report.
#[derive(Debug)]
pub struct Probes {
    health: Option<String>,
    ready: Option<String>,
    readiness: Arc<Readiness>,
}

impl Probes {
    /// `None` when neither path is set: then requests pay nothing for probes.
    pub fn new(
        health: Option<String>,
        ready: Option<String>,
        readiness: Arc<Readiness>,
    ) -> Option<Probes> {
        (health.is_some() || ready.is_some()).then_some(Probes {
            health,
            ready,
            readiness,
        })
    }

    /// The probe's answer when `head` asks a probe path (exactly: a query does not matter).
    pub fn answer(&self, head: &Parts) -> Option<Response> {
        let path = head.uri.path();
        let phase = self.readiness.phase();
        let (status, body): (StatusCode, &'static [u8]) = if self.health.as_deref() == Some(path) {
            match phase {
                Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, b"draining\n"),
                Phase::Starting | Phase::Ready => (StatusCode::OK, b"ok\n"),
            }
        } else if self.ready.as_deref() == Some(path) {
            match phase {
                Phase::Ready => (StatusCode::OK, b"ready\n"),
                Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, b"starting\n"),
                Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, b"draining\n"),
            }
        } else {
            return None;
        };
        let mut headers = HeaderBlock::with_capacity(64);
        headers.push(b"Content-Type", b"text/plain; charset=utf-8");
        // A cache between the prober and us must not answer for us.
        headers.push(b"Cache-Control", b"no-store");
        Some(Response::new(
            status,
            headers,
            ResponseBody::full(Bytes::from_static(body)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target: &str) -> Parts {
        http::Request::get(target).body(()).unwrap().into_parts().0
    }

    fn status(probes: &Probes, target: &str) -> Option<u16> {
        probes.answer(&head(target)).map(|r| r.status.as_u16())
    }

    #[test]
    fn no_paths_no_probes() {
        assert!(Probes::new(None, None, Arc::default()).is_none());
    }

    #[test]
    fn probes_follow_the_workers_phase() {
        let readiness = Arc::new(Readiness::default());
        let probes = Probes::new(
            Some("/healthz".into()),
            Some("/readyz".into()),
            readiness.clone(),
        )
        .unwrap();
        assert_eq!(status(&probes, "/healthz"), Some(200));
        assert_eq!(status(&probes, "/readyz"), Some(503));
        readiness.mark_ready();
        assert_eq!(status(&probes, "/healthz?verbose=1"), Some(200));
        assert_eq!(status(&probes, "/readyz"), Some(200));
        readiness.begin_drain();
        assert_eq!(status(&probes, "/healthz"), Some(503));
        assert_eq!(status(&probes, "/readyz"), Some(503));
    }

    #[test]
    fn other_paths_are_not_probes() {
        let probes = Probes::new(Some("/healthz".into()), None, Arc::default()).unwrap();
        for target in ["/", "/healthz/", "/healthzz", "/readyz", "/HEALTHZ"] {
            assert_eq!(status(&probes, target), None, "{target}");
        }
    }
}
