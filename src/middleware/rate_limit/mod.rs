//! Rate limiting: how many requests a key (a client address, a header value...) may make,
//! decided by GCRA against counters shared by every worker process of the host, or by every
//! host through Redis. Owns the public API; the parts live beside it:
//! - `rate`: "100/s" and its parsing.
//! - `gcra`: the algorithm, a pure function on integers.
//! - `table`: the lock-free slots and the races they accept.
//! - `shm`: the /dev/shm file the slots are mapped from, and its removal.
//! - `headers`: `RateLimit-Policy`, `RateLimit`, `Retry-After`.
//! - `clock`: CLOCK_MONOTONIC, the one clock all processes share.
//! - `redis_store`: the same algorithm as a Lua script in Redis (gcra.lua), on Redis's clock.
//!
//! Knows nothing of Python, HTTP parsing or which part of a request is the key: the native
//! pipeline (on the I/O thread, without the GIL) and the WSGI object both extract the key
//! and call `Limiter::check`, which takes no lock, allocates nothing and makes no syscall, or
//! `RedisStore::check` (async) / `check_blocking`, a round trip to Redis.

mod clock;
mod gcra;
mod headers;
mod rate;
mod redis_store;
mod shm;
mod table;

#[cfg(test)]
mod shared_tests;

use std::io;

pub use clock::monotonic_ns;
pub use gcra::Decision;
pub use headers::LimitHeaders;
pub use rate::{Rate, RateError};
pub use redis_store::{RedisStore, StoreError};
pub use shm::{owned_tables, remove_tables, TableName};

use gcra::Gcra;
use shm::MappedSlots;
use table::Table;

/// 65,536 slots of 16 bytes: 1 MiB per limiter, room for tens of thousands of clients
/// active within one burst window before evictions start to forget a busy one.
pub const DEFAULT_SLOTS: usize = 65_536;

/// What a limiter enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitOptions {
    pub rate: Rate,
    /// How many requests a key may make at once after being idle; the sustained pace is
    /// still `rate`. 0 refuses everything (settings should refuse it before it gets here).
    pub burst: u32,
}

impl LimitOptions {
    /// The usual policy: a burst of one period's worth of requests.
    pub fn new(rate: Rate) -> LimitOptions {
        LimitOptions {
            rate,
            burst: rate.count,
        }
    }

    pub fn with_burst(self, burst: u32) -> LimitOptions {
        LimitOptions { burst, ..self }
    }
}

/// Decides requests against one policy. `Send + Sync`: share one per worker (e.g. in an
/// `Arc`); every call is independent.
pub struct Limiter {
    options: LimitOptions,
    /// Derived from `options` once, not per request.
    gcra: Gcra,
    table: Table,
}

impl Limiter {
    /// A limiter whose counters live in the shared table `scope`, created with `slots`
    /// slots if it does not exist yet (an existing table keeps its own count: see
    /// `slot_count`). Every limiter opening the same scope shares counters, so the scope
    /// must differ between policies. Fails if /dev/shm cannot be used; the caller may then
    /// fall back to `Limiter::local`, counting per process.
    pub fn shared(options: LimitOptions, scope: &TableName, slots: usize) -> io::Result<Limiter> {
        let table = Table::mapped(MappedSlots::open(scope, slots)?);
        Ok(Limiter {
            options,
            gcra: Gcra::new(options.rate, options.burst),
            table,
        })
    }

    /// Counters private to this process, in `slots` slots (at least 1).
    pub fn local(options: LimitOptions, slots: usize) -> Limiter {
        let table = Table::local(slots);
        Limiter {
            options,
            gcra: Gcra::new(options.rate, options.burst),
            table,
        }
    }

    /// One request for `key` at `now_ns` (`monotonic_ns()`, read once per request).
    /// Records the request if it is allowed; a refused one leaves no trace.
    pub fn check(&self, key: &[u8], now_ns: u64) -> Decision {
        self.table.check(table::key_hash(key), now_ns, &self.gcra)
    }

    pub fn options(&self) -> &LimitOptions {
        &self.options
    }

    /// The slots in use: as asked for, or an existing shared table's own count.
    pub fn slot_count(&self) -> usize {
        self.table.slots().len()
    }

    /// Whether counters are shared with other processes (false for `local`).
    pub fn is_shared(&self) -> bool {
        self.table.is_shared()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const START: u64 = 500 * SECOND;

    fn options(rate: &str) -> LimitOptions {
        LimitOptions::new(rate.parse().expect("rate"))
    }

    fn allowed(limiter: &Limiter, key: &[u8], now: u64, requests: u32) -> u32 {
        (0..requests)
            .filter(|_| limiter.check(key, now).is_allowed())
            .count() as u32
    }

    #[test]
    fn burst_defaults_to_the_rate_count() {
        assert_eq!(options("30/min").burst, 30);
        assert_eq!(options("30/min").with_burst(5).burst, 5);
    }

    #[test]
    fn each_key_has_its_own_allowance() {
        let limiter = Limiter::local(options("3/s"), 64);
        assert_eq!(allowed(&limiter, b"10.0.0.1", START, 10), 3);
        assert_eq!(allowed(&limiter, b"10.0.0.2", START, 10), 3);
        assert_eq!(allowed(&limiter, b"10.0.0.1", START, 10), 0);
    }

    #[test]
    fn refused_key_is_allowed_again_after_retry_after() {
        let limiter = Limiter::local(options("2/s"), 64);
        assert_eq!(allowed(&limiter, b"k", START, 2), 2);
        let Decision::Refused { retry_after_ns, .. } = limiter.check(b"k", START) else {
            panic!("third request within the second is refused");
        };
        assert_eq!(retry_after_ns, SECOND / 2);
        assert!(!limiter.check(b"k", START + retry_after_ns - 1).is_allowed());
        assert!(limiter.check(b"k", START + retry_after_ns).is_allowed());
    }

    #[test]
    fn local_limiter_is_not_shared_and_has_at_least_one_slot() {
        let limiter = Limiter::local(options("1/s"), 0);
        assert!(!limiter.is_shared());
        assert_eq!(limiter.slot_count(), 1);
        assert_eq!(allowed(&limiter, b"a", START, 3), 1);
    }

    #[test]
    fn key_hash_is_deterministic_and_never_the_empty_marker() {
        // Fixed-seed: a random seed per process would scatter one key over many slots.
        assert_eq!(table::key_hash(b"127.0.0.1"), table::key_hash(b"127.0.0.1"));
        assert_ne!(table::key_hash(b"127.0.0.1"), table::key_hash(b"127.0.0.2"));
        assert_ne!(table::key_hash(b""), 0);
    }

    #[test]
    fn limiter_is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Limiter>();
    }
}
