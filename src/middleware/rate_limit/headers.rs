//! The response headers that tell a client its limit: `RateLimit-Policy` and `RateLimit`
//! from draft-ietf-httpapi-ratelimit-headers (structured fields, RFC 8941), and
//! `Retry-After` (RFC 9110 §10.2.3) on a refusal. Owns their names and formatting; knows
//! nothing of how the decision was reached or of how headers are written on the wire.
//! Called by the native pipeline and by the WSGI object, once per limited response.

use super::gcra::Decision;
use super::LimitOptions;

/// The policy's name in both headers: one limiter, one policy.
const POLICY_NAME: &str = "\"default\"";

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The headers for `decision`, in the order they are best written.
///
/// - `RateLimit-Policy: "default";q=<burst>;w=<seconds>`: `burst` requests per the time
///   they take to earn back (`burst × period / count`, which is the period when the burst
///   is the count), rounded up to a whole second, at least 1.
/// - `RateLimit: "default";r=<remaining>;t=<seconds>`: the requests left now, and the
///   seconds until the quota is whole again, rounded up (waiting `t` is always enough).
/// - `Retry-After: <seconds>` when refused: rounded up and at least 1, so a client that
///   obeys it is not refused again for having come back a fraction of a second early.
pub fn headers(options: &LimitOptions, decision: &Decision) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(3);
    headers.push(("RateLimit-Policy", policy_value(options)));
    let (remaining, reset_after_ns) = match *decision {
        Decision::Allowed {
            remaining,
            reset_after_ns,
        } => (remaining, reset_after_ns),
        Decision::Refused { reset_after_ns, .. } => (0, reset_after_ns),
    };
    let mut quota = String::with_capacity(VALUE_CAPACITY);
    quota.push_str(POLICY_NAME);
    quota.push_str(";r=");
    quota.push_str(itoa::Buffer::new().format(remaining));
    quota.push_str(";t=");
    quota.push_str(itoa::Buffer::new().format(seconds_rounded_up(reset_after_ns)));
    headers.push(("RateLimit", quota));
    if let Decision::Refused { retry_after_ns, .. } = *decision {
        let seconds = seconds_rounded_up(retry_after_ns).max(1);
        headers.push((
            "Retry-After",
            itoa::Buffer::new().format(seconds).to_owned(),
        ));
    }
    headers
}

/// Room for a value with two numbers, so it is allocated once. PERF: `itoa` and `push_str`
/// instead of `format!`, which grew each string several times (benches/callgrind
/// ratelimit429: 3.2k instructions per request for these headers before).
const VALUE_CAPACITY: usize = 48;

/// The `RateLimit-Policy` value: the same for every response of a limiter, so a caller may
/// compute it once.
pub fn policy_value(options: &LimitOptions) -> String {
    // In u128: burst × period in nanoseconds overflows u64 for a large burst per day.
    let window_ns = u128::from(options.burst) * options.rate.period.as_nanos()
        / u128::from(options.rate.count.max(1));
    let window_s = window_ns.div_ceil(u128::from(NANOS_PER_SECOND)).max(1);
    let mut value = String::with_capacity(VALUE_CAPACITY);
    value.push_str(POLICY_NAME);
    value.push_str(";q=");
    value.push_str(itoa::Buffer::new().format(options.burst));
    value.push_str(";w=");
    value.push_str(itoa::Buffer::new().format(window_s));
    value
}

fn seconds_rounded_up(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::rate_limit::Rate;

    fn options(rate: &str, burst: u32) -> LimitOptions {
        LimitOptions {
            rate: rate.parse::<Rate>().expect("rate"),
            burst,
        }
    }

    fn value<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn allowed_response_carries_policy_and_remaining_but_no_retry_after() {
        let decision = Decision::Allowed {
            remaining: 99,
            reset_after_ns: 10_000_000,
        };
        let headers = headers(&options("100/s", 100), &decision);
        assert_eq!(
            headers,
            vec![
                ("RateLimit-Policy", "\"default\";q=100;w=1".to_owned()),
                ("RateLimit", "\"default\";r=99;t=1".to_owned()),
            ]
        );
    }

    #[test]
    fn refused_response_has_zero_remaining_and_retry_after_rounded_up() {
        let decision = Decision::Refused {
            retry_after_ns: 1_000_000_001,
            reset_after_ns: 59_500_000_000,
        };
        let headers = headers(&options("60/min", 60), &decision);
        assert_eq!(value(&headers, "RateLimit"), Some("\"default\";r=0;t=60"));
        assert_eq!(value(&headers, "Retry-After"), Some("2"));
        assert_eq!(
            value(&headers, "RateLimit-Policy"),
            Some("\"default\";q=60;w=60")
        );
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        for retry_after_ns in [1, 999_999_999, 1_000_000_000] {
            let decision = Decision::Refused {
                retry_after_ns,
                reset_after_ns: 0,
            };
            let headers = headers(&options("10/s", 10), &decision);
            assert_eq!(
                value(&headers, "Retry-After"),
                Some("1"),
                "{retry_after_ns}"
            );
        }
        let decision = Decision::Refused {
            retry_after_ns: 0,
            reset_after_ns: 0,
        };
        let headers = headers(&options("10/s", 10), &decision);
        assert_eq!(value(&headers, "Retry-After"), Some("1"));
        assert_eq!(value(&headers, "RateLimit"), Some("\"default\";r=0;t=0"));
    }

    #[test]
    fn policy_window_is_the_time_to_earn_the_burst_back() {
        assert_eq!(
            policy_value(&options("10/hour", 10)),
            "\"default\";q=10;w=3600"
        );
        assert_eq!(policy_value(&options("10/s", 5)), "\"default\";q=5;w=1");
        assert_eq!(policy_value(&options("1/s", 30)), "\"default\";q=30;w=30");
        assert_eq!(policy_value(&options("3/min", 1)), "\"default\";q=1;w=20");
        assert_eq!(policy_value(&options("7/min", 1)), "\"default\";q=1;w=9");
        assert_eq!(
            policy_value(&options("1/day", u32::MAX)),
            format!(
                "\"default\";q={};w={}",
                u32::MAX,
                u64::from(u32::MAX) * 86_400
            )
        );
    }
}
