//! The counters: a fixed array of slots, each a key hash and that key's TAT, found by open
//! addressing with a bounded probe and updated lock-free by compare-and-swap. Owns the
//! probing, the eviction choice and the races it accepts; the slots may live on this
//! process's heap or in a shared mapping (`shm`), which this module does not open. Knows
//! the algorithm only through `Gcra::step`. Called by `Limiter::check` on every request:
//! no lock, no allocation, no syscall.
//!
//! # Races accepted
//! Key and TAT are two words, not one, so a slot can change hands between reading its key
//! and swapping its TAT. Every case costs at most one request's or one burst's accuracy,
//! mostly by allowing a little more; none lets a key through unboundedly:
//! - Two keys racing for one empty slot: the key word is claimed by compare-and-swap, so
//!   one wins; the loser sees the winner's key and probes on (or, if it is its own key,
//!   shares the slot). Nothing is lost.
//! - Two processes inserting the same new key into a full window may evict two different
//!   victims, leaving the key twice. Lookups scan in a fixed order and stop at the first,
//!   so after that one request every process uses the same slot; the duplicate ages out.
//! - A slot re-used while another process reads it: process A reads key `a` in a slot,
//!   process B evicts `a` for `b`, then A swaps the TAT believing it is `a`'s. A's one
//!   decision uses `b`'s TAT, and `b` is charged one emission interval for it. `a` has
//!   lost its history, which was already the eviction's doing.
//! - Eviction itself forgets a key's TAT. The victim is the slot with the oldest TAT in the
//!   window: a TAT at or before `now` holds nothing (it means "full burst"), and a TAT in
//!   the future holds at most τ of debt, so one eviction gives its key at most one extra
//!   burst. A throttled key has the newest TAT of its window and is evicted last. Sizing
//!   the table above the number of keys active in one burst window keeps evictions to
//!   idle keys; a flood of fresh keys (spoofed addresses) can only churn other fresh keys
//!   until it fills every slot of a window with debt.
//! - After `CLAIM_ATTEMPTS` lost races for a slot the request is decided as a fresh key's
//!   and not recorded (fail open): only reachable under contention no test has produced.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use super::gcra::{Decision, Gcra};
use super::shm::MappedSlots;

/// Bytes per slot in memory and in the shared file: the layout is part of the file format.
pub const SLOT_BYTES: usize = 16;

/// How many consecutive slots a key may occupy from its home slot. Eight 16-byte slots are
/// two cache lines: a miss costs at most that to scan, and a window of eight keeps a
/// half-full table almost free of evictions.
pub const PROBE_LIMIT: usize = 8;

/// How many times a request retries after losing the race for a slot before failing open.
const CLAIM_ATTEMPTS: usize = 4;

/// The key word of a slot nobody has claimed. Hashes are remapped away from it.
const EMPTY: u64 = 0;

/// Fixed, not random: every worker process must hash a key to the same slot. A client
/// cannot pick keys that collide without knowing the seed and the build, and a collision
/// only makes two clients share a limit.
const HASH_SEED: u64 = 0x6665_7272_6f67_6174; // "ferrogat"

/// One key's state. Zero bytes are an empty slot, so a new zero-filled file is an empty
/// table.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Slot {
    /// The key's hash, never `EMPTY` once claimed; claimed and replaced by CAS.
    key: AtomicU64,
    /// The key's theoretical arrival time (CLOCK_MONOTONIC ns); 0 = never seen.
    tat: AtomicU64,
}

