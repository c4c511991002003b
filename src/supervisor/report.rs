//! A worker's side of its heartbeat slot: a task on the worker's I/O runtime that, every
//! `REPORT_INTERVAL`, writes how far the Python threads are (requests taken, the oldest one
//! still running) and, by writing at all, that the I/O loop runs; and that decides when the
//! worker asks to retire (`--max-requests` plus its jitter, `--max-worker-memory`).
//!
//! Nothing here runs per request: the threads keep their own state (wsgi/pool/mod.rs), this task
//! samples it ten times a second. Knows nothing of Python: the progress comes from a closure
//! the worker passes in (python/launcher.rs).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use super::heartbeat::{monotonic_ns, monotonic_ns_at, Retirement, WorkerSlot};

/// How often a worker reports. Bounds how stale the master's view is: it adds to the
/// timeout's detection delay only for a silent I/O loop, and to a retirement's start.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(100);

const BYTES_PER_MIB: u64 = 1024 * 1024;

/// What the Python threads have done so far.
pub struct Progress {
    pub requests: u64,
    pub oldest_running: Option<RunningRequest>,
}

/// The request that has been running longest.
pub struct RunningRequest {
    /// When a Python thread took it.
    pub started: Instant,
    /// Method and target, for the master's log line if it times out.
    pub label: String,
}

/// When a worker asks to retire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetirementPolicy {
    /// `--max-requests` plus this worker's draw of `--max-requests-jitter`.
    max_requests: Option<u64>,
    max_resident_bytes: Option<u64>,
}

impl RetirementPolicy {
    /// `0` turns either limit off. The jitter is drawn here, once per worker, so that
    /// workers started together do not all retire together.
    pub fn new(max_requests: u64, jitter: u64, max_memory_mib: u64) -> RetirementPolicy {
        let max_requests =
            (max_requests > 0).then(|| max_requests.saturating_add(random_up_to(jitter)));
        let max_resident_bytes =
            (max_memory_mib > 0).then(|| max_memory_mib.saturating_mul(BYTES_PER_MIB));
        RetirementPolicy {
            max_requests,
            max_resident_bytes,
        }
    }

    /// The request count this worker retires at, if any.
    pub fn max_requests(&self) -> Option<u64> {
        self.max_requests
    }

    fn retirement_due(&self, requests: u64, resident_bytes: Option<u64>) -> Option<Retirement> {
        if self.max_requests.is_some_and(|max| requests >= max) {
            return Some(Retirement::MaxRequests);
        }
        match (self.max_resident_bytes, resident_bytes) {
            (Some(limit), Some(resident)) if resident > limit => Some(Retirement::Memory),
            _ => None,
        }
    }
}

/// Reports to `slot` until the runtime stops; `progress` samples the Python threads.
pub async fn report(
    slot: WorkerSlot,
    mut progress: impl FnMut() -> Progress,
    policy: RetirementPolicy,
) {
    let memory = match policy.max_resident_bytes {
        Some(_) => ResidentMemory::open()
            .map_err(|error| {
                log::error!("--max-worker-memory: cannot read /proc/self/statm: {error}")
            })
            .ok(),
        None => None,
    };
    let mut ticks = tokio::time::interval(REPORT_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut asked = false;
    loop {
        ticks.tick().await;
        let progress = progress();
        let now = Instant::now();
        let now_ns = monotonic_ns();
        let oldest = progress.oldest_running.as_ref().map(|request| {
            (
                monotonic_ns_at(request.started, now, now_ns),
                request.label.as_str(),
            )
        });
        slot.beat(now_ns, progress.requests, oldest);
        if asked {
            continue;
        }
        let resident = memory.as_ref().and_then(ResidentMemory::bytes);
        if let Some(why) = policy.retirement_due(progress.requests, resident) {
            asked = true;
            slot.ask_retirement(why);
            match why {
                Retirement::MaxRequests => log::info!(
                    "Retiring after {} requests (--max-requests); serving until a replacement accepts",
                    progress.requests
                ),
                Retirement::Memory => log::warn!(
                    "Retiring: resident memory {} MiB is over --max-worker-memory {} MiB; \
                     serving until a replacement accepts",
                    resident.unwrap_or(0) / BYTES_PER_MIB,
                    policy.max_resident_bytes.unwrap_or(0) / BYTES_PER_MIB
                ),
            }
        }
    }
}

/// This process's resident set size, read from /proc/self/statm: one `pread` on a file
/// opened once, so a look costs one syscall.
struct ResidentMemory {
    statm: File,
    page_bytes: u64,
}

impl ResidentMemory {
    fn open() -> io::Result<ResidentMemory> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Ok(ResidentMemory {
            statm: File::open("/proc/self/statm")?,
            page_bytes: u64::try_from(page).unwrap_or(4096),
        })
    }

    fn bytes(&self) -> Option<u64> {
        let mut buffer = [0u8; 128];
        let read = self.statm.read_at(&mut buffer, 0).ok()?;
        resident_pages(&buffer[..read]).map(|pages| pages.saturating_mul(self.page_bytes))
    }
}

/// The second field of /proc/PID/statm: resident pages.
fn resident_pages(statm: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(statm).ok()?;
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// A random number from 0 to `max` (inclusive); 0 when `max` is 0.
fn random_up_to(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    // SAFETY: the buffer is valid for its length; getrandom writes at most that much.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    let random = if filled == 8 {
        u64::from_ne_bytes(bytes)
    } else {
        // Without getrandom (very old kernels) the pid and the clock still differ per worker.
        u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ monotonic_ns()
    };
    random % max.saturating_add(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_gives_resident_pages() {
        assert_eq!(resident_pages(b"10873 3921 1930 1 0 1535 0\n"), Some(3921));
        assert_eq!(resident_pages(b"garbage"), None);
        let memory = ResidentMemory::open().unwrap();
        assert!(memory.bytes().unwrap() > 0);
    }

    #[test]
    fn max_requests_with_jitter_stays_within_its_range() {
        for _ in 0..200 {
            let max = RetirementPolicy::new(50, 10, 0).max_requests().unwrap();
            assert!((50..=60).contains(&max), "{max}");
        }
        assert_eq!(RetirementPolicy::new(50, 0, 0).max_requests(), Some(50));
        assert_eq!(
            RetirementPolicy::new(0, 10, 0).max_requests(),
            None,
            "0 turns it off"
        );
    }

    #[test]
    fn retirement_is_due_at_the_request_count_or_over_the_memory_limit() {
        let policy = RetirementPolicy::new(3, 0, 64);
        assert_eq!(policy.retirement_due(2, Some(10 * BYTES_PER_MIB)), None);
        assert_eq!(
            policy.retirement_due(3, None),
            Some(Retirement::MaxRequests)
        );
        assert_eq!(
            policy.retirement_due(0, Some(64 * BYTES_PER_MIB)),
            None,
            "at the limit"
        );
        assert_eq!(
            policy.retirement_due(0, Some(64 * BYTES_PER_MIB + 1)),
            Some(Retirement::Memory)
        );
        let off = RetirementPolicy::new(0, 0, 0);
        assert_eq!(off.retirement_due(u64::MAX, Some(u64::MAX)), None);
    }
}
