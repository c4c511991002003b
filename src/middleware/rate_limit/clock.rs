//! The clock every rate-limit decision is measured on. Owns only the reading of it; the
//! caller reads it once per request and passes it to `Limiter::check`, which lets tests
//! pass any instant they like.

/// CLOCK_MONOTONIC in nanoseconds. Not per process: every process of the host reads the
/// same clock, so TATs written by one worker mean the same to another. It never jumps with
/// the wall clock, and on Linux it is read through the vDSO, without a syscall.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    // CLOCK_MONOTONIC is always supported on Linux; the fallback only keeps this total.
    if status != 0 {
        return 0;
    }
    // Both fields are non-negative for CLOCK_MONOTONIC (time since boot).
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_never_goes_back_and_agrees_with_instant() {
        let instant = std::time::Instant::now();
        let first = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = monotonic_ns();
        assert!(first > 0);
        assert!(second >= first + 2_000_000, "{first} then {second}");
        assert!(u128::from(second - first) <= instant.elapsed().as_nanos());
    }
}
