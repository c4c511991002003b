//! The Redis store: GCRA counters kept in Redis, so that every host (every ferrogate or other
//! server pointed at the same Redis) spends one budget per key. Owns the connections (a
//! blocking one for callers that may block, a multiplexed async one for the I/O runtime), the
//! script (gcra.lua: the algorithm of gcra.rs run atomically on Redis's own clock), the key
//! names and the store's error.
//!
//! Knows nothing of Python, HTTP, which part of a request is the key, or what to answer when
//! Redis fails: the layer (limit_key.rs) decides that. Called by the native pipeline (async,
//! on the I/O thread) and by the WSGI object (blocking, with the GIL released).

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Connection, RedisError, Script, ScriptInvocation};

use super::gcra::{Decision, Gcra};
use super::LimitOptions;

/// One request's GCRA step, atomic on the server.
const GCRA_SCRIPT: &str = include_str!("gcra.lua");

/// Keys are `ferrogate:rl:<rate>-<burst>:<request key>`: two policies never share a TAT, and
/// the same policy on every host always does.
const KEY_PREFIX: &str = "ferrogate:rl:";

/// The longest the async connection waits between two reconnection attempts: once Redis is
/// back, requests are counted again within about this long.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

const NANOS_PER_MICRO: u64 = 1_000;

/// Why a request could not be decided by Redis. The layer lets it through or answers 503.
#[derive(Debug)]
pub enum StoreError {
    /// No answer within the store's timeout (a slow, stopped or unreachable Redis).
    TimedOut(Duration),
    /// Connecting, sending, or the script itself failed.
    Redis(RedisError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::TimedOut(timeout) => {
                write!(f, "no answer within {} ms", timeout.as_millis())
            }
            StoreError::Redis(_) => f.write_str("the request to Redis failed"),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            StoreError::TimedOut(_) => None,
            StoreError::Redis(error) => Some(error),
        }
    }
}

impl From<RedisError> for StoreError {
    fn from(error: RedisError) -> StoreError {
        StoreError::Redis(error)
    }
}

/// A connection and the process that opened it: after a fork, the child must open its own
/// rather than write into its parent's socket.
type Owned<C> = Mutex<Option<(u32, C)>>;

/// Decides requests against one policy with counters in Redis. `Send + Sync`; connects
/// lazily, on first use, so it may be built before a fork or before the I/O runtime exists.
pub struct RedisStore {
    options: LimitOptions,
    /// T and τ, handed to the script with every call.
    gcra: Gcra,
    client: Client,
    /// Bounds every wait on Redis: connecting, reading and writing.
    timeout: Duration,
    prefix: Vec<u8>,
    script: Script,
    /// For `check_blocking`: one connection, one request at a time.
    blocking: Owned<Connection>,
    /// For `check`: multiplexed, so concurrent requests share it; created on the runtime that
    /// first uses it (a worker's one I/O runtime), which then drives it.
    multiplexed: Owned<ConnectionManager>,
}

impl RedisStore {
    /// A store at `url` (`redis://host:6379/0`, `unix:///path`); parses the URL but does not
    /// connect.
    pub fn new(options: LimitOptions, url: &str, timeout: Duration) -> Result<RedisStore, String> {
        let client = Client::open(url).map_err(|error| format!("store {url:?}: {error}"))?;
        Ok(RedisStore {
            options,
            gcra: Gcra::new(options.rate, options.burst),
            client,
            timeout,
            prefix: format!("{KEY_PREFIX}{}-{}:", options.rate, options.burst).into_bytes(),
            script: Script::new(GCRA_SCRIPT),
            blocking: Mutex::new(None),
            multiplexed: Mutex::new(None),
        })
    }

    pub fn options(&self) -> &LimitOptions {
        &self.options
    }

    /// Where Redis is (`host:port` or a socket path; never the password a URL may carry).
    pub fn address(&self) -> String {
        self.client.get_connection_info().addr().to_string()
    }

    /// The Redis key for a request key.
    pub fn redis_key(&self, key: &[u8]) -> Vec<u8> {
        [self.prefix.as_slice(), key].concat()
    }

    /// One request for `key`, blocking the calling thread for at most about two timeouts
    /// (connecting, then the reply). Callers holding the GIL release it first.
    pub fn check_blocking(&self, key: &[u8]) -> Result<Decision, StoreError> {
        let mut slot = lock(&self.blocking);
        let pid = std::process::id();
        let mut connection = match slot.take() {
            Some((owner, connection)) if owner == pid => connection,
            _ => self.connect_blocking()?,
        };
        let reply = self.invocation(key).invoke(&mut connection);
        // After an error the connection is dropped: a reply that timed out may still arrive,
        // and would be read as the next request's.
        if reply.is_ok() {
            *slot = Some((pid, connection));
        }
        reply
            .map(into_decision)
            .map_err(|error| self.classify(error))
    }

