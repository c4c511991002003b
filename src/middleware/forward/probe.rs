//! The active health checks: every `health_interval`, a GET of the health path on each
//! upstream; a 2xx or 3xx within the interval (and the timeout) is a pass. Runs as one task
//! per worker on its I/O runtime (started with the worker, or on the first request of the
//! WSGI object), with its own pooled client; the workers take turns (`claim_probe`), so an
//! upstream is probed once per interval per host.

use std::sync::Arc;

use http::{Method, Request};

use super::body::{OutgoingBody, SentBody};
use super::{Forward, UpstreamClient};

pub async fn run(forward: Arc<Forward>, client: UpstreamClient) {
    let Some(path) = forward.options.health_path.clone() else {
        return;
    };
    let limit = forward.options.timeout.min(forward.options.health_interval);
    let mut ticks = tokio::time::interval(forward.options.health_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for (index, upstream) in forward.upstreams.iter().enumerate() {
            if !forward
                .health
                .claim_probe(index, forward.options.health_interval)
            {
                continue;
            }
            let mut request = Request::new(SentBody::from(OutgoingBody::Empty));
            *request.method_mut() = Method::GET;
            *request.uri_mut() = upstream.uri(&path);
            let host = upstream.host_header().clone();
            request.headers_mut().insert(http::header::HOST, host);
            let answer = tokio::time::timeout(limit, client.request(request)).await;
            let healthy = match answer {
                Ok(Ok(response)) => {
                    let status = response.status();
                    // The body is dropped unread: small, and the connection may be lost.
                    status.is_success() || status.is_redirection()
                }
                _ => false,
            };
            if forward.health.probed(index, healthy) {
                match healthy {
                    true => log::warn!("Forward: upstream {upstream} is back in rotation"),
                    false => log::warn!(
                        "Forward: upstream {upstream} failed its health check ({path}): out of rotation"
                    ),
                }
            }
        }
    }
}
