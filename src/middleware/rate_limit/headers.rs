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

/// The limit's headers for one decision, as numbers: written out only where they are sent,
/// into a buffer on the stack. PERF: a refusal allocates no string for them (perf,
/// ratelimit429).
///
/// - `RateLimit-Policy: "default";q=<burst>;w=<seconds>`: `burst` requests per the time
///   they take to earn back (`burst × period / count`, which is the period when the burst
///   is the count), rounded up to a whole second, at least 1.
/// - `RateLimit: "default";r=<remaining>;t=<seconds>`: the requests left now, and the
///   seconds until the quota is whole again, rounded up (waiting `t` is always enough).
/// - `Retry-After: <seconds>` when refused: rounded up and at least 1, so a client that
///   obeys it is not refused again for having come back a fraction of a second early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHeaders {
    burst: u64,
    window_s: u64,
    remaining: u64,
    reset_s: u64,
    retry_after_s: Option<u64>,
}

impl LimitHeaders {
    pub fn new(options: &LimitOptions, decision: &Decision) -> LimitHeaders {
        let (remaining, reset_after_ns, retry_after_s) = match *decision {
            Decision::Allowed {
                remaining,
                reset_after_ns,
            } => (remaining, reset_after_ns, None),
            Decision::Refused {
                retry_after_ns,
                reset_after_ns,
            } => (
                0,
                reset_after_ns,
                Some(seconds_rounded_up(retry_after_ns).max(1)),
            ),
        };
        LimitHeaders {
            burst: u64::from(options.burst),
            window_s: window_seconds(options),
            remaining: u64::from(remaining),
            reset_s: seconds_rounded_up(reset_after_ns),
            retry_after_s,
        }
    }

    /// Each header as `(name, value)`, in the order they are best written.
    pub fn each(&self, mut push: impl FnMut(&'static str, &str)) {
        let mut value = StackText::default();
        value.quota(";q=", self.burst, ";w=", self.window_s);
        push("RateLimit-Policy", value.as_str());
        value.quota(";r=", self.remaining, ";t=", self.reset_s);
        push("RateLimit", value.as_str());
        if let Some(seconds) = self.retry_after_s {
            push("Retry-After", itoa::Buffer::new().format(seconds));
        }
    }

    pub fn to_vec(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::with_capacity(3);
        self.each(|name, value| headers.push((name, value.to_owned())));
        headers
    }
}

/// The headers for `decision`, as owned pairs.
#[cfg(test)]
fn headers(options: &LimitOptions, decision: &Decision) -> Vec<(&'static str, String)> {
    LimitHeaders::new(options, decision).to_vec()
}

/// A header value of the policy name and two numbers, on the stack: at most
/// `"default"` + 2 × (3 + 20 digits) bytes.
struct StackText {
    bytes: [u8; 64],
    length: usize,
}

impl Default for StackText {
    fn default() -> StackText {
        StackText {
            bytes: [0; 64],
            length: 0,
        }
    }
}

impl StackText {
    fn quota(&mut self, first: &str, a: u64, second: &str, b: u64) {
        self.length = 0;
        for part in [
            POLICY_NAME,
            first,
            itoa::Buffer::new().format(a),
            second,
            itoa::Buffer::new().format(b),
        ] {
            self.bytes[self.length..self.length + part.len()].copy_from_slice(part.as_bytes());
            self.length += part.len();
        }
    }

    fn as_str(&self) -> &str {
        // SAFETY: only `quota` writes the bytes, and it copies in whole `&str`s (the policy
        // name, the separators and itoa's digits). PERF: not checked again (~130
        // instructions a refusal, benches/callgrind ratelimit429).
        unsafe { std::str::from_utf8_unchecked(&self.bytes[..self.length]) }
    }
}

/// The `RateLimit-Policy` value: the same for every response of a limiter.
#[cfg(test)]
fn policy_value(options: &LimitOptions) -> String {
    let mut value = StackText::default();
    value.quota(
        ";q=",
        u64::from(options.burst),
        ";w=",
        window_seconds(options),
    );
    value.as_str().to_owned()
}

fn window_seconds(options: &LimitOptions) -> u64 {
    // In u128: burst × period in nanoseconds overflows u64 for a large burst per day.
    let window_ns = u128::from(options.burst) * options.rate.period.as_nanos()
        / u128::from(options.rate.count.max(1));
    let window_s = window_ns.div_ceil(u128::from(NANOS_PER_SECOND)).max(1);
    u64::try_from(window_s).unwrap_or(u64::MAX)
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
