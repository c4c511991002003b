//! Where upstream health, counts and the balancer's counters live: a small file in /dev/shm mapped `MAP_SHARED` by
//! every worker of the host, one `State` (atomics) per upstream after a one-page header;
//! zeros are "in rotation, never probed, nothing counted", so a new file needs no
//! initialisation beyond its header. The name comes from the caller (the master's pid, the
//! layer's number, a hash of its upstreams) within the rate limit's table namespace, so the
//! master's `remove_tables` removes it at exit with the rest. Without /dev/shm the state is
//! this process's own.
//!
//! The header makes a file self-describing for the master's `/metrics` (metrics.rs), which
//! imports no app: a magic word with the upstream count, the round-robin turn, then the
//! labels (the mount prefix and the upstream names, one a line) stored as atomic words, as
//! every other byte here.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use memmap2::MmapRaw;

use crate::middleware::rate_limit::{monotonic_ns, TableName};

/// `down_until` for "out until probes say otherwise".
pub const UNTIL_PROBED: u64 = u64::MAX;

/// Worker slots that count their requests in flight in a column of their own, so that a
/// worker killed mid-request leaves no count behind: the next worker in its slot takes the
/// column over and takes its leftover off the total. Workers in higher slots count in the
/// total only.
pub const SLOT_COLUMNS: usize = 64;

/// This worker's slot (the master's numbering of its workers); `usize::MAX`: none (the
/// master, or another server's worker).
static WORKER_SLOT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Set in a worker as it starts, before it serves: its slot is its predecessor's, who is
/// gone (a slot is given again only after its worker was reaped).
pub fn set_worker_slot(index: usize) {
    WORKER_SLOT.store(index, Ordering::Relaxed);
}

/// One worker slot's share of an upstream's requests in flight.
#[repr(C)]
#[derive(Default)]
pub struct SlotCount {
    /// The process counting here; another pid found here is a predecessor's leftover.
    pub pid: AtomicU32,
    pub in_flight: AtomicU32,
}

/// One upstream's health and counts.
#[repr(C)]
pub struct State {
    /// Failures in a row.
    pub fails: AtomicU64,
    /// Successful probes in a row.
    pub passes: AtomicU64,
    /// CLOCK_MONOTONIC ns until which it is out; 0: in; `UNTIL_PROBED`: until probes pass.
    pub down_until: AtomicU64,
    /// When a worker last claimed the probe (CLOCK_MONOTONIC ns).
    pub last_probe: AtomicU64,
    /// Requests sent to it (each attempt: a retry counts at every upstream it tried).
    pub requests: AtomicU64,
    /// Attempts that got no response head: refused, reset, TLS refused, timed out.
    pub failures: AtomicU64,
    /// Requests in progress at it, by every worker (least_conn).
    pub in_flight: AtomicU64,
    /// The same, per worker slot (`SLOT_COLUMNS`).
    pub by_slot: [SlotCount; SLOT_COLUMNS],
}

impl Default for State {
    fn default() -> State {
        State {
            fails: AtomicU64::default(),
            passes: AtomicU64::default(),
            down_until: AtomicU64::default(),
            last_probe: AtomicU64::default(),
            requests: AtomicU64::default(),
            failures: AtomicU64::default(),
            in_flight: AtomicU64::default(),
            by_slot: std::array::from_fn(|_| SlotCount::default()),
        }
    }
}

impl State {
    /// In rotation: never out, or its back-off is over (CLOCK_MONOTONIC is the host's, so
    /// any process may ask).
    pub fn is_up(&self) -> bool {
        let until = self.down_until.load(Ordering::Relaxed);
        until == 0 || (until != UNTIL_PROBED && monotonic_ns() >= until)
    }
}

const STATE_BYTES: usize = std::mem::size_of::<State>();

/// "FFH" and a format version; a file of another format is never read as this one.
const MAGIC: u32 = u32::from_le_bytes(*b"FFH\x03");

/// One page: the States after it stay aligned.
const HEADER_BYTES: usize = 4096;

/// Header words: [0] = count << 32 | MAGIC, [1] = labels length in bytes, [2] = the
/// round-robin turn, then the labels, then the openers: the pid of the worker in each slot
/// that opened the table, so the master's /metrics can leave out a table only workers gone
/// since (a SIGHUP reload that changed the upstreams) opened.
const TURN_WORD: usize = 2;
const LABEL_WORDS_START: usize = 3;
const OPENER_WORDS_START: usize = HEADER_BYTES / 8 - SLOT_COLUMNS;
const LABEL_BYTES: usize = (OPENER_WORDS_START - LABEL_WORDS_START) * 8;

