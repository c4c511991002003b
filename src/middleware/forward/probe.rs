//! The active health checks: every `health_interval`, a GET of the health path on each
//! upstream; a 2xx or 3xx within the interval (and the timeout) is a pass. Runs as one task
//! per worker on its I/O runtime (started with the worker, or on the first request of the
//! WSGI object), with its own pool; the workers take turns (`claim_probe`), so an
//! upstream is probed once per interval per host.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use http::{Method, Request};

use super::body::{OutgoingBody, SentBody};
use super::pool::Pool;
use super::Forward;

pub async fn run(forward: Arc<Forward>, pool: Arc<Pool>) {
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
            let check = async {
                let mut conn = pool.checkout(index).await.ok()?;
                // The body is dropped unread (and the connection with it): small, once an
                // interval.
                let answered = conn.send(request, &AtomicBool::new(true), limit).await?;
                answered.ok().map(|response| response.status())
            };
            let healthy = match tokio::time::timeout(limit, check).await {
                Ok(Some(status)) => status.is_success() || status.is_redirection(),
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
