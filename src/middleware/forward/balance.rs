//! Which upstream a request goes to: round robin, least connections or a hash of a key
//! (sticky), each weighted. The round-robin turn and the requests in flight per upstream are
//! in the table the host's workers share (health_table.rs), so a round robin is exact over
//! all their requests and least_conn sees every worker's. Knows nothing of health except the
//! `usable` predicate it is given.

use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use http::HeaderName;

use super::health_table::HealthTable;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    Header(HeaderName),
}

impl FromStr for HashKey {
    type Err = String;

    fn from_str(text: &str) -> Result<HashKey, String> {
        if text == "client_ip" {
            return Ok(HashKey::ClientIp);
        }
        text.strip_prefix("header:")
            .and_then(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .map(HashKey::Header)
            .ok_or_else(|| format!("hash key {text:?} is not client_ip or header:NAME"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    RoundRobin,
    LeastConn,
    Hash(HashKey),
}

impl Strategy {
    /// `round_robin`, `least_conn` or `hash` (with `hash_key`).
    pub fn parse(name: &str, hash_key: &str) -> Result<Strategy, String> {
        match name {
            "round_robin" => Ok(Strategy::RoundRobin),
            "least_conn" => Ok(Strategy::LeastConn),
            "hash" => hash_key.parse().map(Strategy::Hash),
            other => Err(format!(
                "strategy {other:?} is not round_robin, least_conn or hash"
            )),
        }
    }
}

pub struct Balancer {
    pub strategy: Strategy,
    weights: Vec<u32>,
    /// The round-robin turn and each upstream's requests in flight, shared by the workers.
    shared: Arc<HealthTable>,
    /// This process's column of the in-flight counts, claimed at its first request.
    column: OnceLock<Option<usize>>,
}

impl Balancer {
    pub fn new(strategy: Strategy, weights: Vec<u32>, shared: Arc<HealthTable>) -> Balancer {
        assert_eq!(shared.count(), weights.len(), "one state per upstream");
        Balancer {
            strategy,
            weights,
            shared,
            column: OnceLock::new(),
        }
    }

    /// The upstream for a request whose hash key is `key` (for `Hash`), among those `usable`.
    pub fn pick(&self, key: &[u8], usable: impl Fn(usize) -> bool) -> Option<usize> {
        match self.strategy {
            Strategy::RoundRobin => self.round_robin(usable),
            Strategy::LeastConn => self.least_conn(usable),
            Strategy::Hash(_) => self.rendezvous(key, usable),
        }
    }

    /// The next in the weighted cycle (A A A B for weights 3 and 1); an unusable one passes
    /// its turn to the next usable in order.
    fn round_robin(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let total: u64 = self.weights.iter().map(|&w| u64::from(w)).sum();
        let mut position = self.shared.turn().fetch_add(1, Ordering::Relaxed) % total;
        let start = self
            .weights
            .iter()
            .position(|&weight| match position.checked_sub(u64::from(weight)) {
                Some(rest) => {
                    position = rest;
                    false
                }
                None => true,
            })
            .expect("invariant: the position is below the total weight");
        self.first_usable_from(start, usable)
    }

    fn first_usable_from(&self, start: usize, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let count = self.weights.len();
        (0..count).map(|i| (start + i) % count).find(|&i| usable(i))
    }

    /// The fewest requests in flight per unit of weight; ties go round robin.
    fn least_conn(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let count = self.weights.len();
        let start = (self.shared.turn().fetch_add(1, Ordering::Relaxed) % count as u64) as usize;
        (0..count)
            .map(|i| (start + i) % count)
            .filter(|&i| usable(i))
            .min_by_key(|&i| {
                // Compared as a/w < b/v ⇔ a·v < b·w without division: scaled by the
                // product of the other weights would overflow, so a fixed scale is used.
                let in_flight = self.shared.state(i).in_flight.load(Ordering::Relaxed);
                in_flight.saturating_mul(1_000_000) / u64::from(self.weights[i])
            })
    }

    /// Weighted rendezvous hashing: each key ranks every upstream the same way in every
    /// process, so a client stays on one, and when that one is down only its keys move.
    fn rendezvous(&self, key: &[u8], usable: impl Fn(usize) -> bool) -> Option<usize> {
        (0..self.weights.len())
            .filter(|&i| usable(i))
            .max_by(|&a, &b| self.score(key, a).total_cmp(&self.score(key, b)))
    }

    fn score(&self, key: &[u8], index: usize) -> f64 {
        // A fixed seed: every worker of every host must rank alike.
        let mut hasher = foldhash::fast::FixedState::with_seed(0x5eed_f0a7).build_hasher();
        hasher.write(key);
        hasher.write_usize(index);
        // A uniform number in (0, 1), then -w/ln(u): the highest wins with probability w/Σw.
        // foldhash is fast, not well mixed in its high bits for short keys: splitmix64's
        // finalizer evens them out.
        let mut mixed = hasher.finish();
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^= mixed >> 31;
        let unit = ((mixed >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -f64::from(self.weights[index]) / unit.ln()
    }

    /// A request is in progress at `index`, until `leave`: counted for least_conn only, the
    /// one strategy that reads the counts (PERF: two atomic writes fewer per request on a
    /// cache line every worker shares, for the others).
    pub fn enter(&self, index: usize) {
        if self.strategy != Strategy::LeastConn {
            return;
        }
        let state = self.shared.state(index);
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        if let Some(column) = self.column() {
            state.by_slot[column]
                .in_flight
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn leave(&self, index: usize) {
        if self.strategy != Strategy::LeastConn {
            return;
        }
        let state = self.shared.state(index);
        state.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(column) = self.column() {
            state.by_slot[column]
                .in_flight
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn column(&self) -> Option<usize> {
        *self.column.get_or_init(|| self.shared.claim_column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Balancer {
        fn alone(strategy: Strategy, weights: Vec<u32>) -> Balancer {
            let table = Arc::new(HealthTable::local(weights.len()));
            Balancer::new(strategy, weights, table)
        }
    }

    fn counts(balancer: &Balancer, picks: usize, key: impl Fn(usize) -> Vec<u8>) -> Vec<usize> {
        let mut counts = vec![0; balancer.weights.len()];
        for n in 0..picks {
            counts[balancer.pick(&key(n), |_| true).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_follows_the_weights_exactly() {
        let balancer = Balancer::alone(Strategy::RoundRobin, vec![3, 1, 2]);
        assert_eq!(counts(&balancer, 600, |_| vec![]), [300, 100, 200]);
    }

    #[test]
    fn round_robin_skips_an_unusable_upstream() {
        let balancer = Balancer::alone(Strategy::RoundRobin, vec![1, 1, 1]);
        let picks: Vec<_> = (0..6)
            .map(|_| balancer.pick(b"", |i| i != 1).unwrap())
            .collect();
        assert_eq!(picks, [0, 2, 2, 0, 2, 2]);
        assert_eq!(balancer.pick(b"", |_| false), None);
    }

    #[test]
    fn balancers_on_one_table_share_the_turn_and_the_counts() {
        let table = Arc::new(HealthTable::local(2));
        let one = Balancer::new(Strategy::RoundRobin, vec![1, 1], table.clone());
        let other = Balancer::new(Strategy::LeastConn, vec![1, 1], table.clone());
        let picks: Vec<_> = (0..4)
            .map(|n| [&one, &other][n % 2].pick(b"", |_| true).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 0, 1]);
        // Only least_conn counts requests in flight (no other strategy reads them).
        one.enter(0);
        assert_eq!(table.state(0).in_flight.load(Ordering::Relaxed), 0);
        let third = Balancer::new(Strategy::LeastConn, vec![1, 1], table);
        third.enter(0);
        assert!((0..4).all(|_| other.pick(b"", |_| true) == Some(1)));
    }

    #[test]
    fn least_conn_prefers_the_idle_upstream() {
        let balancer = Balancer::alone(Strategy::LeastConn, vec![1, 1]);
        balancer.enter(0);
        assert!((0..10).all(|_| balancer.pick(b"", |_| true) == Some(1)));
    }

    #[test]
    fn hash_is_sticky_and_moves_only_the_keys_of_a_missing_upstream() {
        let balancer = Balancer::alone(Strategy::Hash(HashKey::ClientIp), vec![1, 1, 1]);
        for n in 0..200u32 {
            let key = n.to_be_bytes();
            let first = balancer.pick(&key, |_| true).unwrap();
            assert_eq!(balancer.pick(&key, |_| true), Some(first));
            let without_2 = balancer.pick(&key, |i| i != 2).unwrap();
            if first != 2 {
                assert_eq!(without_2, first);
            }
        }
        let spread = counts(&balancer, 3000, |n| n.to_be_bytes().to_vec());
        assert!(
            spread.iter().all(|&c| (800..1200).contains(&c)),
            "{spread:?}"
        );
    }
}