pub enum HealthTable {
    Local { states: Vec<State>, turn: AtomicU64 },
    Shared { map: MmapRaw, count: usize },
}

impl HealthTable {
    pub fn open(count: usize, shared: Option<&TableName>) -> HealthTable {
        let Some(name) = shared else {
            return HealthTable::local(count);
        };
        match map(name.path().as_path(), Some(count)) {
            Ok((map, count)) => {
                let slot = WORKER_SLOT.load(Ordering::Relaxed);
                if slot < SLOT_COLUMNS {
                    Self::word(&map, OPENER_WORDS_START + slot)
                        .store(u64::from(std::process::id()), Ordering::Relaxed);
                }
                HealthTable::Shared { map, count }
            }
            Err(error) => {
                log::warn!(
                    "Forward: cannot share upstream health in {} ({error}); keeping it per process",
                    name.path().display()
                );
                HealthTable::local(count)
            }
        }
    }

    /// An existing table, for reading (the master's metrics): never created or resized.
    pub fn open_existing(path: &Path) -> std::io::Result<HealthTable> {
        let (map, count) = map(path, None)?;
        Ok(HealthTable::Shared { map, count })
    }

    pub fn local(count: usize) -> HealthTable {
        HealthTable::Local {
            states: (0..count).map(|_| State::default()).collect(),
            turn: AtomicU64::new(0),
        }
    }

    pub fn count(&self) -> usize {
        match self {
            HealthTable::Local { states, .. } => states.len(),
            HealthTable::Shared { count, .. } => *count,
        }
    }

    /// The round-robin position (in weight units), shared by the workers as the states are.
    pub fn turn(&self) -> &AtomicU64 {
        match self {
            HealthTable::Local { turn, .. } => turn,
            HealthTable::Shared { map, .. } => Self::word(map, TURN_WORD),
        }
    }

    pub fn state(&self, index: usize) -> &State {
        match self {
            HealthTable::Local { states, .. } => &states[index],
            HealthTable::Shared { map, count } => {
                assert!(index < *count, "upstream index out of the table");
                // SAFETY: `map` holds the header and at least `count` States (checked in
                // `map`), is page-aligned and HEADER_BYTES is a page, so each State
                // (8-aligned) is aligned; it lives as long as `self` and is never shrunk
                // (files only grow from 0, under a lock). Every byte is only accessed through
                // atomics, here and in the other processes.
                unsafe {
                    &*map
                        .as_ptr()
                        .add(HEADER_BYTES + index * STATE_BYTES)
                        .cast::<State>()
                }
            }
        }
    }

    /// The column this process counts its requests in flight in, taken over from a
    /// predecessor in its slot whose leftover comes off each upstream's total; `None` when
    /// the table is this process's own or the process has no column. Once per process and
    /// table (the caller keeps the answer): a second call finds the column its own.
    pub fn claim_column(&self) -> Option<usize> {
        let HealthTable::Shared { count, .. } = self else {
            return None;
        };
        let column = WORKER_SLOT.load(Ordering::Relaxed);
        if column >= SLOT_COLUMNS {
            return None;
        }
        let pid = std::process::id();
        for index in 0..*count {
            let state = self.state(index);
            let slot = &state.by_slot[column];
            if slot.pid.swap(pid, Ordering::Relaxed) != pid {
                let left = slot.in_flight.swap(0, Ordering::Relaxed);
                if left > 0 {
                    state
                        .in_flight
                        .fetch_sub(u64::from(left), Ordering::Relaxed);
                }
            }
        }
        Some(column)
    }

    /// Header word `index` of a shared table.
    fn word(map: &MmapRaw, index: usize) -> &AtomicU64 {
        assert!(index < HEADER_BYTES / 8, "header word out of the header");
        // SAFETY: as in `state`: the header is in the mapping, page-aligned, only accessed
        // through atomics.
        unsafe { &*map.as_ptr().add(index * 8).cast::<AtomicU64>() }
    }

