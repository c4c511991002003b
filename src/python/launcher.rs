//! Starting a worker: `os.fork()` (so CPython's own at-fork bookkeeping runs), then, in the
//! child, the worker's whole life: load the app, serve until a signal, `os._exit`. The worker
//! reports to the master through its heartbeat slot: that it accepts, and what its Python
//! threads are doing (`supervisor::report`, fed from the pool's progress here).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::signal::unix::{signal, SignalKind};

use super::entry::{read_settings, supervisor_options};
use super::hooks;
use super::reloader::{self, ReloadOptions};
use super::reread;
use super::serving::{
    configure_logging, load_app, slice_sleep_for_timeouts, AppRuntime, AppSource,
};
use crate::config::Settings;
use crate::config::{BindScheme, Loaded};
use crate::observe::metrics::{self, MetricsTable, ThreadsSample, WorkerMetrics};
use crate::observe::{error_log, AccessLog, Readiness};
use crate::server::tls::ServerTls;
use crate::server::{self, Endpoint, Listener};
use crate::supervisor::upgrade::{self, Successor};
use crate::supervisor::{
    self, Identity, MasterEvent, PidFile, Progress, RetirementPolicy, RunningRequest,
    SupervisorOptions, WorkerLauncher, WorkerSlot,
};
use crate::wsgi::ProgressProbe;

pub struct ForkLauncher<'py> {
    py: Python<'py>,
    /// The settings as last read (at start, then by each SIGHUP).
    loaded: Loaded,
    app: AppSource,
    restart: Restart,
    /// Opened by the master, so a bad path is a startup error rather than a worker crash loop.
    access_log: Option<Arc<AccessLog>>,
    /// The listening sockets, until a stop closes the master's copies.
    listeners: Vec<Listener>,
    /// `--user`/`--group`: taken on right after the fork, before the app is imported.
    identity: Option<Identity>,
    pid_file: Option<PidFile>,
    /// A new master started by SIGUSR2 runs (or ran and was not seen to end) on our sockets.
    handed_over: bool,
    /// `--metrics-bind`: every worker slot's counters, shared with the master.
    metrics: Option<MetricsTable>,
    /// The TLS configuration the next workers get, when some listener serves https.
    tls: Option<ServedTls>,
    /// One per listener, in their order: the scheme its `--bind` wrote (`uwsgi://` fixes the
    /// protocol; the rest follow `--protocol` as last read).
    schemes: Vec<BindScheme>,
}

/// TLS as the master hands it to the workers it forks: the configuration last loaded
/// (at start, then by each SIGHUP that loaded a good one), and which listeners use it.
pub struct ServedTls {
    pub tls: ServerTls,
    /// One flag per listener, in their order: whether it serves TLS.
    pub encrypted: Vec<bool>,
}

impl ServedTls {
    /// SIGHUP: the certificate and key files (and the other TLS settings) read again. A
    /// configuration that does not load is logged, and the one in use is kept.
    fn reload(&mut self, settings: &Settings) {
        match ServerTls::from_settings(&settings.tls, settings.http) {
            Ok(Some(tls)) => {
                self.tls = tls;
                log::info!("SIGHUP: loaded the TLS certificate again for new connections");
            }
            Ok(None) => log::error!(
                "SIGHUP: --certfile is no longer set, but https listeners need it (a change \
                 of --bind waits for a restart); the certificate in use is kept"
            ),
            Err(error) => {
                log::error!("SIGHUP: {error}; the TLS certificate in use is kept")
            }
        }
    }
}

/// What a SIGHUP reads again and a SIGUSR2 runs again.
pub struct Restart {
    pub argv: Vec<String>,
    pub start_dir: PathBuf,
    /// `None` when Python could not say how it was started.
    pub successor: Option<Successor>,
}

/// What the master made ready before its first fork.
pub struct Prepared {
    pub loaded: Loaded,
    pub app: AppSource,
    pub access_log: Option<Arc<AccessLog>>,
    pub listeners: Vec<Listener>,
    pub identity: Option<Identity>,
    pub pid_file: Option<PidFile>,
    pub tls: Option<ServedTls>,
    pub schemes: Vec<BindScheme>,
    pub metrics: Option<MetricsTable>,
}

