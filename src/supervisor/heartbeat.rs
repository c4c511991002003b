//! The heartbeat slots: one per worker, in an anonymous shared mapping the master makes
//! before it forks anything, so that a worker reports to the master without a syscall or a
//! file write: whether it accepts connections yet, whether it asks to retire, when its I/O
//! loop last ran, and its oldest request still running (when it started, and its method and
//! target, for the master's log line).
//!
//! Every field is an atomic, written by the worker that owns the slot and read by the
//! master: the master clears a slot before it forks the worker that gets it, and takes it
//! back only once that worker has been reaped. The worker's side is `report.rs`, the
//! master's `master.rs` and `watchdog.rs`. Knows nothing of HTTP or Python.

use std::io;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shared_slots::{SharedSlots, ZeroedAtomics};

/// Bytes of the oldest running request's description kept in a slot ("GET /path?query");
/// longer ones are cut (at a character boundary). Enough to tell a request in a log line.
pub const REQUEST_LABEL_BYTES: usize = 112;

/// Why a worker asks to retire: a planned exit, after a replacement accepts in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retirement {
    /// It served `--max-requests` (plus its jitter).
    MaxRequests,
    /// Its resident memory grew over `--max-worker-memory`.
    Memory,
}

impl Retirement {
    fn code(self) -> u32 {
        match self {
            Retirement::MaxRequests => 1,
            Retirement::Memory => 2,
        }
    }

    fn from_code(code: u32) -> Option<Retirement> {
        match code {
            1 => Some(Retirement::MaxRequests),
            2 => Some(Retirement::Memory),
            _ => None,
        }
    }

    pub fn setting(self) -> &'static str {
        match self {
            Retirement::MaxRequests => "--max-requests",
            Retirement::Memory => "--max-worker-memory",
        }
    }
}

const PHASE_BOOTING: u32 = 0;
const PHASE_ACCEPTING: u32 = 1;

/// One worker's slot. `repr(C)` and only atomics, so that any bytes (zeroes after `mmap`
/// and `clear`) are a valid value, and both processes agree on the layout (same binary).
#[repr(C, align(64))]
struct Slot {
    /// `PHASE_*`: set once the worker has loaded the app and its accept loops run.
    phase: AtomicU32,
    /// `Retirement::code`, or 0.
    retirement: AtomicU32,
    /// CLOCK_MONOTONIC nanoseconds of the I/O loop's last report; 0 before the first.
    io_beat_ns: AtomicU64,
    /// Requests the worker's Python threads have taken so far.
    requests: AtomicU64,
    /// Seqlock over `oldest_since_ns`, `label_len` and `label`: odd while they are written.
    oldest_seq: AtomicU32,
    label_len: AtomicU32,
    /// CLOCK_MONOTONIC nanoseconds at which the oldest request still running started; 0 when
    /// none runs.
    oldest_since_ns: AtomicU64,
    label: [AtomicU8; REQUEST_LABEL_BYTES],
}

impl Slot {
    fn clear(&self) {
        self.phase.store(PHASE_BOOTING, Ordering::Relaxed);
        self.retirement.store(0, Ordering::Relaxed);
        self.io_beat_ns.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
        self.oldest_seq.store(0, Ordering::Relaxed);
        self.label_len.store(0, Ordering::Relaxed);
        self.oldest_since_ns.store(0, Ordering::Relaxed);
        for byte in &self.label {
            byte.store(0, Ordering::Relaxed);
        }
        // The fork that follows carries these stores to the child; the fence orders them
        // before anything the master reads from the slot later.
        fence(Ordering::SeqCst);
    }
}

// SAFETY: `repr(C)`, atomics only: zeroed bytes are a slot never used (see `Slot`).
unsafe impl ZeroedAtomics for Slot {}

type Mapping = SharedSlots<Slot>;

/// The master's side: all the slots, and which are taken.
pub struct Heartbeats {
    mapping: Arc<Mapping>,
    taken: Vec<bool>,
}

impl Heartbeats {
    /// Maps `capacity` slots; do this before forking the first worker.
    pub fn new(capacity: usize) -> io::Result<Heartbeats> {
        let mapping = Mapping::new(capacity)?;
        let taken = vec![false; mapping.capacity()];
        Ok(Heartbeats {
            mapping: Arc::new(mapping),
            taken,
        })
    }

    pub fn capacity(&self) -> usize {
        self.taken.len()
    }

