//! Where upstream health lives: a small file in /dev/shm mapped `MAP_SHARED` by every worker
//! of the host, one `State` (four atomics) per upstream; zeros are "in rotation, never
//! probed", so a new file needs no initialisation. The name comes from the caller (the
//! master's pid, the layer's number, a hash of its upstreams) within the rate limit's table
//! namespace, so the master's `remove_tables` removes it at exit with the rest. Without
//! /dev/shm the state is this process's own.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::AtomicU64;

use memmap2::MmapRaw;

use crate::middleware::rate_limit::TableName;

/// One upstream's health.
#[repr(C)]
#[derive(Default)]
pub struct State {
    /// Failures in a row.
    pub fails: AtomicU64,
    /// Successful probes in a row.
    pub passes: AtomicU64,
    /// CLOCK_MONOTONIC ns until which it is out; 0: in; `u64::MAX`: until probes pass.
    pub down_until: AtomicU64,
    /// When a worker last claimed the probe (CLOCK_MONOTONIC ns).
    pub last_probe: AtomicU64,
}

const STATE_BYTES: usize = std::mem::size_of::<State>();

pub enum HealthTable {
    Local(Vec<State>),
    Shared { map: MmapRaw, count: usize },
}

impl HealthTable {
    pub fn open(count: usize, shared: Option<&TableName>) -> HealthTable {
        let Some(name) = shared else {
            return HealthTable::local(count);
        };
        match map(name, count) {
            Ok(map) => HealthTable::Shared { map, count },
            Err(error) => {
                log::warn!(
                    "Forward: cannot share upstream health in {} ({error}); keeping it per process",
                    name.path().display()
                );
                HealthTable::local(count)
            }
        }
    }

    fn local(count: usize) -> HealthTable {
        HealthTable::Local((0..count).map(|_| State::default()).collect())
    }

    pub fn state(&self, index: usize) -> &State {
        match self {
            HealthTable::Local(states) => &states[index],
            HealthTable::Shared { map, count } => {
                assert!(index < *count, "upstream index out of the table");
                // SAFETY: `map` holds at least `count` States (checked in `map`), is
                // page-aligned so each State (8-aligned, 32 bytes) is aligned, lives as long
                // as `self` and is never shrunk (files only grow from 0, under a lock). Every
                // byte is only accessed through atomics, here and in the other processes.
                unsafe { &*map.as_ptr().add(index * STATE_BYTES).cast::<State>() }
            }
        }
    }
}

fn map(name: &TableName, count: usize) -> std::io::Result<MmapRaw> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // Never truncate: other workers may have it mapped.
        .truncate(false)
        .mode(0o600)
        .open(name.path())?;
    let wanted = (count * STATE_BYTES) as u64;
    // SAFETY: flock on a descriptor `file` owns for the call; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mapped = size_and_map(&file, wanted);
    // Unlocked explicitly: the mapping keeps the open file (and so a flock) alive after
    // `file` is closed, which would block the next worker for good.
    // SAFETY: as above.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    mapped
}

/// Gives a new (empty) file its size and maps it; an existing one must be large enough.
fn size_and_map(file: &std::fs::File, wanted: u64) -> std::io::Result<MmapRaw> {
    let length = file.metadata()?.len();
    if length == 0 {
        file.set_len(wanted)?;
    } else if length < wanted {
        return Err(std::io::Error::other(format!(
            "it holds {length} bytes, not {wanted}"
        )));
    }
    MmapRaw::map_raw(file)
}
