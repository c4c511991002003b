//! `--metrics-bind`: the master answers `GET /metrics` on its own listener, from one small
//! thread, so that a scrape needs neither a worker nor Python. The thread takes one scrape at
//! a time, each bounded by `SCRAPE_TIMEOUT`, and writes no log line: the master forks
//! workers while it runs, and a child must not inherit a lock it held (its render buffer is
//! reused, so a scrape rarely allocates either). Workers close their inherited copy of the
//! listening socket as they start (`close_inherited`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use super::render::{render, Labels};
use super::table::MetricsTable;

/// How long a scraper may take to send its request or read the answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head read from a scraper.
const MAX_SCRAPE_HEAD: usize = 8192;

/// The listening socket's descriptor, for workers to close after the fork; -1 when none.
static LISTENER_FD: AtomicI32 = AtomicI32::new(-1);

/// Pending scrapes the kernel queues.
const BACKLOG: i32 = 64;

/// Binds `address` and serves `/metrics` from a thread for the life of the process.
pub fn start(address: SocketAddr, table: MetricsTable, labels: Labels) -> io::Result<SocketAddr> {
    let listener = bind(address)?;
    let bound = listener.local_addr()?;
    LISTENER_FD.store(listener.as_raw_fd(), Ordering::Relaxed);
    let serve = move || {
        let mut buffer = String::with_capacity(64 * 1024);
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &table, &labels, &mut buffer);
        }
    };
    spawn_without_signals("ferrogate-metrics", serve)?;
    Ok(bound)
}

/// Starts a thread born with every signal blocked (a thread inherits its creator's mask).
/// Why: the master takes its signals with sigtimedwait on its main thread, and a signal sent
/// to the process is delivered to any thread that does not block it: here, SIGTERM's default
/// action would end the master.
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

/// SO_REUSEPORT: during a SIGUSR2 upgrade the new master binds the same address while the old
/// one still serves it (the kernel spreads scrapes over both until the old one stops).
fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// In a worker, right after the fork: its copy of the metrics socket is not its to keep.
pub fn close_inherited() {
    let fd = LISTENER_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: the descriptor was the listener's in the master; in the forked child no
        // thread serves it (threads are not inherited), so nothing else uses it.
        unsafe { libc::close(fd) };
    }
}

fn answer(
    mut stream: TcpStream,
    table: &MetricsTable,
    labels: &Labels,
    buffer: &mut String,
) -> io::Result<()> {
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    stream.set_write_timeout(Some(SCRAPE_TIMEOUT))?;
    let mut head = [0u8; MAX_SCRAPE_HEAD];
    let mut read = 0;
    while !head[..read].windows(4).any(|w| w == b"\r\n\r\n") {
        if read == head.len() {
            return stream.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        match stream.read(&mut head[read..])? {
            0 => return Ok(()),
            n => read += n,
        }
    }
    let line = head[..read]
        .split(|&b| b == b'\r')
        .next()
        .unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body): (&str, &str) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => {
            render(table, labels, buffer);
            ("200 OK", buffer.as_str())
        }
        (_, b"/metrics") => ("405 Method Not Allowed", "405 Method Not Allowed\n"),
        _ => (
            "404 Not Found",
            "404 Not Found: the metrics are at /metrics\n",
        ),
    };
    let content_type = match status {
        "200 OK" => "text/plain; version=0.0.4; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != b"HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}