impl<'py> ForkLauncher<'py> {
    pub fn new(py: Python<'py>, prepared: Prepared, restart: Restart) -> ForkLauncher<'py> {
        let Prepared {
            loaded,
            app,
            access_log,
            listeners,
            identity,
            pid_file,
            tls,
            schemes,
            metrics,
        } = prepared;
        ForkLauncher {
            py,
            loaded,
            app,
            restart,
            access_log,
            listeners,
            identity,
            pid_file,
            handed_over: false,
            tls,
            schemes,
            metrics,
        }
    }

    /// Each listener with its TLS configuration, if it serves https, and what it speaks.
    fn endpoints(&self, listeners: Vec<Listener>) -> Vec<Endpoint> {
        let default = self.loaded.settings.protocol;
        listeners
            .into_iter()
            .enumerate()
            .map(|(index, listener)| {
                let scheme = self.schemes.get(index).copied().unwrap_or_default();
                let tls = self
                    .tls
                    .as_ref()
                    .filter(|served| served.encrypted.get(index) == Some(&true))
                    .map(|served| served.tls.clone());
                Endpoint {
                    listener,
                    tls,
                    protocol: scheme.protocol(default),
                }
            })
            .collect()
    }

    /// Whether the sockets now belong to a new master (their files must stay at exit).
    pub fn handed_over(&self) -> bool {
        self.handed_over
    }
}

impl WorkerLauncher for ForkLauncher<'_> {
    fn launch(&mut self, slot: WorkerSlot) -> io::Result<libc::pid_t> {
        let os = self.py.import("os").map_err(io::Error::other)?;
        hooks::run_logged(self.py, "pre_fork", 0);
        // The child starts from the master's ticket keys: current ones, older ones forgotten.
        crate::server::tls::roll_ticket_keys();
        let pid: libc::pid_t = os
            .call_method0("fork")
            .and_then(|pid| pid.extract())
            .map_err(io::Error::other)?;
        if pid != 0 {
            return Ok(pid);
        }
        // The child owns its inherited copies: a stop must be able to close every copy.
        let listeners = std::mem::take(&mut self.listeners);
        let code = run_worker(self.py, self, listeners, slot);
        hooks::run_logged(self.py, "worker_exit", 0);
        flush_python_streams(self.py);
        let _ = os.call_method1("_exit", (code,));
        std::process::exit(code)
    }

    fn stop_listening(&mut self) {
        // Workers still hold theirs until they have taken what waits in the backlog.
        self.listeners.clear();
    }

    fn reopen_logs(&mut self) {
        reopen_logs(self.access_log.as_deref());
        log::info!("SIGUSR1: reopened the log files");
    }

    fn reread_settings(&mut self) -> SupervisorOptions {
        let restart = &self.restart;
        match read_settings(self.py, &restart.argv, &restart.start_dir) {
            Ok(loaded) => {
                let applied = reread::apply(self.py, &self.loaded, loaded, &mut self.app);
                if let Some(access_log) = applied.access_log {
                    self.access_log = access_log;
                }
                self.loaded = applied.loaded;
            }
            Err(error) => log::error!(
                "SIGHUP: the settings cannot be read again, so they stay as they were: {error}"
            ),
        }
        // Read again here, in the master, so that the workers this reload forks inherit it.
        // Relative to where ferrogate started, as at startup.
        let log_config = (self.loaded.settings.observe.log_config.as_ref())
            .map(|path| self.restart.start_dir.join(path));
        if let Some(path) = log_config {
            match configure_logging(self.py, Some(&path)) {
                Ok(()) => log::info!("SIGHUP: applied {} (--log-config) again", path.display()),
                Err(error) => log::error!("SIGHUP: {error}; logging stays as it was configured"),
            }
        }
        match &mut self.tls {
            Some(tls) => tls.reload(&self.loaded.settings),
            None if self.loaded.settings.tls.certfile.is_some() => log::warn!(
                "SIGHUP: no listener serves TLS, so --certfile takes effect only when \
                 ferrogate restarts (or upgrades with SIGUSR2)"
            ),
            None => {}
        }
        supervisor_options(&self.loaded.settings)
    }

