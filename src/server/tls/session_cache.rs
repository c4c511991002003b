//! The TLS session cache every worker reads: stateful resumption (TLS 1.2 session ids, for
//! clients that send no ticket) in an anonymous shared mapping the master makes before it
//! forks, so a session begun on one worker resumes on whichever worker takes the next
//! connection. rustls' default cache is a map in each process's own memory.
//!
//! The cache is direct-mapped: a session id picks one slot, and a new session there replaces
//! the old one (session ids are random, so this is random eviction). Each slot is a seqlock:
//! a writer that finds it taken gives up (the session is then not cached: one more full
//! handshake later), and a reader that sees it change gives up (a miss). Nobody waits, so a
//! worker killed mid-write costs one slot, never a stuck handshake. Knows nothing of HTTP.

use std::io;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::server::StoresServerSessions;

use crate::shared_slots::{SharedSlots, ZeroedAtomics};

/// Slots in the cache. rustls' per-process default is 256 sessions; shared by every worker,
/// the cache holds the sessions of all of them. Pages are touched as slots fill, so an idle
/// cache costs no memory (4 MiB when full).
pub const SESSION_CACHE_SLOTS: usize = 4096;

/// The longest session id kept (TLS 1.2 session ids are at most 32 bytes, RFC 5246 §7.4.1.2).
const KEY_BYTES: usize = 32;

/// The longest encoded session kept: a session without a client certificate encodes to about
/// 150 bytes; one with a client certificate chain may not fit and is then not cached (its
/// client does a full handshake next time, as without a cache).
pub const SESSION_VALUE_BYTES: usize = 960;

/// How long a cached session may be resumed: as long as a ticket (`tickets.rs`).
const SESSION_LIFETIME_SECS: u64 = 2 * super::tickets::TICKET_KEY_PERIOD_SECS;

/// One cached session. `repr(C)` and only atomics, so that zeroed memory is an empty slot and
/// every process maps the same layout (one binary).
#[repr(C, align(64))]
struct Slot {
    /// Odd while a writer fills the slot.
    seq: AtomicU32,
    key_len: AtomicU32,
    value_len: AtomicU32,
    /// Unix seconds at which the session was stored; 0: empty.
    stored_at: AtomicU64,
    key: [AtomicU8; KEY_BYTES],
    value: [AtomicU8; SESSION_VALUE_BYTES],
}

// SAFETY: `repr(C)`, atomics only: zeroed bytes are an empty slot (`stored_at` 0).
unsafe impl ZeroedAtomics for Slot {}

/// An anonymous shared mapping of `SESSION_CACHE_SLOTS` slots.
pub struct SharedSessionCache {
    slots: SharedSlots<Slot>,
}

impl std::fmt::Debug for SharedSessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSessionCache")
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1)
}

/// FNV-1a: session ids are random, so any mixing spreads them; cheap next to a handshake.
fn slot_index(key: &[u8]) -> usize {
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % SESSION_CACHE_SLOTS as u64) as usize
}

impl SharedSessionCache {
    pub fn new() -> io::Result<SharedSessionCache> {
        Ok(SharedSessionCache {
            slots: SharedSlots::new(SESSION_CACHE_SLOTS)?,
        })
    }

    fn slot(&self, key: &[u8]) -> &Slot {
        self.slots
            .get(slot_index(key))
            .expect("invariant: slot_index is below SESSION_CACHE_SLOTS")
    }

    /// Runs `write` on the slot for `key` if no other writer holds it.
    fn write(&self, key: &[u8], write: impl FnOnce(&Slot)) -> bool {
        let slot = self.slot(key);
        let seq = slot.seq.load(Ordering::Relaxed);
        if seq % 2 == 1
            || slot
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        fence(Ordering::Release);
        write(slot);
        slot.seq.store(seq + 2, Ordering::Release);
        true
    }

    /// The fresh session stored under `key`, read without a lock (`None` if a writer was
    /// busy with the slot meanwhile).
    fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        let slot = self.slot(key);
        let before = slot.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        let found = holds(slot, key).then(|| copy_value(slot));
        fence(Ordering::Acquire);
        if slot.seq.load(Ordering::Relaxed) != before {
            return None;
        }
        found.flatten()
    }
}

/// Whether `slot` holds a fresh session for `key` (the caller checks the seqlock).
fn holds(slot: &Slot, key: &[u8]) -> bool {
    let stored_at = slot.stored_at.load(Ordering::Relaxed);
    stored_at != 0
        && now_secs().saturating_sub(stored_at) <= SESSION_LIFETIME_SECS
        && slot.key_len.load(Ordering::Relaxed) as usize == key.len()
        && key
            .iter()
            .zip(&slot.key)
            .all(|(byte, stored)| stored.load(Ordering::Relaxed) == *byte)
}

/// The slot's value; `None` if a torn read gave a length out of bounds.
fn copy_value(slot: &Slot) -> Option<Vec<u8>> {
    let length = slot.value_len.load(Ordering::Relaxed) as usize;
    let value = slot.value.get(..length)?;
    Some(value.iter().map(|b| b.load(Ordering::Relaxed)).collect())
}

