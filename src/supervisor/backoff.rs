//! The crash-loop back-off: a worker that dies young is replaced after a pause that doubles
//! with each young death in a row (1 s, 2 s, 4 s ... 30 s), so an app that crashes at start
//! does not become a fork loop; a worker that lived long enough starts its line afresh.
//! Pure arithmetic; the master (master/exits.rs) keeps one streak per line of replacements.

use std::time::Duration;

/// The pause before replacing a worker that died young for the first time in a row.
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The longest pause: a crash loop retries twice a minute, so a fixed app (or a transient
/// cause gone) is served again soon without an operator.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// A worker that lived this long did not die "at start": its replacement starts at once
/// and the streak begins again. Longer than any app's import, shorter than a crash that a
/// request triggers now and then.
pub const STABLE_LIFETIME: Duration = Duration::from_secs(5);

/// The streak of young deaths of a worker's line after this worker died having `lived`.
pub fn next_streak(streak: u32, lived: Duration) -> u32 {
    if lived >= STABLE_LIFETIME {
        0
    } else {
        streak.saturating_add(1)
    }
}

/// How long to wait before starting the replacement of a line with this streak.
pub fn pause(streak: u32) -> Duration {
    if streak == 0 {
        return Duration::ZERO;
    }
    let doublings = (streak - 1).min(16);
    FIRST_PAUSE
        .saturating_mul(1 << doublings)
        .min(LONGEST_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn young_deaths_in_a_row_double_the_pause_up_to_the_cap() {
        let mut streak = 0;
        let mut pauses = Vec::new();
        for _ in 0..8 {
            streak = next_streak(streak, Duration::from_millis(300));
            pauses.push(pause(streak).as_secs());
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(pause(u32::MAX), LONGEST_PAUSE);
    }

    #[test]
    fn a_worker_that_lived_long_enough_resets_its_line() {
        let streak = next_streak(5, STABLE_LIFETIME);
        assert_eq!(streak, 0);
        assert_eq!(pause(streak), Duration::ZERO, "replaced at once");
        assert_eq!(pause(next_streak(streak, Duration::ZERO)), FIRST_PAUSE);
    }
}
