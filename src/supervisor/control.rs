//! `--control-socket PATH`: a Unix socket (mode 0600: its permissions are its access control)
//! on which the master takes one command per connection from `ferrogate ctl` and answers one
//! JSON line. Served by a thread of the master that blocks every signal and acts on the
//! master only as an operator would, by sending the master its own signals (HUP, TTIN, TTOU,
//! USR1) or a worker SIGTERM, so the master loop stays the one place that changes workers.
//! `status` reads /proc and the metrics table. Knows nothing of HTTP or Python.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::signals;
use crate::observe::metrics::MetricsTable;

/// How long a client may take to send its command or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Between two TTIN/TTOU of `workers N`: signals pending together arrive as one, and the
/// master takes one per tick (200 ms).
const SIGNAL_SPACING: Duration = Duration::from_millis(250);

/// Longest command line read.
const MAX_COMMAND_BYTES: u64 = 1024;

/// The socket's descriptor, for workers to close after the fork; -1 when none.
static LISTENER_FD: AtomicI32 = AtomicI32::new(-1);

/// What the control thread needs.
pub struct Control {
    pub path: PathBuf,
    /// Per-worker counters (requests, threads busy), when the master keeps them.
    pub metrics: Option<MetricsTable>,
}

/// Binds the socket (mode 0600, a stale file replaced) and serves it from a thread.
pub fn start(control: Control) -> io::Result<()> {
    match std::fs::remove_file(&control.path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let listener = UnixListener::bind(&control.path)?;
    // Before anyone can connect (the socket is not listening for long without it).
    std::fs::set_permissions(&control.path, std::fs::Permissions::from_mode(0o600))?;
    LISTENER_FD.store(listener.as_raw_fd(), Ordering::Relaxed);
    let started = Instant::now();
    let serve = move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &control, started);
        }
    };
    spawn_without_signals("ferrogate-ctl", serve)
}

/// In a worker, right after the fork: the control socket is the master's.
pub fn close_inherited() {
    let fd = LISTENER_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: the master's listener, inherited; no thread of this child serves it.
        unsafe { libc::close(fd) };
    }
}

/// Removes the socket file (the master's exit).
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Starts a thread born with every signal blocked (a thread inherits its creator's mask):
/// the master's signals are its main thread's (sigtimedwait), and a default action taken on
/// this thread would end the master.
fn spawn_without_signals(name: &str, run: impl FnOnce() + Send + 'static) -> io::Result<()> {
    // SAFETY: sigfillset fills a zeroed set; pthread_sigmask changes this thread's mask only,
    // and the old one is restored right after the spawn.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let spawned = std::thread::Builder::new().name(name.into()).spawn(run);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned.map(drop)
    }
}

fn answer(stream: UnixStream, control: &Control, started: Instant) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(io::Read::take(&stream, MAX_COMMAND_BYTES)).read_line(&mut line)?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let reply = match run(&words, control, started) {
        Ok(reply) => reply,
        Err(error) => format!("{{\"ok\":false,\"error\":{}}}", json_string(&error)),
    };
    let mut stream = stream;
    stream.write_all(reply.as_bytes())?;
    stream.write_all(b"\n")
}

/// Runs one command; the JSON answer, or what was wrong.
fn run(words: &[&str], control: &Control, started: Instant) -> Result<String, String> {
    let master = std::process::id() as libc::pid_t;
    match words {
        ["status"] => Ok(status(control, started)),
        ["reload"] => {
            signals::send(master, libc::SIGHUP);
            Ok("{\"ok\":true,\"done\":\"reload started (SIGHUP)\"}".into())
        }
        ["log-reopen"] => {
            signals::send(master, libc::SIGUSR1);
            Ok("{\"ok\":true,\"done\":\"log files reopened (SIGUSR1)\"}".into())
        }
        ["workers", count] => {
            let now = workers().len() as i64;
            let wanted = match count.strip_prefix('+') {
                Some(more) => now + parse_count(more)?,
                None if count.starts_with('-') => now - parse_count(&count[1..])?,
                None => parse_count(count)?,
            };
            if wanted < 1 {
                return Err(format!("{count}: at least one worker must run"));
            }
            let signal = if wanted > now {
                libc::SIGTTIN
            } else {
                libc::SIGTTOU
            };
            for _ in 0..(wanted - now).abs() {
                signals::send(master, signal);
                std::thread::sleep(SIGNAL_SPACING);
            }
            Ok(format!(
                "{{\"ok\":true,\"done\":\"workers: {now} -> {wanted}\"}}"
            ))
        }
        ["kill", pid] => {
            let pid: libc::pid_t = pid.parse().map_err(|_| format!("{pid:?} is not a pid"))?;
            if !workers().contains(&pid) {
                return Err(format!("{pid} is not a worker of this master"));
            }
            signals::send(pid, libc::SIGTERM);
            Ok(format!(
                "{{\"ok\":true,\"done\":\"worker {pid} stops gracefully and is replaced\"}}"
            ))
        }
        _ => Err(format!(
            "unknown command {:?}: status, reload, workers +1|-1|N, kill PID, log-reopen",
            words.join(" ")
        )),
    }
}

fn parse_count(text: &str) -> Result<i64, String> {
    text.parse::<u16>()
        .map(i64::from)
        .map_err(|_| format!("{text:?} is not a number of workers"))
}

/// The master's children: its workers (and, during a SIGUSR2 upgrade, the new master).
fn workers() -> Vec<libc::pid_t> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|pid| pid.parse::<libc::pid_t>().ok()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn status(control: &Control, started: Instant) -> String {
    let mut out = format!(
        "{{\"ok\":true,\"master\":{},\"uptime_s\":{:.1},\"workers\":[",
        std::process::id(),
        started.elapsed().as_secs_f64()
    );
    for (n, pid) in workers().into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let rss = rss_mib(pid).map_or("null".into(), |mib| format!("{mib:.1}"));
        let counts = control
            .metrics
            .as_ref()
            .and_then(|table| table.counts_of(pid as u32));
        let (requests, busy) = counts.map_or(("null".into(), "null".into()), |(r, b)| {
            (r.to_string(), b.to_string())
        });
        let _ = write!(
            out,
            "{{\"pid\":{pid},\"rss_mib\":{rss},\"requests\":{requests},\"threads_busy\":{busy}}}"
        );
    }
    out.push_str("]}");
    out
}

/// Resident memory of `pid` in MiB, from /proc/PID/statm.
fn rss_mib(pid: libc::pid_t) -> Option<f64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf with a valid name has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    Some(pages * page / (1024.0 * 1024.0))
}

/// `text` as a JSON string (RFC 8259 §7 escapes).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_parsed_and_refused_naming_the_word() {
        assert_eq!(parse_count("3"), Ok(3));
        assert!(parse_count("x").unwrap_err().contains("\"x\""));
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn errors_are_json_strings() {
        assert_eq!(json_string("a\"b\n"), "\"a\\\"b\\u000a\"");
    }
}