    fn start_successor(&mut self) -> io::Result<libc::pid_t> {
        let Some(successor) = &self.restart.successor else {
            return Err(io::Error::other("Python did not say how it was started"));
        };
        hooks::run(self.py, "pre_exec", 0).map_err(io::Error::other)?;
        if let Some(pid_file) = &mut self.pid_file {
            let old = upgrade::old_pid_file(pid_file.path());
            pid_file.rename(&old)?;
        }
        let started = upgrade::start(successor, &server::handover::descriptors(&self.listeners));
        match &started {
            Ok(_) => self.handed_over = true,
            Err(_) => self.take_pid_file_back(),
        }
        started
    }

    fn on_event(&mut self, event: MasterEvent) {
        match event {
            MasterEvent::Reload => hooks::run_logged(self.py, "on_reload", 0),
            MasterEvent::WorkerExited(pid) => hooks::run_logged(self.py, "child_exit", pid),
            MasterEvent::WorkerCountChanged { new, old } => {
                hooks::run_counts_logged(self.py, "nworkers_changed", new, old)
            }
            MasterEvent::SuccessorExited(_) => {
                self.handed_over = false;
                self.take_pid_file_back();
            }
        }
    }
}

impl ForkLauncher<'_> {
    /// The pid file goes back to its own name (the new master's is gone with it).
    fn take_pid_file_back(&mut self) {
        let (Some(pid_file), Some(path)) = (&mut self.pid_file, &self.loaded.settings.pid) else {
            return;
        };
        if let Err(error) = pid_file.rename(path) {
            log::error!(
                "Cannot move the pid file back to {}: {error}",
                path.display()
            );
        }
    }
}

/// Reopens the error log and the access log by their paths; a log that cannot be reopened
/// keeps its old file, and says so.
fn reopen_logs(access_log: Option<&AccessLog>) {
    if let Err(error) = error_log::reopen() {
        log::error!("Cannot reopen the error log: {error}");
    }
    if let Some(Err(error)) = access_log.map(AccessLog::reopen) {
        log::error!("Cannot reopen the access log: {error}");
    }
}

