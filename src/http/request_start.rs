//! `X-Request-Start`: when a proxy in front (Heroku's router, nginx with
//! `proxy_set_header X-Request-Start "t=${msec}"`) received the request, so the time it
//! queued before reaching us counts in its queue time (the New Relic convention). Only
//! believed from a trusted proxy; the caller checks that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest upstream wait believed: beyond it the proxy's clock, or the header, is wrong.
const MAX_UPSTREAM_WAIT: Duration = Duration::from_secs(3600);

/// How long before `now` the proxy received the request, from `t=<time>` or a bare time, in
/// seconds, milliseconds or microseconds since the epoch (told apart by magnitude, as New
/// Relic does). `None` for a value that is not such a time or is implausibly old; a time in
/// the future (clocks apart) counts as no wait.
pub fn upstream_wait(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let number = text.strip_prefix("t=").unwrap_or(text).trim();
    let time: f64 = number.parse().ok()?;
    if !time.is_finite() || time <= 0.0 {
        return None;
    }
    let seconds = if time > 1e14 {
        time / 1e6
    } else if time > 1e11 {
        time / 1e3
    } else {
        time
    };
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let wait = Duration::try_from_secs_f64((now - seconds).max(0.0)).ok()?;
    (wait <= MAX_UPSTREAM_WAIT).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    fn wait_ms(value: &str, now: f64) -> Option<u128> {
        upstream_wait(value.as_bytes(), at(now)).map(|d| d.as_millis())
    }

    #[test]
    fn microseconds_milliseconds_and_seconds_are_told_apart() {
        let now = 1_700_000_000.5;
        assert_eq!(wait_ms("t=1700000000250000", now), Some(250));
        assert_eq!(wait_ms("t=1700000000250", now), Some(250));
        assert_eq!(wait_ms("t=1700000000.250", now), Some(250));
        assert_eq!(wait_ms("1700000000250000", now), Some(250));
    }

    #[test]
    fn a_time_in_the_future_is_no_wait() {
        assert_eq!(wait_ms("t=1700000001000000", 1_700_000_000.0), Some(0));
    }

    #[test]
    fn garbage_and_implausible_times_are_ignored() {
        let now = 1_700_000_000.0;
        for bad in [
            "", "t=", "t=soon", "t=-5", "t=nan", "t=inf", "t=1000", "\u{ff}",
        ] {
            assert_eq!(wait_ms(bad, now), None, "{bad:?}");
        }
        // More than an hour ago: a wrong clock, not a queue.
        assert_eq!(wait_ms("t=1699990000000000", now), None);
    }
}