#[cfg(test)]
impl Slot {
    /// (key, TAT), for tests that look inside the table.
    pub fn words(&self) -> (u64, u64) {
        (
            self.key.load(Ordering::Acquire),
            self.tat.load(Ordering::Acquire),
        )
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_BYTES);
const _: () = assert!(std::mem::align_of::<Slot>() == 8);

/// The hash a key is stored under: the same in every process, never `EMPTY`.
pub fn key_hash(key: &[u8]) -> u64 {
    occupied(foldhash::quality::FixedState::with_seed(HASH_SEED).hash_one(key))
}

/// Moves the one hash value that means "empty" onto a neighbour (a 2⁻⁶⁴ collision).
fn occupied(hash: u64) -> u64 {
    if hash == EMPTY {
        1
    } else {
        hash
    }
}

/// Where the slots live. A private heap array and a shared mapping behave the same.
enum Backing {
    Heap(Box<[Slot]>),
    Mapped(MappedSlots),
}

pub struct Table {
    backing: Backing,
}

/// What a scan of a key's window found.
enum Lookup<'a> {
    /// The key's own slot.
    Found(&'a Slot),
    /// A slot to take over: empty, or the window's oldest TAT; with the words seen in it.
    Claim {
        slot: &'a Slot,
        seen_key: u64,
        seen_tat: u64,
    },
}

impl Table {
    /// A table private to this process; at least one slot.
    pub fn local(slot_count: usize) -> Table {
        let slots = (0..slot_count.max(1)).map(|_| Slot::default()).collect();
        Table {
            backing: Backing::Heap(slots),
        }
    }

    pub fn mapped(slots: MappedSlots) -> Table {
        Table {
            backing: Backing::Mapped(slots),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.backing, Backing::Mapped(_))
    }

    pub fn slots(&self) -> &[Slot] {
        match &self.backing {
            Backing::Heap(slots) => slots,
            Backing::Mapped(mapped) => mapped.slots(),
        }
    }

    /// Decides one request for the key stored under `hash`, and records it if allowed.
    pub fn check(&self, hash: u64, now_ns: u64, gcra: &Gcra) -> Decision {
        let slots = self.slots();
        for _ in 0..CLAIM_ATTEMPTS {
            let (slot, seen_key, seen_tat) = match lookup(slots, hash) {
                Lookup::Found(slot) => return update_own(slot, now_ns, gcra),
                Lookup::Claim {
                    slot,
                    seen_key,
                    seen_tat,
                } => (slot, seen_key, seen_tat),
            };
            match slot
                .key
                .compare_exchange(seen_key, hash, Ordering::AcqRel, Ordering::Acquire)
            {
                // The victim's TAT is not ours: decide from a blank TAT, but swap against
                // the TAT seen, so a write that raced the claim is not silently undone.
                Ok(_) => return update(slot, seen_tat, EMPTY, now_ns, gcra),
                // Another request claimed it for this same key first: share it.
                Err(claimed_by) if claimed_by == hash => return update_own(slot, now_ns, gcra),
                Err(_) => {}
            }
        }
        gcra.step(EMPTY, now_ns).decision
    }
}

/// The key's home slot: the hash's high bits scaled to the table (no division).
fn home(hash: u64, slot_count: usize) -> usize {
    ((u128::from(hash) * slot_count as u128) >> 64) as usize
}

/// Scans the key's window: its slot if present, else the first empty slot, else the slot
/// with the oldest TAT. Keys are replaced but never removed, so an empty slot ends the
/// search: the key cannot be further on.
fn lookup(slots: &[Slot], hash: u64) -> Lookup<'_> {
    let count = slots.len();
    let start = home(hash, count);
    let mut oldest: Option<(&Slot, u64, u64)> = None;
    for offset in 0..PROBE_LIMIT.min(count) {
        let mut index = start + offset;
        if index >= count {
            index -= count;
        }
        let slot = &slots[index];
        let key = slot.key.load(Ordering::Acquire);
        if key == hash {
            return Lookup::Found(slot);
        }
        let tat = slot.tat.load(Ordering::Acquire);
        if key == EMPTY {
            return Lookup::Claim {
                slot,
                seen_key: EMPTY,
                seen_tat: tat,
            };
        }
        if oldest.is_none_or(|(_, _, oldest_tat)| tat < oldest_tat) {
            oldest = Some((slot, key, tat));
        }
    }
    let (slot, seen_key, seen_tat) = oldest.expect("invariant: a table has at least one slot");
    Lookup::Claim {
        slot,
        seen_key,
        seen_tat,
    }
}