/// In a worker: SIGUSR1 reopens its log files, off the I/O thread (opening a file may block).
async fn reopen_logs_on_signal(access_log: Option<Arc<AccessLog>>) {
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        log::warn!("Cannot install the SIGUSR1 handler; this worker will not reopen its logs");
        return;
    };
    while usr1.recv().await.is_some() {
        let access_log = access_log.clone();
        let reopen = move || {
            reopen_logs(access_log.as_deref());
            // faulthandler holds the old file's descriptor number, now closed.
            Python::attach(enable_stack_dumps);
            log::info!("SIGUSR1: reopened the log files");
        };
        let _ = tokio::task::spawn_blocking(reopen).await;
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
fn run_worker(
    py: Python<'_>,
    launcher: &ForkLauncher<'_>,
    listeners: Vec<Listener>,
    slot: WorkerSlot,
) -> i32 {
    let (settings, app) = (&launcher.loaded.settings, &launcher.app);
    supervisor::signals::reset_in_child();
    metrics::close_inherited();
    supervisor::control::close_inherited();
    supervisor::signals::exit_on_quit();
    prefer_batches();
    crate::middleware::forward::set_worker_slot(slot.index());
    log::info!("Booting worker with pid: {}", std::process::id());
    enable_stack_dumps(py);
    hooks::run_logged(py, "post_fork", 0);
    // Before the identity changes: only the user that reserved an address may join its group.
    let listeners = match own_listeners(listeners, settings.backlog) {
        Ok(listeners) => launcher.endpoints(listeners),
        Err(error) => {
            log::error!("--reuse-port: cannot listen on a socket of this worker's own: {error}");
            return supervisor::EXIT_WORKER_BOOT_FAILED;
        }
    };
    if let Some(identity) = &launcher.identity {
        if let Err(error) = identity.assume() {
            log::error!("Cannot run as {}: {error}", identity.describe());
            return supervisor::EXIT_WORKER_BOOT_FAILED;
        }
    }
    let app = match slice_sleep_for_timeouts(py, settings).and_then(|()| load_app(py, app)) {
        Ok(app) => app,
        Err(error) => {
            log::error!("{error}");
            return error.exit_code();
        }
    };
    hooks::run_logged(py, "post_worker_init", 0);
    if settings.reload {
        let options = ReloadOptions {
            // A renewed certificate is reloaded like a changed module.
            extra_files: (settings.reload_extra_file.iter())
                .chain(settings.tls.files())
                .cloned()
                .collect(),
            include: settings.reload_include.clone(),
        };
        reloader::start(py, options);
    }
    let mut runtime = match AppRuntime::start(py, app, settings, launcher.access_log.clone()) {
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
    let worker_metrics = (launcher.metrics.as_ref()).and_then(|table| table.worker(slot.index()));
    runtime.set_metrics(worker_metrics.clone());
    let probe = runtime.progress_probe();
    let stopping = Stopping {
        grace: settings.graceful_timeout(),
        drain_delay: settings.observe.drain_delay(),
        readiness: runtime.readiness(),
    };
    let max_connections = settings.max_connections as usize;
    let access_log = launcher.access_log.clone();
    let reporting = slot.clone();
    let served = runtime.run(py, move |handler, options| async move {
        tokio::spawn(reopen_logs_on_signal(access_log));
        tokio::spawn(supervisor::report(
            reporting.clone(),
            move || progress_of(&probe, worker_metrics.as_ref()),
            policy,
        ));
        server::serve(
            listeners,
            handler,
            options,
            max_connections,
            accepting_until_stopped(reporting, stopping),
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

/// The listeners this worker accepts on: `--reuse-port` reservations become its own sockets.
fn own_listeners(listeners: Vec<Listener>, backlog: i32) -> io::Result<Vec<Listener>> {
    listeners
        .into_iter()
        .map(|listener| listener.into_own(backlog))
        .collect()
}

/// The pool's progress as the heartbeat reports it: the oldest request named by method and
/// target, for the master's line if it times out. The threads' state goes to the metrics.
fn progress_of(probe: &ProgressProbe, metrics: Option<&WorkerMetrics>) -> Progress {
    let sample = probe.sample();
    if let Some(metrics) = metrics {
        metrics.threads(&ThreadsSample {
            queued: sample.queued as u64,
            started: sample.threads as u64,
            busy: sample.busy as u64,
            shed: sample.shed,
        });
    }
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

/// How a worker stops gracefully.
struct Stopping {
    /// `--graceful-timeout`: what in-flight requests get once accepting stops.
    grace: Duration,
    /// `--drain-delay`: how long the worker keeps serving, its probes saying 503, first.
    drain_delay: Duration,
    readiness: Arc<Readiness>,
}

/// Says in `slot` that the worker accepts, then resolves to the grace period on SIGTERM or
/// SIGINT (SIGQUIT is `exit_on_quit`'s), after the drain delay. `serve` first polls it once
/// its accept loops run, and the handlers are installed before the master is told, so its
/// SIGTERM always finds them.
async fn accepting_until_stopped(slot: WorkerSlot, stopping: Stopping) -> Duration {
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
        _ = term.recv() => {}
        _ = interrupt.recv() => {}
    }
    // A draining worker's view of the files no longer matters: its replacement watches.
    reloader::stop_watching();
    // The probes say 503 from now on; the load balancer needs a while to see it and stop
    // sending requests, which are served meanwhile.
    stopping.readiness.begin_drain();
    if !stopping.drain_delay.is_zero() {
        log::info!(
            "Draining: the probes answer 503; accepting for {:.1}s more (--drain-delay)",
            stopping.drain_delay.as_secs_f64()
        );
        tokio::time::sleep(stopping.drain_delay).await;
    }
    stopping.grace
}