    /// One request for `key`, awaited on the I/O runtime (never blocking it) for at most the
    /// timeout.
    pub async fn check(&self, key: &[u8]) -> Result<Decision, StoreError> {
        let mut connection = self.multiplexed()?;
        let invocation = self.invocation(key);
        let reply = tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
            .await
            .map_err(|_| StoreError::TimedOut(self.timeout))?;
        reply
            .map(into_decision)
            .map_err(|error| self.classify(error))
    }

    fn invocation(&self, key: &[u8]) -> ScriptInvocation<'_> {
        let mut invocation = self.script.key(self.redis_key(key));
        invocation
            .arg(self.gcra.emission_ns())
            .arg(self.gcra.tolerance_ns());
        invocation
    }

    fn connect_blocking(&self) -> Result<Connection, StoreError> {
        let connection = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|error| self.classify(error))?;
        connection.set_read_timeout(Some(self.timeout))?;
        connection.set_write_timeout(Some(self.timeout))?;
        Ok(connection)
    }

    /// This process's multiplexed connection, made on first use. Must be called on a tokio
    /// runtime: the connection's driver task is spawned on it.
    fn multiplexed(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = lock(&self.multiplexed);
        let pid = std::process::id();
        if let Some((owner, connection)) = &*slot {
            if *owner == pid {
                return Ok(connection.clone());
            }
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_max_delay(MAX_RECONNECT_DELAY);
        let connection = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        *slot = Some((pid, connection.clone()));
        Ok(connection)
    }

    fn classify(&self, error: RedisError) -> StoreError {
        match error.is_timeout() {
            true => StoreError::TimedOut(self.timeout),
            false => StoreError::Redis(error),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves the slot as valid as before: a connection or none.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The script's `{allowed, remaining, retry_after_us, reset_after_us}` as a `Decision`.
fn into_decision(
    (allowed, remaining, retry_after_us, reset_after_us): (u8, u64, u64, u64),
) -> Decision {
    let reset_after_ns = reset_after_us.saturating_mul(NANOS_PER_MICRO);
    match allowed {
        0 => Decision::Refused {
            retry_after_ns: retry_after_us.saturating_mul(NANOS_PER_MICRO),
            reset_after_ns,
        },
        _ => Decision::Allowed {
            // ≤ burst, which is a u32.
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_after_ns,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(rate: &str, burst: u32) -> RedisStore {
        let options = LimitOptions::new(rate.parse().expect("rate")).with_burst(burst);
        RedisStore::new(options, "redis://127.0.0.1:1/0", Duration::from_millis(50)).expect("url")
    }

    #[test]
    fn keys_name_the_policy_then_the_request_key() {
        assert_eq!(
            store("3/h", 5).redis_key(b"\x7f\0\0\x01"),
            b"ferrogate:rl:3/hour-5:\x7f\0\0\x01".to_vec()
        );
    }

    #[test]
    fn address_leaves_the_password_out() {
        let options = LimitOptions::new("1/s".parse().expect("rate"));
        let store = RedisStore::new(options, "redis://:secret@10.0.0.5:6380/2", Duration::ZERO)
            .expect("url");
        assert_eq!(store.address(), "10.0.0.5:6380");
    }

    #[test]
    fn a_bad_url_is_refused_when_built() {
        let options = LimitOptions::new("1/s".parse().expect("rate"));
        let error = RedisStore::new(options, "http://x", Duration::ZERO)
            .err()
            .expect("not a Redis URL");
        assert!(error.starts_with("store \"http://x\""), "{error}");
    }

    #[test]
    fn script_replies_become_decisions_in_nanoseconds() {
        assert_eq!(
            into_decision((1, 2, 0, 1_200)),
            Decision::Allowed {
                remaining: 2,
                reset_after_ns: 1_200_000
            }
        );
        assert_eq!(
            into_decision((0, 0, 7, 9)),
            Decision::Refused {
                retry_after_ns: 7_000,
                reset_after_ns: 9_000
            }
        );
    }

    #[test]
    fn nothing_listening_is_an_error_not_a_hang() {
        let store = store("1/s", 1);
        let started = std::time::Instant::now();
        assert!(store.check_blocking(b"k").is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