/// The key's own slot: decided from the TAT stored there.
fn update_own(slot: &Slot, now_ns: u64, gcra: &Gcra) -> Decision {
    let tat = slot.tat.load(Ordering::Acquire);
    update(slot, tat, tat, now_ns, gcra)
}

/// The CAS loop: decides from `basis`, swaps `expected` for the new TAT, and after a lost
/// race decides again from the TAT that won. Lock-free: a failed swap means another
/// request succeeded. A refusal writes nothing.
fn update(slot: &Slot, mut expected: u64, mut basis: u64, now_ns: u64, gcra: &Gcra) -> Decision {
    loop {
        let step = gcra.step(basis, now_ns);
        let Some(new_tat) = step.new_tat else {
            return step.decision;
        };
        match slot
            .tat
            .compare_exchange_weak(expected, new_tat, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return step.decision,
            Err(actual) => {
                expected = actual;
                basis = actual;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::rate_limit::Rate;
    use std::time::Duration;

    const SECOND: u64 = 1_000_000_000;
    const START: u64 = 1_000 * SECOND;

    /// 10/s: T = 100 ms, τ = burst × 100 ms.
    fn ten_per_second(burst: u32) -> Gcra {
        Gcra::new(
            Rate {
                count: 10,
                period: Duration::from_secs(1),
            },
            burst,
        )
    }

    fn allowed(table: &Table, hash: u64, now: u64, requests: u32, gcra: &Gcra) -> u32 {
        (0..requests)
            .filter(|_| table.check(hash, now, gcra).is_allowed())
            .count() as u32
    }

    fn keys(table: &Table) -> Vec<u64> {
        table.slots().iter().map(|slot| slot.words().0).collect()
    }

    /// Hashes whose home is slot 0 of any table smaller than 2^32 slots.
    const LOW: [u64; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    #[test]
    fn hash_zero_is_moved_off_the_empty_marker() {
        assert_eq!(occupied(0), 1);
        assert_eq!(occupied(42), 42);
    }

    #[test]
    fn home_slot_spreads_over_the_whole_table() {
        assert_eq!(home(0, 16), 0);
        assert_eq!(home(u64::MAX, 16), 15);
        assert_eq!(home(1 << 63, 16), 8);
        assert_eq!(home(u64::MAX, 1), 0);
    }

    #[test]
    fn one_key_uses_one_slot_and_keeps_its_state() {
        let table = Table::local(64);
        let gcra = ten_per_second(3);
        assert_eq!(allowed(&table, 77, START, 10, &gcra), 3);
        assert_eq!(keys(&table).iter().filter(|&&k| k == 77).count(), 1);
        assert_eq!(allowed(&table, 77, START, 10, &gcra), 0);
    }

    #[test]
    fn colliding_keys_take_the_next_slots_and_wrap_around_the_end() {
        let table = Table::local(16);
        let gcra = ten_per_second(1);
        for hash in [u64::MAX, u64::MAX - 1, u64::MAX - 2] {
            assert_eq!(home(hash, 16), 15);
            assert!(table.check(hash, START, &gcra).is_allowed());
        }
        let keys = keys(&table);
        assert_eq!(
            (keys[15], keys[0], keys[1]),
            (u64::MAX, u64::MAX - 1, u64::MAX - 2)
        );
        // Each kept its own state.
        assert!(!table.check(u64::MAX - 1, START, &gcra).is_allowed());
    }

    #[test]
    fn probe_is_bounded_to_the_window_and_evicts_the_oldest_tat() {
        let table = Table::local(32);
        let gcra = ten_per_second(1);
        // Eight keys with home slot 0, the first one used earliest (oldest TAT).
        for (i, &hash) in LOW[..8].iter().enumerate() {
            assert!(table.check(hash, START + i as u64, &gcra).is_allowed());
        }
        assert!(table.check(LOW[8], START + 8, &gcra).is_allowed());
        let keys = keys(&table);
        assert_eq!(
            &keys[..8],
            &[9, 2, 3, 4, 5, 6, 7, 8],
            "key 1 had the oldest TAT"
        );
        assert!(
            keys[8..].iter().all(|&k| k == EMPTY),
            "nothing beyond the window"
        );
    }

    #[test]
    fn idle_key_is_evicted_before_a_throttled_one() {
        let table = Table::local(8);
        let gcra = ten_per_second(5);
        // Key 1 is throttled (TAT = now + τ), key 2 was seen long ago (TAT in the past).
        assert_eq!(allowed(&table, 1, START, 6, &gcra), 5);
        assert!(table.check(2, START - 100 * SECOND, &gcra).is_allowed());
        for &hash in &LOW[2..8] {
            assert!(table.check(hash, START, &gcra).is_allowed());
        }
        assert!(table.check(100, START, &gcra).is_allowed());
        let keys = keys(&table);
        assert!(keys.contains(&100) && !keys.contains(&2), "{keys:?}");
        assert!(
            !table.check(1, START, &gcra).is_allowed(),
            "still throttled"
        );
    }

    #[test]
    fn flood_of_new_keys_does_not_free_a_throttled_key() {
        let table = Table::local(8);
        let gcra = ten_per_second(10);
        assert_eq!(allowed(&table, 1, START, 11, &gcra), 10);
        for hash in 1_000..2_000 {
            assert!(
                table.check(hash, START, &gcra).is_allowed(),
                "fresh keys get a burst"
            );
        }
        assert!(keys(&table).contains(&1));
        assert!(!table.check(1, START, &gcra).is_allowed());
    }

    #[test]
    fn claimed_slot_does_not_inherit_the_victims_debt() {
        let table = Table::local(8);
        let gcra = ten_per_second(4);
        // Every slot throttled; key 1's TAT is the oldest, so key 9 takes its slot.
        assert_eq!(allowed(&table, 1, START - 1, 4, &gcra), 4);
        for &hash in &LOW[1..8] {
            assert_eq!(allowed(&table, hash, START, 4, &gcra), 4);
        }
        assert_eq!(allowed(&table, 9, START, 10, &gcra), 4);
        assert_eq!(keys(&table)[0], 9);
        // The evicted key comes back with a fresh burst: the bounded leniency of eviction.
        assert_eq!(allowed(&table, 1, START, 10, &gcra), 4);
    }

    #[test]
    fn memory_is_bounded_by_the_slot_count() {
        let table = Table::local(64);
        let gcra = ten_per_second(1);
        for key in 0..10_000u32 {
            let hash = key_hash(&key.to_le_bytes());
            assert!(table.check(hash, START, &gcra).is_allowed());
        }
        assert_eq!(table.slots().len(), 64);
        assert!(
            keys(&table).iter().all(|&k| k != EMPTY),
            "every slot in use"
        );
    }

    #[test]
    fn threads_racing_on_one_key_allow_exactly_the_burst() {
        let table = Table::local(1024);
        let gcra = ten_per_second(500);
        let total: u32 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| allowed(&table, key_hash(b"client"), START, 1_000, &gcra)))
                .collect();
            workers.into_iter().map(|w| w.join().expect("worker")).sum()
        });
        assert_eq!(total, 500);
    }

    #[test]
    fn threads_racing_for_empty_slots_lose_no_key() {
        let table = Table::local(4096);
        let gcra = ten_per_second(1);
        std::thread::scope(|scope| {
            for thread in 0..4u32 {
                let (table, gcra) = (&table, &gcra);
                scope.spawn(move || {
                    for key in 0..500u32 {
                        // Every thread inserts the same 500 keys, in a different order.
                        let key = (key * 7 + thread * 131) % 500;
                        table.check(key_hash(&key.to_le_bytes()), START, gcra);
                    }
                });
            }
        });
        let keys = keys(&table);
        for key in 0..500u32 {
            let hash = key_hash(&key.to_le_bytes());
            assert_eq!(keys.iter().filter(|&&k| k == hash).count(), 1, "key {key}");
            assert!(
                !table.check(hash, START, &gcra).is_allowed(),
                "one request recorded"
            );
        }
    }
}
