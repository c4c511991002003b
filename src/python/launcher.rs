//! Starting a worker: `os.fork()` (so CPython's own at-fork bookkeeping runs), then, in the
//! child, the worker's whole life: load the app, serve until a signal, `os._exit`. The worker
//! reports to the master through its heartbeat slot: that it accepts, and what its Python
//! threads are doing (`supervisor::report`, fed from the pool's progress here).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::signal::unix::{signal, SignalKind};

use super::serving::{load_app, AppRuntime, AppSource};
use crate::config::Settings;
use crate::observe::{error_log, AccessLog};
use crate::server::{self, Listener};
use crate::supervisor::{
    self, Identity, Progress, RetirementPolicy, RunningRequest, WorkerLauncher, WorkerSlot,
};
use crate::wsgi::ProgressProbe;

pub struct ForkLauncher<'py, 'a> {
    pub py: Python<'py>,
    pub settings: &'a Settings,
    /// Opened by the master, so a bad path is a startup error rather than a worker crash loop.
    pub access_log: Option<Arc<AccessLog>>,
    pub listeners: &'a [Listener],
    pub app: &'a AppSource,
    /// `--user`/`--group`: taken on right after the fork, before the app is imported.
    pub identity: Option<Identity>,
}

impl WorkerLauncher for ForkLauncher<'_, '_> {
    fn launch(&mut self, slot: WorkerSlot) -> io::Result<libc::pid_t> {
        let os = self.py.import("os").map_err(io::Error::other)?;
        let pid: libc::pid_t = os
            .call_method0("fork")
            .and_then(|pid| pid.extract())
            .map_err(io::Error::other)?;
        if pid != 0 {
            return Ok(pid);
        }
        let code = run_worker(self.py, self, slot);
        flush_python_streams(self.py);
        let _ = os.call_method1("_exit", (code,));
        std::process::exit(code)
    }
}

fn flush_python_streams(py: Python<'_>) {
    if let Ok(sys) = py.import("sys") {
        for stream in ["stdout", "stderr"] {
            if let Ok(stream) = sys.getattr(stream) {
                let _ = stream.call_method0("flush");
            }
        }
    }
}

/// A worker process from fork to exit; returns its exit code.
fn run_worker(py: Python<'_>, launcher: &ForkLauncher<'_, '_>, slot: WorkerSlot) -> i32 {
    let (settings, listeners, app) = (launcher.settings, launcher.listeners, launcher.app);
    supervisor::signals::reset_in_child();
    supervisor::signals::exit_on_quit();
    prefer_batches();
    log::info!("Booting worker with pid: {}", std::process::id());
    enable_stack_dumps(py);
    if let Some(identity) = &launcher.identity {
        if let Err(error) = identity.assume() {
            log::error!("Cannot run as {}: {error}", identity.describe());
            return supervisor::EXIT_WORKER_BOOT_FAILED;
        }
    }
    let app = match load_app(py, app) {
        Ok(app) => app,
        Err(error) => {
            log::error!("{error}");
            return error.exit_code();
        }
    };
    let listeners = match listeners
        .iter()
        .map(Listener::try_clone)
        .collect::<io::Result<Vec<_>>>()
    {
        Ok(listeners) => listeners,
        Err(error) => {
            log::error!("Cannot use the listening sockets: {error}");
            return 1;
        }
    };
    let runtime = match AppRuntime::start(app, settings, launcher.access_log.clone()) {
        Ok(runtime) => runtime,
        Err(error) => {
            log::error!("{error}");
            return error.exit_code();
        }
    };
    let policy = RetirementPolicy::new(
        settings.max_requests,
        settings.max_requests_jitter,
        settings.max_worker_memory,
    );
    if let Some(max) = policy.max_requests() {
        log::debug!("This worker retires after {max} requests (--max-requests and its jitter)");
    }
    let probe = runtime.progress_probe();
    let grace = settings.graceful_timeout();
    let max_connections = settings.max_connections as usize;
    let reporting = slot.clone();
    let served = runtime.run(py, move |handler, options| async move {
        tokio::spawn(supervisor::report(
            reporting.clone(),
            move || progress_of(&probe),
            policy,
        ));
        server::serve(
            listeners,
            handler,
            options,
            max_connections,
            accepting_until_stopped(reporting, grace),
        )
        .await
    });
    match served {
        Ok(()) if slot.retirement_asked().is_some() => supervisor::EXIT_WORKER_RETIRED,
        Ok(()) => 0,
        Err(error) => {
            log::error!("Worker failed: {error}");
            1
        }
    }
}

/// The pool's progress as the heartbeat reports it: the oldest request named by method and
/// target, for the master's line if it times out.
fn progress_of(probe: &ProgressProbe) -> Progress {
    let sample = probe.sample();
    Progress {
        requests: sample.requests,
        oldest_running: sample.oldest_running.map(|request| RunningRequest {
            started: request.started,
            label: match &request.target {
                Some(target) => format!("{} {target}", request.method),
                None => request.method.to_string(),
            },
        }),
    }
}

/// `--timeout` aborts a stuck worker with SIGABRT: Python's faulthandler then writes the
/// stack of every Python thread to the error log before the process ends.
fn enable_stack_dumps(py: Python<'_>) {
    let enabled = py.import("faulthandler").and_then(|faulthandler| {
        let options = pyo3::types::PyDict::new(py);
        options.set_item("file", error_log::raw_fd())?;
        options.set_item("all_threads", true)?;
        faulthandler.call_method("enable", (), Some(&options))
    });
    if let Err(error) = enabled {
        log::warn!("Cannot enable faulthandler ({error}): a worker aborted by --timeout will not log its stacks");
    }
}

/// PERF: SCHED_BATCH turns off wake-up preemption between this worker's threads. Without it,
/// on a busy core every request handed from the I/O thread to a Python thread (and every
/// response handed back) preempted the sender at once: ~1.6 context switches per request
/// instead of one batch per wake-up (benches/README.md, "context switches").
fn prefer_batches() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscall on this process with a valid parameter; failure only loses the optimisation.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc != 0 {
        log::debug!(
            "SCHED_BATCH not available: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Says in `slot` that the worker accepts, then resolves to the grace period on SIGTERM or
/// SIGINT (SIGQUIT is `exit_on_quit`'s). `serve` first polls it once its accept loops run, and
/// the handlers are installed before the master is told, so its SIGTERM always finds them.
async fn accepting_until_stopped(slot: WorkerSlot, grace: Duration) -> Duration {
    let (Ok(mut term), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("Cannot install signal handlers; this worker will only stop when killed");
        slot.mark_accepting();
        return std::future::pending().await;
    };
    slot.mark_accepting();
    tokio::select! {
        _ = term.recv() => grace,
        _ = interrupt.recv() => grace,
    }
}