    /// Writes the labels (`prefix\nname\nname...`, cut to the header's room). Every worker
    /// writes the same text; a reader checks the line count, so a torn read is skipped.
    pub fn set_labels(&self, text: &str) {
        let HealthTable::Shared { map, .. } = self else {
            return;
        };
        let bytes = &text.as_bytes()[..text.len().min(LABEL_BYTES)];
        for (index, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            Self::word(map, LABEL_WORDS_START + index)
                .store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
        Self::word(map, 1).store(bytes.len() as u64, Ordering::Release);
    }

    /// The pids of the workers that opened the table, one per slot (the last in each); none
    /// when only processes without a slot did (the master, with `--preload`).
    pub fn openers(&self) -> Vec<u32> {
        let HealthTable::Shared { map, .. } = self else {
            return Vec::new();
        };
        (0..SLOT_COLUMNS)
            .map(|slot| Self::word(map, OPENER_WORDS_START + slot).load(Ordering::Relaxed) as u32)
            .filter(|&pid| pid != 0)
            .collect()
    }

    /// Whether labels were written yet (by any worker).
    pub fn has_labels(&self) -> bool {
        match self {
            HealthTable::Local { .. } => true,
            HealthTable::Shared { map, .. } => Self::word(map, 1).load(Ordering::Acquire) != 0,
        }
    }

    /// The labels' text (empty for a local table or one not labelled yet).
    pub fn labels(&self) -> String {
        let HealthTable::Shared { map, .. } = self else {
            return String::new();
        };
        let length = (Self::word(map, 1).load(Ordering::Acquire) as usize).min(LABEL_BYTES);
        let mut bytes = Vec::with_capacity(length + 8);
        for index in 0..length.div_ceil(8) {
            let word = Self::word(map, LABEL_WORDS_START + index).load(Ordering::Relaxed);
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.truncate(length);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Maps the table at `path`: with `create` (the upstream count), made and given its header
/// if new; without, it must exist. Returns the mapping and the upstream count.
fn map(path: &Path, create: Option<usize>) -> std::io::Result<(MmapRaw, usize)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create.is_some())
        // Never truncate: other workers may have it mapped.
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    // SAFETY: flock on a descriptor `file` owns for the call; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mapped = size_and_map(&file, create);
    // Unlocked explicitly: the mapping keeps the open file (and so a flock) alive after
    // `file` is closed, which would block the next worker for good.
    // SAFETY: as above.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    mapped
}

/// Gives a new (empty) file its size and header and maps it; an existing one must have this
/// format's header and be as large as it says (and hold `create` upstreams, if given).
fn size_and_map(file: &std::fs::File, create: Option<usize>) -> std::io::Result<(MmapRaw, usize)> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let bytes = |count: usize| (HEADER_BYTES + count * STATE_BYTES) as u64;
    let length = file.metadata()?.len();
    let new = length == 0;
    match create {
        Some(count) if new => file.set_len(bytes(count))?,
        None if new => return Err(invalid("an empty table".into())),
        _ => {}
    }
    let map = MmapRaw::map_raw(file)?;
    let header = HealthTable::word(&map, 0);
    if new {
        let count = create.unwrap_or_default();
        header.store((count as u64) << 32 | u64::from(MAGIC), Ordering::Release);
    }
    let word = header.load(Ordering::Acquire);
    let count = (word >> 32) as usize;
    if word as u32 != MAGIC {
        return Err(invalid(
            "not an upstream table of this ferrogate version".into(),
        ));
    }
    if (map.len() as u64) < bytes(count) || create.is_some_and(|wanted| wanted > count) {
        return Err(invalid(format!(
            "it holds {} bytes for {count} upstreams, not {}",
            map.len(),
            create.unwrap_or(count)
        )));
    }
    Ok((map, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_written_by_one_process_are_read_by_another_mapping() {
        let name = TableName::new(&format!("test-{}-forward-labels", std::process::id()));
        let writer = HealthTable::open(2, Some(&name));
        assert!(!writer.has_labels());
        writer.set_labels("/search\nhttp://a:1\nhttps://b:2");
        writer.state(1).requests.fetch_add(3, Ordering::Relaxed);
        let reader = HealthTable::open_existing(&name.path()).expect("open");
        assert_eq!(reader.count(), 2);
        assert_eq!(reader.labels(), "/search\nhttp://a:1\nhttps://b:2");
        assert_eq!(reader.state(1).requests.load(Ordering::Relaxed), 3);
        let _ = std::fs::remove_file(name.path());
    }

    #[test]
    fn a_missing_or_foreign_table_is_not_read() {
        let name = TableName::new(&format!("test-{}-forward-foreign", std::process::id()));
        assert!(HealthTable::open_existing(&name.path()).is_err());
        std::fs::write(name.path(), vec![7u8; HEADER_BYTES + STATE_BYTES]).unwrap();
        assert!(HealthTable::open_existing(&name.path()).is_err());
        let _ = std::fs::remove_file(name.path());
    }

    #[test]
    fn labels_longer_than_the_header_are_cut() {
        let name = TableName::new(&format!("test-{}-forward-long", std::process::id()));
        let table = HealthTable::open(1, Some(&name));
        table.set_labels(&"x".repeat(LABEL_BYTES + 100));
        assert_eq!(table.labels().len(), LABEL_BYTES);
        let _ = std::fs::remove_file(name.path());
    }
}
