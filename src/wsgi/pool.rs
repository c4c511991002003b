//! The Python threads of one worker: each takes requests off a shared queue, runs the app
//! with the GIL, and waits for the next request with the GIL released.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper::Method;
use pyo3::prelude::*;

use super::environ::EnvironBuilder;
use super::handler::{Job, WsgiHandler};
use super::input::WsgiInput;
use super::response::{self, Outcome};
use super::start_response::StartResponse;
use super::WsgiConfig;

pub struct PythonThreads {
    queue: crossbeam_channel::Sender<Job>,
    threads: Vec<JoinHandle<()>>,
}

impl PythonThreads {
    pub fn start(app: Py<PyAny>, config: WsgiConfig) -> io::Result<PythonThreads> {
        let (queue, jobs) = crossbeam_channel::unbounded();
        let app = Arc::new(app);
        let config = Arc::new(config);
        let threads = (0..config.threads)
            .map(|index| {
                let (app, config, jobs) = (app.clone(), config.clone(), jobs.clone());
                std::thread::Builder::new()
                    .name(format!("ferrogate-py-{index}"))
                    .spawn(move || thread_main(&app, &config, &jobs))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(PythonThreads { queue, threads })
    }

    pub fn handler(&self) -> WsgiHandler {
        WsgiHandler::new(self.queue.clone())
    }

    /// Lets queued and running requests finish, up to `timeout`. Call without the GIL.
    pub fn stop(self, timeout: Duration) {
        let PythonThreads { queue, threads } = self;
        drop(queue);
        let deadline = Instant::now() + timeout;
        while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stuck = threads.iter().filter(|t| !t.is_finished()).count();
        if stuck > 0 {
            log::warn!(
                "{stuck} Python thread(s) still running a request after the graceful timeout"
            );
        }
        for thread in threads.into_iter().filter(|t| t.is_finished()) {
            let _ = thread.join();
        }
    }
}

fn thread_main(app: &Py<PyAny>, config: &WsgiConfig, jobs: &crossbeam_channel::Receiver<Job>) {
    Python::attach(|py| {
        let mut environ = match EnvironBuilder::new(py, config) {
            Ok(builder) => builder,
            Err(error) => {
                log::error!("Cannot prepare the WSGI environ: {error}");
                return;
            }
        };
        let app = app.bind(py);
        while let Ok(job) = py.detach(|| jobs.recv()) {
            run_job(py, app, &mut environ, config, job);
            // PERF: requests already queued run without giving up the GIL in between
            // (benches/e2e hello keep-alive).
            while let Ok(job) = jobs.try_recv() {
                run_job(py, app, &mut environ, config, job);
            }
        }
    });
}

fn run_job(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    environ: &mut EnvironBuilder,
    config: &WsgiConfig,
    job: Job,
) {
    let Job {
        head,
        connection,
        input,
        reply,
    } = job;
    let check_length = head.method != Method::HEAD;
    let (start_response, input) = match (
        Bound::new(py, StartResponse::new(reply, check_length)),
        Bound::new(py, WsgiInput::new(input)),
    ) {
        (Ok(start_response), Ok(input)) => (start_response, input),
        (Err(error), _) | (_, Err(error)) => {
            // The reply was dropped with the StartResponse: the client gets a 500.
            log::error!("Cannot create the WSGI call's objects: {error}");
            return;
        }
    };
    let outcome = match environ.build(py, &head, &connection, input) {
        Err(error) => Outcome::Raised(error),
        Ok(environ) => match app.call1((environ, &start_response)) {
            Err(error) => Outcome::Raised(error),
            Ok(iterable) => response::send_body(py, &iterable, &start_response),
        },
    };
    let request = || format!("{} {}", head.method, head.uri);
    let (message, detail) = match outcome {
        Outcome::Done => return,
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
    start_response
        .borrow_mut()
        .fail(py, config.debug.then_some(detail));
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
