//! One request on a Python thread: build the environ, call the app, drive its body, and turn
//! whatever went wrong into a log line and a 500 (or an aborted connection).

use http::Method;
use pyo3::prelude::*;

use super::environ::EnvironBuilder;
use super::handler::Job;
use super::input::WsgiInput;
use super::response::{self, Outcome};
use super::start_response::StartResponse;
use super::WsgiConfig;
use crate::http::status::Failure;
use crate::python::errors::RequestTimeout;

/// How much longer than `--socket-timeout` a thread waits for room to send: the connection
/// cuts a client that reads nothing off first, and says why.
const SEND_SLACK: std::time::Duration = std::time::Duration::from_secs(1);

pub fn run_job(
    py: Python<'_>,
    apps: &[Bound<'_, PyAny>],
    environ: &mut EnvironBuilder,
    config: &WsgiConfig,
    job: Job,
) {
    let app_index = job.app_index();
    let Job {
        head,
        connection,
        input,
        mut reply,
        queue_time,
    } = job;
    reply.set_queue_time(queue_time);
    // The client left while the request waited in the queue: running the app would be wasted.
    if reply.is_client_gone() {
        return;
    }
    let Some(app) = apps.get(app_index) else {
        log::error!("Internal error: no Python app number {app_index}; the client got a 500");
        return;
    };
    let check_length = head.method != Method::HEAD;
    let (start_response, input) = match (
        Bound::new(
            py,
            StartResponse::new(reply, check_length, config.socket_timeout + SEND_SLACK),
        ),
        Bound::new(py, WsgiInput::new(input, config.socket_timeout)),
    ) {
        (Ok(start_response), Ok(input)) => (start_response, input),
        (Err(error), _) | (_, Err(error)) => {
            // The reply was dropped with the StartResponse: the client gets a 500.
            log::error!("Cannot create the WSGI call's objects: {error}");
            return;
        }
    };
    let built = environ.build(py, &head, &connection, input.clone());
    // Seconds as a float, as time.monotonic() differences are (issue 14).
    let built = built.and_then(|environ| {
        let key = pyo3::intern!(py, "ferrogate.queue_time");
        environ.set_item(key, queue_time.as_secs_f64())?;
        Ok(environ)
    });
    let outcome = match built {
        Err(error) => Outcome::Raised(error),
        Ok(environ) => match app.call1((environ, &start_response)) {
            Err(error) => Outcome::Raised(error),
            Ok(iterable) => response::send_body(py, &iterable, &start_response),
        },
    };
    // Now, not when the environ is freed: frameworks keep it in reference cycles that live
    // until the garbage collector runs, and the connection's next request waits for this.
    if let Ok(mut input) = input.try_borrow_mut() {
        input.finish_request();
    }
    let request = || format!("{} {}", head.method, head.uri);
    let (message, detail) = match outcome {
        Outcome::Done => return,
        Outcome::Raised(error) if error.is_instance_of::<RequestTimeout>(py) => {
            // request_timeout.rs logged it when it interrupted the thread.
            fail(py, &start_response, Failure::RequestTimeout);
            return;
        }
        Outcome::Raised(error) => {
            let traceback = format_traceback(py, &error);
            (
                format!(
                    "Error handling request {}:\n{}",
                    request(),
                    traceback.trim_end()
                ),
                traceback,
            )
        }
        Outcome::BodyNotBytes(type_name) => {
            let problem = format!(
                "the response body contained a {type_name}; WSGI response bodies must be bytes \
                 (encode text before returning it)"
            );
            (
                format!("Error handling request {}: {problem}", request()),
                problem,
            )
        }
        Outcome::Invalid(problem) => (
            format!("Error handling request {}: {problem}", request()),
            problem,
        ),
    };
    py.detach(|| log::error!("{message}"));
    let detail = config.debug.then_some(detail);
    fail(py, &start_response, Failure::Application { detail });
}

/// Answers a failed request with `failure` if its head was not sent yet, else aborts it.
fn fail(py: Python<'_>, start_response: &Bound<'_, StartResponse>, failure: Failure) {
    match start_response.try_borrow_mut() {
        Ok(mut state) => state.fail(py, failure),
        // Only the app's other thread can hold it; dropping its reply gives the client a 500.
        Err(_) => log::error!(
            "Could not answer the failed request: the response is in use by another thread"
        ),
    }
}

fn format_traceback(py: Python<'_>, error: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|traceback| {
        traceback.call_method1(
            "format_exception",
            (error.get_type(py), error.value(py), error.traceback(py)),
        )
    });
    match formatted.and_then(|lines| lines.extract::<Vec<String>>()) {
        Ok(lines) => lines.concat(),
        Err(_) => error.to_string(),
    }
}
