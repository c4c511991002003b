//! The rate-limit layer: where its counters are (the host's table, or Redis), what part of a
//! request is its key, and what it answers, Redis failing included, as the native pipeline
//! and the WSGI object both use it. Knows nothing of how either extracts the key.

use std::error::Error as _;
use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderName;
use smallvec::SmallVec;

use super::rate_limit::{
    monotonic_ns, Decision, LimitHeaders, LimitOptions, Limiter, RedisStore, StoreError,
};
use super::Refusal;
use crate::observe::LogThrottle;

/// One warning a second at most while Redis fails: every request would otherwise log one.
static STORE_FAILURE_LOG: LogThrottle = LogThrottle::new(1);

/// What a request is counted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// The client address after trusted-proxy resolution (REMOTE_ADDR).
    ClientIp,
    /// A request header (`header:X-Api-Key`); a request without it is counted by its client
    /// address, so leaving the header out is no way around the limit.
    Header(HeaderName),
}

impl FromStr for RateKey {
    type Err = String;

    fn from_str(text: &str) -> Result<RateKey, String> {
        match text.split_once(':') {
            None if text == "client_ip" => Ok(RateKey::ClientIp),
            Some(("header", name)) => HeaderName::from_bytes(name.trim().as_bytes())
                .map(RateKey::Header)
                .map_err(|_| format!("rate limit key {text:?}: {name:?} is not a header name")),
            _ => Err(format!(
                "rate limit key {text:?} is not client_ip or header:NAME"
            )),
        }
    }
}

impl RateKey {
    /// The WSGI environ key the header is found under (`HTTP_X_API_KEY`).
    pub fn environ_key(&self) -> Option<String> {
        match self {
            RateKey::ClientIp => None,
            RateKey::Header(name) => Some(format!(
                "HTTP_{}",
                name.as_str().to_ascii_uppercase().replace('-', "_")
            )),
        }
    }
}

/// What a request is counted by, as bytes: on the stack when it is a client address (PERF:
/// no allocation per request, perf ratelimit429).
pub type LimitKey = SmallVec<[u8; 16]>;

/// The key bytes for a client address: IPv4-mapped IPv6 counts as the IPv4 client;
/// Unix-socket peers share one key.
pub fn client_key(client: Option<IpAddr>) -> LimitKey {
    match client.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => LimitKey::from_slice(&v4.octets()),
        Some(IpAddr::V6(v6)) => LimitKey::from_slice(&v6.octets()),
        None => LimitKey::from_slice(b"unix"),
    }
}

/// Where a limit's counters are.
pub enum Store {
    /// The host's table in /dev/shm (or the process's own): decided on the spot.
    Local(Limiter),
    /// Redis, shared by every host: a round trip, which the pipeline awaits.
    Redis {
        /// Boxed: far larger than a `Limiter`, and built once per limit.
        store: Box<RedisStore>,
        /// When Redis fails: let the request through (true, logged) or answer 503.
        fail_open: bool,
    },
}

