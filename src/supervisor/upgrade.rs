//! SIGUSR2's upgrade (unicorn's and gunicorn's): the master starts a new master from the
//! program now on disk, handing it the listening sockets by descriptor, so a new ferrogate
//! (or a new Python, or new dependencies) starts serving before the old one stops. The
//! sockets go through `FERROGATE_INHERITED_FDS`, which names the parent so that a process
//! the app starts later, inheriting the environment, does not take it for its own.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The variable a successor finds its sockets in: `<parent pid>:<fd>,<fd>,...`.
pub const INHERITED_FDS: &str = "FERROGATE_INHERITED_FDS";

/// What the new master runs: the program and its arguments as this one was started, from the
/// directory it was started in (before `--chdir`), with this environment.
pub struct Successor {
    pub program: PathBuf,
    pub argv: Vec<OsString>,
    pub start_dir: PathBuf,
}

/// Forks and executes the successor with `listeners` open at the same numbers; returns its
/// pid. A program that cannot be executed shows as the successor exiting with 127.
pub fn start(successor: &Successor, listeners: &[RawFd]) -> io::Result<libc::pid_t> {
    let program = c_string(successor.program.as_os_str().as_bytes())?;
    let argv: Vec<CString> = successor
        .argv
        .iter()
        .map(|arg| c_string(arg.as_bytes()))
        .collect::<io::Result<_>>()?;
    let dir = c_string(successor.start_dir.as_os_str().as_bytes())?;
    let env = environment_for_successor(listeners)?;
    let argv_ptrs = null_terminated(&argv);
    let env_ptrs = null_terminated(&env);
    // Everything the child touches is built above: between fork and exec it only makes
    // async-signal-safe calls.
    // SAFETY: fork has no preconditions; the child below calls only async-signal-safe
    // functions on memory prepared before the fork, then execs or _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(pid);
    }
    // SAFETY: in the child; valid pointers and descriptors, async-signal-safe calls only.
    unsafe {
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigemptyset(&mut empty);
        // The master's blocked signals would stay blocked across exec.
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for &fd in listeners {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
        }
        libc::chdir(dir.as_ptr());
        libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
        libc::_exit(127)
    }
}

/// The descriptors a master started by SIGUSR2 was handed, or nothing when this process was
/// not started that way. The variable is removed either way: the app must not see it.
pub fn take_inherited() -> Vec<RawFd> {
    let Some(value) = std::env::var_os(INHERITED_FDS) else {
        return Vec::new();
    };
    std::env::remove_var(INHERITED_FDS);
    let value = value.to_string_lossy();
    let Some((parent, fds)) = value.split_once(':') else {
        return Vec::new();
    };
    // SAFETY: getppid has no preconditions.
    let our_parent = unsafe { libc::getppid() };
    if parent.parse::<libc::pid_t>().ok() != Some(our_parent) {
        return Vec::new();
    }
    fds.split(',').filter_map(|fd| fd.parse().ok()).collect()
}

fn environment_for_successor(listeners: &[RawFd]) -> io::Result<Vec<CString>> {
    let fds: Vec<String> = listeners.iter().map(RawFd::to_string).collect();
    let inherited = format!("{INHERITED_FDS}={}:{}", std::process::id(), fds.join(","));
    let mut env = vec![c_string(inherited.as_bytes())?];
    for (key, value) in std::env::vars_os() {
        if key == INHERITED_FDS {
            continue;
        }
        let mut pair = key.as_bytes().to_vec();
        pair.push(b'=');
        pair.extend_from_slice(value.as_bytes());
        env.push(c_string(&pair)?);
    }
    Ok(env)
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte"))
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The pid file's name while a successor runs: the new master writes the usual name.
pub fn old_pid_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".oldbin");
    PathBuf::from(name)
}
