//! Signals in the master are blocked and taken synchronously with `sigtimedwait`, so the
//! master needs no handler, no thread and no self-pipe that a forked worker would inherit.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

/// The signals the master acts on.
const MASTER_SIGNALS: [libc::c_int; 9] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Interrupt,
    Quit,
    Child,
    Hangup,
    /// One worker more (gunicorn's TTIN).
    MoreWorkers,
    /// One worker fewer (TTOU).
    FewerWorkers,
    /// Reopen the log files (USR1, logrotate's postrotate).
    ReopenLogs,
    /// Start a new master from the binary on disk (USR2, unicorn's and gunicorn's upgrade).
    Upgrade,
}

fn master_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is a valid value, and sigemptyset then initialises it properly.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigemptyset(&mut set);
        for signal in MASTER_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks the master's signals so they queue until `wait` takes them.
pub fn block_in_master() -> io::Result<()> {
    let set = master_set();
    // SAFETY: a valid, initialised set; the old mask is not needed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// In a freshly forked worker: default dispositions and an empty mask, so the worker's own
/// handlers (installed later by tokio) see every signal, and Python's SIGINT handler is gone.
pub fn reset_in_child() {
    let set = master_set();
    // SAFETY: plain libc calls on valid arguments in a single-threaded child.
    unsafe {
        for signal in MASTER_SIGNALS {
            libc::signal(signal, libc::SIG_DFL);
        }
        // Their default stops the process: a TTIN meant for the master must not freeze a worker.
        libc::signal(libc::SIGTTIN, libc::SIG_IGN);
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        // Its default ends the process: ignored until the worker's own handler is installed.
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
        // The master's upgrade signal, which a worker has no use for (sent to the group).
        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        // If the master dies without stopping us, stop rather than serve as an orphan.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
}

extern "C" fn exit_at_once(_signal: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; skipping destructors is what "immediate" means.
    unsafe { libc::_exit(0) }
}

/// In a worker: SIGQUIT ends the process at once, whatever it is doing (even draining).
pub fn exit_on_quit() {
    // SAFETY: installs an async-signal-safe handler for one signal.
    unsafe {
        libc::signal(
            libc::SIGQUIT,
            exit_at_once as *const () as libc::sighandler_t,
        );
    }
}

/// Waits up to `timeout` for one of the master's signals; also says which process sent it
/// (0 when the kernel did, as for SIGCHLD).
pub fn wait_with_sender(timeout: Duration) -> Option<(Signal, libc::pid_t)> {
    let set = master_set();
    let spec = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: valid set, timespec and siginfo out-parameter.
    let signal = unsafe { libc::sigtimedwait(&set, info.as_mut_ptr(), &spec) };
    // SAFETY: zeroed, then filled by the kernel when a signal was taken; si_pid is valid for
    // signals sent with kill(), and 0 in the zeroed value otherwise.
    let sender = unsafe { info.assume_init().si_pid() };
    let signal = match signal {
        libc::SIGTERM => Some(Signal::Terminate),
        libc::SIGINT => Some(Signal::Interrupt),
        libc::SIGQUIT => Some(Signal::Quit),
        libc::SIGCHLD => Some(Signal::Child),
        libc::SIGHUP => Some(Signal::Hangup),
        libc::SIGTTIN => Some(Signal::MoreWorkers),
        libc::SIGTTOU => Some(Signal::FewerWorkers),
        libc::SIGUSR1 => Some(Signal::ReopenLogs),
        libc::SIGUSR2 => Some(Signal::Upgrade),
        _ => None,
    };
    signal.map(|signal| (signal, sender))
}

pub fn send(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A signal's usual name, for log lines ("SIGSEGV"); its number when it has none here.
pub fn name(signal: libc::c_int) -> String {
    let known = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {signal}"),
    };
    known.to_string()
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    Code(i32),
    Signal(i32),
}

/// Reaps one exited child without blocking.
pub fn reap() -> Option<(libc::pid_t, ChildExit)> {
    let mut status = 0;
    // SAFETY: status is a valid out-parameter.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let exit = if libc::WIFSIGNALED(status) {
        ChildExit::Signal(libc::WTERMSIG(status))
    } else {
        ChildExit::Code(libc::WEXITSTATUS(status))
    };
    Some((pid, exit))
}