/// What the layer does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// On to the app; these headers go on its response (none when Redis could not say).
    Pass(Vec<(&'static str, String)>),
    Refuse(Refusal),
}

pub struct RateLimit {
    pub store: Store,
    pub key: RateKey,
}

impl RateLimit {
    /// Whether deciding takes a round trip (to Redis), so an I/O thread must await it.
    pub fn is_remote(&self) -> bool {
        matches!(self.store, Store::Redis { .. })
    }

    pub fn options(&self) -> &LimitOptions {
        match &self.store {
            Store::Local(limiter) => limiter.options(),
            Store::Redis { store, .. } => store.options(),
        }
    }

    /// Decides one request keyed by `key` on the calling thread: at once for the local table,
    /// blocking on Redis (bounded by its timeout) for a remote one.
    pub fn check(&self, key: &[u8]) -> Verdict {
        match &self.store {
            Store::Local(limiter) => self.verdict(limiter.check(key, monotonic_ns())),
            Store::Redis { store, fail_open } => match store.check_blocking(key) {
                Ok(decision) => self.verdict(decision),
                Err(error) => failed(store, &error, *fail_open),
            },
        }
    }

    /// `check` for an async caller (the I/O thread): Redis is awaited, never blocked on.
    pub async fn check_async(&self, key: &[u8]) -> Verdict {
        match &self.store {
            Store::Local(_) => self.check(key),
            Store::Redis { store, fail_open } => match store.check(key).await {
                Ok(decision) => self.verdict(decision),
                Err(error) => failed(store, &error, *fail_open),
            },
        }
    }

    fn verdict(&self, decision: Decision) -> Verdict {
        let headers = LimitHeaders::new(self.options(), &decision);
        match decision {
            Decision::Allowed { .. } => Verdict::Pass(headers.to_vec()),
            Decision::Refused { .. } => Verdict::Refuse(Refusal::TooManyRequests { headers }),
        }
    }
}

/// Redis could not decide: the request passes or gets 503, as the limit was told.
fn failed(store: &RedisStore, error: &StoreError, fail_open: bool) -> Verdict {
    if let Some(withheld) = STORE_FAILURE_LOG.admit() {
        let cause = error.source().map(|c| format!(": {c}")).unwrap_or_default();
        let action = match fail_open {
            true => "letting requests through uncounted",
            false => "answering 503",
        };
        let withheld = match withheld {
            0 => String::new(),
            n => format!(" ({n} similar lines withheld)"),
        };
        log::warn!(
            "RateLimit: Redis at {}: {error}{cause}; {action}{withheld}",
            store.address()
        );
    }
    match fail_open {
        true => Verdict::Pass(Vec::new()),
        false => Verdict::Refuse(Refusal::Unavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_name_their_environ_key() {
        assert_eq!("client_ip".parse::<RateKey>().unwrap(), RateKey::ClientIp);
        let header: RateKey = "header:X-Api-Key".parse().unwrap();
        assert_eq!(header.environ_key().unwrap(), "HTTP_X_API_KEY");
        assert!("header:bad name".parse::<RateKey>().is_err());
        assert!("cookie".parse::<RateKey>().is_err());
    }

    fn redis_limit(fail_open: bool) -> RateLimit {
        let options = LimitOptions::new("1/s".parse().unwrap());
        // Port 1: nothing listens, so every check fails at once.
        let url = "redis://127.0.0.1:1/0";
        let timeout = std::time::Duration::from_millis(50);
        RateLimit {
            store: Store::Redis {
                store: Box::new(RedisStore::new(options, url, timeout).unwrap()),
                fail_open,
            },
            key: RateKey::ClientIp,
        }
    }

    #[test]
    fn redis_failing_open_passes_without_headers_and_closed_is_503() {
        assert_eq!(redis_limit(true).check(b"k"), Verdict::Pass(Vec::new()));
        assert_eq!(
            redis_limit(false).check(b"k"),
            Verdict::Refuse(Refusal::Unavailable)
        );
    }

    #[test]
    fn local_limit_refuses_with_the_limit_headers() {
        let options = LimitOptions::new("1/s".parse().unwrap());
        let limit = RateLimit {
            store: Store::Local(Limiter::local(options, 8)),
            key: RateKey::ClientIp,
        };
        assert!(!limit.is_remote());
        assert!(matches!(limit.check(b"k"), Verdict::Pass(headers) if headers.len() == 2));
        let Verdict::Refuse(Refusal::TooManyRequests { headers }) = limit.check(b"k") else {
            panic!("the second request within the second is refused");
        };
        assert!(headers
            .to_vec()
            .iter()
            .any(|(name, _)| *name == "Retry-After"));
    }

    #[test]
    fn mapped_ipv6_counts_as_its_ipv4_client() {
        assert_eq!(
            client_key(Some("::ffff:10.0.0.1".parse().unwrap())),
            client_key(Some("10.0.0.1".parse().unwrap()))
        );
    }
}
