//! Tests of `Limiter::shared` across mappings and across processes: the counters must be
//! one set for the whole host, not one per worker.

use std::os::fd::RawFd;
use std::panic::AssertUnwindSafe;

use super::*;

const SECOND: u64 = 1_000_000_000;
const START: u64 = 700 * SECOND;

/// A scope no other test (or concurrent test run) uses; removed by `Cleanup`.
struct Scope(String);

impl Scope {
    fn new(test: &str) -> Scope {
        Scope(format!("test{}-shared-{test}", std::process::id()))
    }

    fn name(&self) -> TableName {
        TableName::new(&self.0)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let _ = remove_tables(&self.0);
    }
}

fn options(rate: &str, burst: u32) -> LimitOptions {
    LimitOptions::new(rate.parse().expect("rate")).with_burst(burst)
}

fn allowed(limiter: &Limiter, key: &[u8], now: u64, requests: u32) -> u32 {
    (0..requests)
        .filter(|_| limiter.check(key, now).is_allowed())
        .count() as u32
}

#[test]
fn two_opens_of_one_scope_share_counters() {
    let scope = Scope::new("two-opens");
    let first = Limiter::shared(options("5/s", 5), &scope.name(), 128).expect("open");
    let second = Limiter::shared(options("5/s", 5), &scope.name(), 128).expect("open again");
    assert!(first.is_shared());
    assert_eq!(allowed(&first, b"10.1.1.1", START, 3), 3);
    assert_eq!(allowed(&second, b"10.1.1.1", START, 10), 2);
    assert_eq!(allowed(&first, b"10.1.1.1", START, 10), 0);
}

#[test]
fn different_scopes_do_not_share() {
    let (one, two) = (Scope::new("scope-one"), Scope::new("scope-two"));
    let first = Limiter::shared(options("2/s", 2), &one.name(), 16).expect("open");
    let second = Limiter::shared(options("2/s", 2), &two.name(), 16).expect("open");
    assert_eq!(allowed(&first, b"k", START, 5), 2);
    assert_eq!(allowed(&second, b"k", START, 5), 2);
}

#[test]
fn shared_limiter_uses_an_existing_tables_slot_count() {
    let scope = Scope::new("slot-count");
    let first = Limiter::shared(options("1/s", 1), &scope.name(), 32).expect("open");
    let second = Limiter::shared(options("1/s", 1), &scope.name(), 9_999).expect("open");
    assert_eq!((first.slot_count(), second.slot_count()), (32, 32));
}

#[test]
fn workers_forked_from_one_parent_share_one_burst() {
    // The preload case: the table is opened once and inherited. Fixed `now`: the total is
    // exactly the burst, however the four processes interleave.
    let scope = Scope::new("fork-burst");
    let limiter = Limiter::shared(options("200/min", 200), &scope.name(), 1024).expect("open");
    let counts = in_children(4, || allowed(&limiter, b"192.0.2.7", START, 2_000));
    assert_eq!(counts.len(), 4);
    assert_eq!(counts.iter().sum::<u32>(), 200, "per child: {counts:?}");
    assert_eq!(
        allowed(&limiter, b"192.0.2.7", START, 10),
        0,
        "the parent sees it too"
    );
}

#[test]
fn shared_counters_refill_at_the_rate_across_processes() {
    // The real clock, so only bounds: at least the burst, at most the burst plus what the
    // rate earned over the time the children ran (GCRA's guarantee for any interval).
    let scope = Scope::new("fork-refill");
    let rate = options("100/s", 100);
    let limiter = Limiter::shared(rate, &scope.name(), 1024).expect("open");
    let before = monotonic_ns();
    let counts = in_children(2, || {
        (0..5_000)
            .filter(|_| limiter.check(b"198.51.100.1", monotonic_ns()).is_allowed())
            .count() as u32
    });
    let elapsed = monotonic_ns() - before;
    let total: u32 = counts.iter().sum();
    let earned = (elapsed / (SECOND / 100)) as u32;
    assert!(total >= 100, "{total} < burst");
    assert!(
        total <= 100 + earned + 1,
        "{total} > 100 + {earned} earned in {elapsed} ns"
    );
}

/// Runs `body` in `children` forked processes released at the same instant; returns what
/// each returned. The children only run `body` (atomics, no allocation: the parent is
/// multi-threaded, so locks held by its other threads stay held in the child) and
/// async-signal-safe calls, then `_exit`.
fn in_children(children: usize, body: impl Fn() -> u32) -> Vec<u32> {
    let start = pipe();
    let results = pipe();
    let mut pids = Vec::with_capacity(children);
    for _ in 0..children {
        // SAFETY: the child runs only `body` and async-signal-safe calls before `_exit`
        // (see above), so state copied mid-update from other threads is never touched.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            close(start[1]);
            // Blocks until the parent closes its end: every child starts at once.
            let mut byte = 0u8;
            // SAFETY: reads at most one byte into a live local.
            unsafe { libc::read(start[0], (&mut byte as *mut u8).cast(), 1) };
            let count = std::panic::catch_unwind(AssertUnwindSafe(&body)).unwrap_or(u32::MAX);
            let bytes = count.to_ne_bytes();
            // SAFETY: writes 4 bytes from a live local; under PIPE_BUF, so atomic.
            unsafe { libc::write(results[1], bytes.as_ptr().cast(), bytes.len()) };
            // SAFETY: ends the child without running the parent's destructors or atexit.
            unsafe { libc::_exit(0) };
        }
        pids.push(pid);
    }
    close(start[1]);
    close(results[1]);
    for pid in pids {
        let mut status = 0;
        // SAFETY: waits for our own child, writing its status into a live local.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child {status}"
        );
    }
    let mut counts = Vec::with_capacity(children);
    let mut bytes = [0u8; 4];
    // SAFETY: reads at most 4 bytes into a live local buffer; a short read is refused.
    while unsafe { libc::read(results[0], bytes.as_mut_ptr().cast(), bytes.len()) } == 4 {
        counts.push(u32::from_ne_bytes(bytes));
    }
    close(start[0]);
    close(results[0]);
    assert!(!counts.contains(&u32::MAX), "a child panicked: {counts:?}");
    counts
}

/// A close-on-exec pipe, so a test elsewhere spawning a program cannot hold its ends open.
fn pipe() -> [RawFd; 2] {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two descriptors into the live 2-element array.
    let status = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(status, 0, "pipe2: {}", std::io::Error::last_os_error());
    fds
}

fn close(fd: RawFd) {
    // SAFETY: closes a descriptor this test created and closes only once per process.
    unsafe { libc::close(fd) };
}