    /// A cleared slot for the worker about to be forked; `None` when all are taken.
    pub fn claim(&mut self) -> Option<WorkerSlot> {
        let index = self.taken.iter().position(|taken| !taken)?;
        self.taken[index] = true;
        let slot = WorkerSlot {
            mapping: self.mapping.clone(),
            index,
        };
        slot.slot().clear();
        Some(slot)
    }

    /// Gives a reaped worker's slot back.
    pub fn release(&mut self, slot: &WorkerSlot) {
        if let Some(taken) = self.taken.get_mut(slot.index) {
            *taken = false;
        }
    }
}

/// What the master reads of one slot on each tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotReading {
    pub accepting: bool,
    pub retirement: Option<Retirement>,
    /// When the I/O loop last reported (CLOCK_MONOTONIC ns); `None` before its first report.
    pub io_beat_ns: Option<u64>,
    pub requests: u64,
    /// When the oldest request still running started (CLOCK_MONOTONIC ns).
    pub oldest_since_ns: Option<u64>,
}

/// One worker's slot: the worker writes it (from its I/O loop), the master reads it.
#[derive(Clone)]
pub struct WorkerSlot {
    mapping: Arc<Mapping>,
    index: usize,
}

impl std::fmt::Debug for WorkerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerSlot({})", self.index)
    }
}

impl WorkerSlot {
    fn slot(&self) -> &Slot {
        self.mapping
            .get(self.index)
            .expect("invariant: slot index within the mapping")
    }

    /// The slot's place in the mapping (the worker's block in the metrics table too).
    pub fn index(&self) -> usize {
        self.index
    }

    // -- the worker's side ----------------------------------------------------------------

    /// The app is loaded and the accept loops run: the master may retire whoever this
    /// worker replaces.
    pub fn mark_accepting(&self) {
        self.slot().phase.store(PHASE_ACCEPTING, Ordering::Release);
    }

    /// Asks the master for a planned retirement (the first reason given stays).
    pub fn ask_retirement(&self, why: Retirement) {
        let _ = self.slot().retirement.compare_exchange(
            0,
            why.code(),
            Ordering::Release,
            Ordering::Relaxed,
        );
    }

    pub fn retirement_asked(&self) -> Option<Retirement> {
        Retirement::from_code(self.slot().retirement.load(Ordering::Acquire))
    }

    /// One report of the I/O loop: it ran at `now_ns`, the Python threads have taken
    /// `requests`, and `oldest` is the oldest request still running (started at, label).
    /// The label is rewritten only when the oldest request changes.
    pub fn beat(&self, now_ns: u64, requests: u64, oldest: Option<(u64, &str)>) {
        let slot = self.slot();
        slot.requests.store(requests, Ordering::Relaxed);
        let since_ns = oldest.map_or(0, |(since, _)| since.max(1));
        if slot.oldest_since_ns.load(Ordering::Relaxed) != since_ns {
            let label = oldest.map_or("", |(_, label)| label);
            self.write_oldest(since_ns, label);
        }
        slot.io_beat_ns.store(now_ns.max(1), Ordering::Release);
    }

    fn write_oldest(&self, since_ns: u64, label: &str) {
        let slot = self.slot();
        let seq = slot.oldest_seq.load(Ordering::Relaxed);
        slot.oldest_seq
            .store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let label = truncate_at_char(label, REQUEST_LABEL_BYTES);
        for (byte, stored) in label.bytes().zip(&slot.label) {
            stored.store(byte, Ordering::Relaxed);
        }
        slot.label_len.store(label.len() as u32, Ordering::Relaxed);
        slot.oldest_since_ns.store(since_ns, Ordering::Relaxed);
        slot.oldest_seq
            .store(seq.wrapping_add(2), Ordering::Release);
    }

    // -- the master's side ----------------------------------------------------------------

    pub fn read(&self) -> SlotReading {
        let slot = self.slot();
        let nonzero = |value: u64| (value != 0).then_some(value);
        SlotReading {
            accepting: slot.phase.load(Ordering::Acquire) == PHASE_ACCEPTING,
            retirement: Retirement::from_code(slot.retirement.load(Ordering::Acquire)),
            io_beat_ns: nonzero(slot.io_beat_ns.load(Ordering::Acquire)),
            requests: slot.requests.load(Ordering::Relaxed),
            oldest_since_ns: nonzero(slot.oldest_since_ns.load(Ordering::Acquire)),
        }
    }

