//! The generic cell rate algorithm (GCRA, as in redis-cell, Stripe and Envoy): one request
//! for one key, decided from that key's theoretical arrival time (TAT) alone. A pure
//! function on integers (nanoseconds): it knows nothing of where TATs are stored, of keys,
//! of clocks or of headers. Called by the table, which stores the TAT it returns.
//!
//! With emission interval T = period / count and tolerance τ = T × burst, a request at `now`
//! is allowed when `max(tat, now) + T − now ≤ τ`, and then moves the TAT on by T. A fresh
//! key can therefore spend `burst` requests at once, then one every T.

use super::rate::Rate;

/// What one request gets. Durations are nanoseconds from the `now` the request was checked
/// at, so they convert to headers without another clock read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        /// How many more requests would be allowed at this same instant.
        remaining: u32,
        /// Until the key is back to a full burst (its TAT reaches `now`).
        reset_after_ns: u64,
    },
    Refused {
        /// Until the earliest instant the next request would be allowed.
        retry_after_ns: u64,
        /// Until the key is back to a full burst.
        reset_after_ns: u64,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// The algorithm's two constants, computed once per limiter from the rate and the burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// T: the steady-state spacing between two allowed requests. At least 1 ns; the
    /// division truncates, which allows at most one nanosecond's worth more than asked.
    emission_ns: u64,
    /// τ = T × burst: how far ahead of `now` the TAT may run. 0 (burst 0) refuses all.
    tolerance_ns: u64,
}

/// The decision for one request, and the TAT to store if it was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub decision: Decision,
    /// `Some` only when allowed: a refused request leaves no trace, so a client hammering
    /// a closed door does not push its own reopening further away.
    pub new_tat: Option<u64>,
}

impl Gcra {
    pub fn new(rate: Rate, burst: u32) -> Gcra {
        // A period beyond u64 nanoseconds (584 years) only comes from a hand-built Rate.
        let period_ns = u64::try_from(rate.period.as_nanos()).unwrap_or(u64::MAX);
        let emission_ns = (period_ns / u64::from(rate.count.max(1))).max(1);
        Gcra {
            emission_ns,
            tolerance_ns: emission_ns.saturating_mul(u64::from(burst)),
        }
    }

    /// T, for a store that runs the algorithm elsewhere (the Redis script).
    pub fn emission_ns(&self) -> u64 {
        self.emission_ns
    }

    /// τ, for a store that runs the algorithm elsewhere (the Redis script).
    pub fn tolerance_ns(&self) -> u64 {
        self.tolerance_ns
    }