fn store(slot: &Slot, key: &[u8], value: &[u8]) {
    for (stored, byte) in slot.key.iter().zip(key) {
        stored.store(*byte, Ordering::Relaxed);
    }
    for (stored, byte) in slot.value.iter().zip(value) {
        stored.store(*byte, Ordering::Relaxed);
    }
    slot.key_len.store(key.len() as u32, Ordering::Relaxed);
    slot.value_len.store(value.len() as u32, Ordering::Relaxed);
    slot.stored_at.store(now_secs(), Ordering::Relaxed);
}

impl StoresServerSessions for SharedSessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if key.len() > KEY_BYTES || value.len() > SESSION_VALUE_BYTES {
            return false;
        }
        self.write(&key, |slot| store(slot, &key, &value))
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.read(key)
    }

    /// Single-use sessions (rustls asks for it for TLS 1.3 stateful tickets, which it issues
    /// only when tickets are off): read and emptied under the slot's lock.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut taken = None;
        self.write(key, |slot| {
            if holds(slot, key) {
                taken = copy_value(slot);
                slot.stored_at.store(0, Ordering::Relaxed);
            }
        });
        taken
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_id(n: u8) -> Vec<u8> {
        (0..32)
            .map(|i| n.wrapping_mul(31).wrapping_add(i))
            .collect()
    }

    #[test]
    fn a_session_stored_by_one_process_is_read_by_another() {
        let cache = SharedSessionCache::new().unwrap();
        // SAFETY: the child only touches the shared mapping and exits with _exit.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let stored = cache.put(session_id(1), b"session one".to_vec());
            // SAFETY: ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(if stored { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert_eq!(status, 0);
        assert_eq!(cache.get(&session_id(1)).unwrap(), b"session one");
    }

    #[test]
    fn values_at_the_slot_size_are_kept_and_over_it_are_not() {
        let cache = SharedSessionCache::new().unwrap();
        assert!(cache.put(session_id(1), vec![1; SESSION_VALUE_BYTES - 1]));
        assert!(cache.put(session_id(2), vec![2; SESSION_VALUE_BYTES]));
        assert!(!cache.put(session_id(3), vec![3; SESSION_VALUE_BYTES + 1]));
        assert_eq!(
            cache.get(&session_id(2)).unwrap().len(),
            SESSION_VALUE_BYTES
        );
        assert!(cache.get(&session_id(3)).is_none());
        assert!(!cache.put(vec![0; KEY_BYTES + 1], vec![1]));
    }

    #[test]
    fn another_key_in_the_same_slot_misses_and_replaces() {
        let cache = SharedSessionCache::new().unwrap();
        let first = session_id(1);
        let index = slot_index(&first);
        let second = (2..=u8::MAX)
            .flat_map(|a| (0..=u8::MAX).map(move |b| vec![a, b]))
            .find(|key| slot_index(key) == index)
            .unwrap();
        assert!(cache.put(first.clone(), b"one".to_vec()));
        assert!(cache.get(&second).is_none());
        assert!(cache.put(second.clone(), b"two".to_vec()));
        assert!(cache.get(&first).is_none());
        assert_eq!(cache.get(&second).unwrap(), b"two");
    }

    #[test]
    fn take_returns_a_session_once() {
        let cache = SharedSessionCache::new().unwrap();
        assert!(cache.put(session_id(4), b"once".to_vec()));
        assert_eq!(cache.take(&session_id(4)).unwrap(), b"once");
        assert!(cache.take(&session_id(4)).is_none());
        assert!(cache.get(&session_id(4)).is_none());
    }

    #[test]
    fn a_slot_being_written_is_skipped_not_waited_for() {
        let cache = SharedSessionCache::new().unwrap();
        assert!(cache.put(session_id(5), b"five".to_vec()));
        let slot = cache.slot(&session_id(5));
        slot.seq.fetch_add(1, Ordering::AcqRel); // a writer died here
        assert!(cache.get(&session_id(5)).is_none());
        assert!(!cache.put(session_id(5), b"new".to_vec()));
    }

    #[test]
    fn an_expired_session_is_not_resumed() {
        let cache = SharedSessionCache::new().unwrap();
        assert!(cache.put(session_id(6), b"old".to_vec()));
        let slot = cache.slot(&session_id(6));
        let stored_at = slot.stored_at.load(Ordering::Relaxed);
        // A few seconds either side of the lifetime, so a clock tick cannot flip the answer.
        slot.stored_at
            .store(stored_at - SESSION_LIFETIME_SECS + 5, Ordering::Relaxed);
        assert!(cache.get(&session_id(6)).is_some());
        slot.stored_at
            .store(stored_at - SESSION_LIFETIME_SECS - 5, Ordering::Relaxed);
        assert!(cache.get(&session_id(6)).is_none());
    }
}
