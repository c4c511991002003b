//! `--reload` (development): a worker watches the files of the modules it imported, plus
//! `--reload-extra-file` and `--reload-include` globs, with the `notify` crate, and on a
//! change asks the master for a reload (SIGHUP), the same reload an operator's HUP starts.
//! It keeps watching afterwards: if the new code does not import, this worker goes on
//! serving and the next save tries again.
//!
//! Why in the worker and not the master: only the worker imported the app, so only it knows
//! which files matter. Directories are watched rather than files, because editors save by
//! writing a new file and renaming it over the old one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use pyo3::prelude::*;

/// How long the files must be quiet after a change before the reload is asked for: an
/// editor's save is several events, and a checkout touches many files.
const SETTLE: Duration = Duration::from_millis(200);

/// How often the list of imported modules is read again (modules imported late, on a first
/// request, are watched from then on).
const RESCAN: Duration = Duration::from_secs(2);

/// Set once this worker stops: it asks for no reload after that.
static STOPPED: AtomicBool = AtomicBool::new(false);

/// The worker is draining (a reload, a retirement or a stop replaces it).
pub fn stop_watching() {
    STOPPED.store(true, Ordering::Relaxed);
}

pub struct ReloadOptions {
    pub extra_files: Vec<PathBuf>,
    pub include: Vec<String>,
}

/// Starts the watching thread; a failure to watch is logged, and serving goes on.
pub fn start(py: Python<'_>, options: ReloadOptions) {
    let patterns: Vec<glob::Pattern> = options
        .include
        .iter()
        .filter_map(|text| match glob::Pattern::new(text) {
            Ok(pattern) => Some(pattern),
            Err(error) => {
                log::error!("--reload-include {text:?}: {error}");
                None
            }
        })
        .collect();
    let mut files: BTreeSet<PathBuf> = module_files(py);
    files.extend(options.extra_files.iter().map(|p| absolute(p)));
    for pattern in &options.include {
        if let Ok(paths) = glob::glob(pattern) {
            files.extend(paths.flatten().map(|p| absolute(&p)));
        }
    }
    let spawned = std::thread::Builder::new()
        .name("ferrogate-reload".into())
        .spawn(move || watch(files, patterns));
    if let Err(error) = spawned {
        log::error!("--reload: cannot start the watcher: {error}");
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The source files of the imported modules, but the standard library's (which does not
/// change under a running app).
fn module_files(py: Python<'_>) -> BTreeSet<PathBuf> {
    let read = || -> PyResult<BTreeSet<PathBuf>> {
        let sys = py.import("sys")?;
        let stdlib: String = py
            .import("sysconfig")?
            .call_method1("get_path", ("stdlib",))?
            .extract()?;
        let modules = sys.getattr("modules")?.call_method0("copy")?;
        let mut files = BTreeSet::new();
        for module in modules.call_method0("values")?.try_iter()? {
            let Ok(file) = module?.getattr("__file__") else {
                continue;
            };
            let Ok(file) = file.extract::<String>() else {
                continue;
            };
            if !file.starts_with(&stdlib) {
                files.insert(absolute(Path::new(&file)));
            }
        }
        Ok(files)
    };
    read().unwrap_or_else(|error| {
        log::warn!("--reload: cannot list the imported modules: {error}");
        BTreeSet::new()
    })
}

fn watch(mut files: BTreeSet<PathBuf>, patterns: Vec<glob::Pattern>) {
    let (events, received) = mpsc::channel();
    let mut watcher = match notify::recommended_watcher(events) {
        Ok(watcher) => watcher,
        Err(error) => {
            log::error!("--reload: cannot watch files: {error}");
            return;
        }
    };
    let mut dirs = BTreeSet::new();
    watch_dirs(&mut watcher, &files, &mut dirs);
    log::info!(
        "--reload: watching {} files in {} directories",
        files.len(),
        dirs.len()
    );
    let mut changed: Option<(PathBuf, Instant)> = None;
    let mut rescan_at = Instant::now() + RESCAN;
    loop {
        let wait = match &changed {
            Some((_, at)) => SETTLE.saturating_sub(at.elapsed()),
            None => rescan_at.saturating_duration_since(Instant::now()),
        };
        match received.recv_timeout(wait) {
            Ok(Ok(event)) if is_change(&event.kind) => {
                let hit = event.paths.iter().find(|path| {
                    files.contains(*path) || patterns.iter().any(|p| p.matches_path(path))
                });
                if let Some(path) = hit {
                    changed = Some((path.clone(), Instant::now()));
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => log::warn!("--reload: {error}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some((path, _)) = changed.take() {
                    ask_for_reload(&path);
                } else {
                    files.extend(Python::attach(module_files));
                    watch_dirs(&mut watcher, &files, &mut dirs);
                    rescan_at = Instant::now() + RESCAN;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn watch_dirs(
    watcher: &mut notify::RecommendedWatcher,
    files: &BTreeSet<PathBuf>,
    dirs: &mut BTreeSet<PathBuf>,
) {
    for dir in files.iter().filter_map(|file| file.parent()) {
        if dirs.contains(dir) {
            continue;
        }
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                dirs.insert(dir.to_path_buf());
            }
            Err(error) => log::debug!("--reload: cannot watch {}: {error}", dir.display()),
        }
    }
}

fn is_change(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    )
}

fn ask_for_reload(path: &Path) {
    if STOPPED.load(Ordering::Relaxed) {
        return;
    }
    log::info!(
        "--reload: {} changed; asking the master to reload",
        path.display()
    );
    // SAFETY: getppid and kill have no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getppid(), libc::SIGHUP);
    }
}