    /// One request at `now_ns` for a key whose stored TAT is `tat` (0 for a key never seen:
    /// any TAT at or before `now` means "full burst available").
    pub fn step(&self, tat: u64, now_ns: u64) -> Step {
        let tat = tat.max(now_ns);
        let debt = tat - now_ns;
        // Saturating: only a corrupt TAT near u64::MAX could overflow, and it then refuses.
        let debt_after = debt.saturating_add(self.emission_ns);
        if debt_after > self.tolerance_ns {
            return Step {
                decision: Decision::Refused {
                    retry_after_ns: debt_after - self.tolerance_ns,
                    reset_after_ns: debt,
                },
                new_tat: None,
            };
        }
        let remaining = (self.tolerance_ns - debt_after) / self.emission_ns;
        Step {
            decision: Decision::Allowed {
                // ≤ burst, which is a u32.
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                reset_after_ns: debt_after,
            },
            new_tat: Some(now_ns.saturating_add(debt_after)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECOND: u64 = 1_000_000_000;
    /// Far from 0 so that "a TAT in the past" is representable.
    const START: u64 = 1_000 * SECOND;

    fn gcra(count: u32, period: Duration, burst: u32) -> Gcra {
        Gcra::new(Rate { count, period }, burst)
    }

    fn ten_per_second(burst: u32) -> Gcra {
        gcra(10, Duration::from_secs(1), burst)
    }

    /// Runs `n` requests at `now` from `tat`; returns how many were allowed and the final TAT.
    fn burst_at(limit: &Gcra, mut tat: u64, now: u64, n: u32) -> (u32, u64) {
        let mut allowed = 0;
        for _ in 0..n {
            let step = limit.step(tat, now);
            if let Some(new_tat) = step.new_tat {
                tat = new_tat;
                allowed += 1;
            }
        }
        (allowed, tat)
    }

    #[test]
    fn constants_follow_rate_and_burst() {
        let limit = ten_per_second(5);
        assert_eq!(limit.emission_ns, SECOND / 10);
        assert_eq!(limit.tolerance_ns, SECOND / 2);
    }

    #[test]
    fn fresh_key_gets_burst_at_once_then_is_refused() {
        let limit = ten_per_second(10);
        let (allowed, tat) = burst_at(&limit, 0, START, 25);
        assert_eq!(allowed, 10);
        assert_eq!(tat, START + SECOND);
    }

    #[test]
    fn remaining_counts_down_to_zero_across_the_burst() {
        let limit = ten_per_second(3);
        let mut tat = 0;
        for expected in [2, 1, 0] {
            let step = limit.step(tat, START);
            let Decision::Allowed { remaining, .. } = step.decision else {
                panic!("expected allowed, got {step:?}");
            };
            assert_eq!(remaining, expected);
            tat = step.new_tat.expect("allowed steps store a TAT");
        }
        assert!(!limit.step(tat, START).decision.is_allowed());
    }

    #[test]
    fn exact_boundary_is_allowed_and_one_nanosecond_early_is_refused() {
        let limit = ten_per_second(1);
        let tat = limit.step(0, START).new_tat.expect("first request allowed");
        assert_eq!(tat, START + SECOND / 10);
        // Allowed when tat + T − now ≤ τ, i.e. now ≥ tat with burst 1.
        let below = limit.step(tat, tat - 1);
        assert_eq!(
            below.decision,
            Decision::Refused {
                retry_after_ns: 1,
                reset_after_ns: 1
            }
        );
        assert_eq!(below.new_tat, None);
        let at = limit.step(tat, tat);
        assert!(at.decision.is_allowed());
        assert_eq!(at.new_tat, Some(tat + SECOND / 10));
        let above = limit.step(tat, tat + 1);
        assert_eq!(above.new_tat, Some(tat + 1 + SECOND / 10));
    }

    #[test]
    fn refusal_names_the_wait_until_the_next_allowed_request() {
        let limit = ten_per_second(10);
        let (_, tat) = burst_at(&limit, 0, START, 10);
        let Decision::Refused {
            retry_after_ns,
            reset_after_ns,
        } = limit.step(tat, START).decision
        else {
            panic!("the 11th request is refused");
        };
        assert_eq!(retry_after_ns, SECOND / 10);
        assert_eq!(reset_after_ns, SECOND);
        // Waiting exactly retry_after is enough, one nanosecond less is not.
        assert!(limit
            .step(tat, START + retry_after_ns)
            .decision
            .is_allowed());
        assert!(!limit
            .step(tat, START + retry_after_ns - 1)
            .decision
            .is_allowed());
    }

    #[test]
    fn steady_rate_at_the_emission_interval_is_always_allowed() {
        let limit = ten_per_second(1);
        let mut tat = 0;
        for i in 0..1_000 {
            let step = limit.step(tat, START + i * (SECOND / 10));
            tat = step.new_tat.expect("one request per T is always allowed");
        }
    }

    #[test]
    fn steady_rate_faster_than_allowed_is_held_to_the_rate() {
        // 20 requests a second against 10/s with burst 10: over 10 s, 10 + 100 get through.
        let limit = ten_per_second(10);
        let mut tat = 0;
        let mut allowed = 0;
        for i in 0..200 {
            let step = limit.step(tat, START + i * (SECOND / 20));
            if let Some(new_tat) = step.new_tat {
                tat = new_tat;
                allowed += 1;
            }
        }
        // The last request is at 9.95 s: 10 burst + 99 refills (+1 at t=0 counted in burst).
        assert_eq!(allowed, 10 + 99);
    }

    #[test]
    fn recovery_over_time_is_proportional_then_capped_at_burst() {
        let limit = ten_per_second(10);
        let (_, tat) = burst_at(&limit, 0, START, 10);
        // 0.35 s later: 3 emission intervals have passed, 3 requests allowed.
        let (allowed, _) = burst_at(&limit, tat, START + SECOND * 35 / 100, 20);
        assert_eq!(allowed, 3);
        // Long after: the full burst and no more, however long the silence.
        let (allowed, _) = burst_at(&limit, tat, START + 3_600 * SECOND, 20);
        assert_eq!(allowed, 10);
    }

    #[test]
    fn reset_after_is_the_time_back_to_a_full_burst() {
        let limit = ten_per_second(10);
        let step = limit.step(0, START);
        assert_eq!(
            step.decision,
            Decision::Allowed {
                remaining: 9,
                reset_after_ns: SECOND / 10
            }
        );
        let (_, tat) = burst_at(&limit, 0, START, 4);
        assert_eq!(
            limit.step(tat, START + SECOND / 10).decision,
            Decision::Allowed {
                remaining: 6,
                reset_after_ns: SECOND * 4 / 10
            }
        );
    }

    #[test]
    fn tat_in_the_past_is_the_same_as_a_fresh_key() {
        let limit = ten_per_second(5);
        assert_eq!(limit.step(START - 7 * SECOND, START), limit.step(0, START));
    }

    #[test]
    fn burst_smaller_or_larger_than_count() {
        let small = gcra(100, Duration::from_secs(60), 1);
        assert_eq!(burst_at(&small, 0, START, 5).0, 1);
        let large = gcra(1, Duration::from_secs(1), 50);
        assert_eq!(burst_at(&large, 0, START, 80).0, 50);
    }

    #[test]
    fn burst_zero_refuses_everything() {
        let limit = ten_per_second(0);
        let step = limit.step(0, START);
        assert_eq!(step.new_tat, None);
        assert_eq!(
            step.decision,
            Decision::Refused {
                retry_after_ns: SECOND / 10,
                reset_after_ns: 0
            }
        );
    }

    #[test]
    fn uneven_division_rounds_the_interval_down() {
        // 3/s: T = 333_333_333 ns, so three requests fit in 999_999_999 ns.
        let limit = gcra(3, Duration::from_secs(1), 1);
        assert_eq!(limit.emission_ns, 333_333_333);
        let mut tat = 0;
        for i in 0..3 {
            tat = limit
                .step(tat, START + i * 333_333_333)
                .new_tat
                .expect("on the rate");
        }
    }

    #[test]
    fn extreme_values_saturate_instead_of_overflowing() {
        let fastest = gcra(u32::MAX, Duration::from_nanos(1), u32::MAX);
        assert_eq!(fastest.emission_ns, 1);
        let slowest = gcra(1, Duration::MAX, u32::MAX);
        assert_eq!(slowest.tolerance_ns, u64::MAX);
        assert!(slowest.step(0, START).decision.is_allowed());
        let limit = ten_per_second(10);
        assert!(!limit.step(u64::MAX, 0).decision.is_allowed());
    }
}