    /// The oldest running request, consistently: (started at, label). `None` when none runs
    /// (or the worker keeps rewriting it, which a stuck worker does not).
    pub fn read_oldest(&self) -> Option<(u64, String)> {
        let slot = self.slot();
        for _ in 0..SEQLOCK_TRIES {
            let before = slot.oldest_seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let since_ns = slot.oldest_since_ns.load(Ordering::Relaxed);
            let len = (slot.label_len.load(Ordering::Relaxed) as usize).min(REQUEST_LABEL_BYTES);
            let bytes: Vec<u8> = slot.label[..len]
                .iter()
                .map(|byte| byte.load(Ordering::Relaxed))
                .collect();
            fence(Ordering::Acquire);
            if slot.oldest_seq.load(Ordering::Relaxed) == before {
                return (since_ns != 0)
                    .then(|| (since_ns, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
        None
    }
}

/// How often a reader retries a seqlock the writer is in the middle of.
const SEQLOCK_TRIES: usize = 1000;

fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// CLOCK_MONOTONIC in nanoseconds: the clock both processes read (the same one `Instant`
/// uses on Linux, so an `Instant` converts with `monotonic_ns_at`).
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-parameter; CLOCK_MONOTONIC always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
    }
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// `instant` on the CLOCK_MONOTONIC nanosecond scale, given a reading of both clocks now.
pub fn monotonic_ns_at(instant: Instant, now: Instant, now_ns: u64) -> u64 {
    let ago = now.saturating_duration_since(instant);
    now_ns.saturating_sub(ago.as_nanos().min(u128::from(u64::MAX)) as u64)
}

/// Nanoseconds as a `Duration`, for messages.
pub fn nanos(value: u64) -> Duration {
    Duration::from_nanos(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_slot_starts_clear_and_reports_what_its_worker_wrote() {
        let mut heartbeats = Heartbeats::new(2).unwrap();
        let slot = heartbeats.claim().unwrap();
        assert_eq!(
            slot.read(),
            SlotReading {
                accepting: false,
                retirement: None,
                io_beat_ns: None,
                requests: 0,
                oldest_since_ns: None
            }
        );
        slot.mark_accepting();
        slot.beat(1_000, 7, Some((900, "GET /slow?x=1")));
        let reading = slot.read();
        assert!(reading.accepting);
        assert_eq!(reading.io_beat_ns, Some(1_000));
        assert_eq!(reading.requests, 7);
        assert_eq!(reading.oldest_since_ns, Some(900));
        assert_eq!(slot.read_oldest(), Some((900, "GET /slow?x=1".to_string())));
        slot.beat(2_000, 8, None);
        assert_eq!(slot.read().oldest_since_ns, None);
        assert_eq!(slot.read_oldest(), None);
    }

    #[test]
    fn slots_are_reused_only_after_release_and_come_back_cleared() {
        let mut heartbeats = Heartbeats::new(1).unwrap();
        let slot = heartbeats.claim().unwrap();
        slot.ask_retirement(Retirement::Memory);
        slot.ask_retirement(Retirement::MaxRequests);
        assert_eq!(
            slot.retirement_asked(),
            Some(Retirement::Memory),
            "the first reason stays"
        );
        assert!(heartbeats.claim().is_none());
        heartbeats.release(&slot);
        let again = heartbeats.claim().unwrap();
        assert_eq!(again.read().retirement, None);
    }

    #[test]
    fn a_long_label_is_cut_at_a_character_boundary() {
        let mut heartbeats = Heartbeats::new(1).unwrap();
        let slot = heartbeats.claim().unwrap();
        let long = format!("GET /{}", "é".repeat(100));
        slot.beat(10, 1, Some((5, &long)));
        let (_, label) = slot.read_oldest().unwrap();
        assert!(label.len() <= REQUEST_LABEL_BYTES && long.starts_with(&label));
    }

    #[test]
    fn a_forked_child_writes_what_the_parent_reads() {
        let mut heartbeats = Heartbeats::new(1).unwrap();
        let slot = heartbeats.claim().unwrap();
        // SAFETY: the child only stores to atomics and calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            slot.mark_accepting();
            slot.beat(42, 3, Some((41, "POST /upload")));
            // SAFETY: _exit ends the child without running the test harness's destructors.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(slot.read().accepting);
        assert_eq!(slot.read_oldest(), Some((41, "POST /upload".to_string())));
    }

    #[test]
    fn instants_convert_to_the_monotonic_scale() {
        let now = Instant::now();
        let now_ns = monotonic_ns();
        let earlier = now - Duration::from_millis(250);
        assert_eq!(monotonic_ns_at(earlier, now, now_ns), now_ns - 250_000_000);
        assert_eq!(
            monotonic_ns_at(now + Duration::from_secs(1), now, now_ns),
            now_ns
        );
    }
}
