//! Every limit and timeout the HTTP layer enforces, in one place: the fixed caps (with why)
//! and the per-server `Limits` built from the settings. Everyone in `http` reads them here.

use std::time::Duration;

use crate::config::Settings;

/// Largest request head (request line plus headers) accepted; beyond it the answer is 431.
/// 64 KiB is well above any browser's and far below what would let a client pin memory.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most bytes of chunk extensions in one request (RFC 9112 §7.1.1 sets none; they carry
/// nothing a WSGI app can see, so a client sending more is only making the server work).
pub const MAX_CHUNK_EXTENSION_BYTES: usize = 4096;
/// Longest chunk-size line (size plus extensions).
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Largest trailer section; its fields are discarded, so this only bounds the reading.
pub const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Bytes read from the socket at once while waiting for a head.
pub const HEAD_READ_BYTES: usize = 8 * 1024;
/// Most bytes read from the socket at once for a body. PERF: 1 MiB reads beat 256 KiB and
/// 64 KiB ones on post1m (benches/README.md, "own HTTP/1 layer").
pub const BODY_READ_BYTES: usize = 1024 * 1024;

/// Most of a request body the server reads and discards when the handler did not read it,
/// so the connection can carry the next request. Beyond it the connection is closed instead.
pub const MAX_UNREAD_BODY_DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// How long an unread body may pause while it is discarded. Why short: the app no longer
/// wants it, so a stalled client only holds the connection (and a graceful stop) hostage.
pub const DRAIN_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Before closing a connection the client may still be sending on, how long what it sends is
/// read and discarded (see `h1::conn::close`), and at most how much of it.
pub const LINGER: Duration = Duration::from_secs(1);
pub const MAX_LINGER_BYTES: usize = 64 * 1024 * 1024;

/// The limits of one server, from its settings. `0` settings become `usize::MAX` (no limit of
/// their own; the head cap still applies).
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--limit-request-line`: 414 beyond it.
    pub request_line_bytes: usize,
    /// `--limit-request-fields`: 431 beyond it.
    pub header_fields: usize,
    /// `--limit-request-field-size`: 431 beyond it.
    pub header_field_bytes: usize,
    /// `--max-request-body`: 413 beyond it.
    pub body_bytes: Option<u64>,
    /// `--header-timeout`: from a head's first byte to its end; 408 beyond it.
    pub header_timeout: Duration,
    /// `--keep-alive`: the idle wait between requests; `None`: one request per connection.
    pub keep_alive: Option<Duration>,
    /// `--socket-timeout`: how long a body read or a response write may wait on the client.
    pub socket_timeout: Duration,
    /// `--permit-unconventional-methods`: any token is a method.
    pub any_method: bool,
}

fn or_unlimited(limit: u32) -> usize {
    match limit {
        0 => usize::MAX,
        limit => limit as usize,
    }
}

impl Limits {
    pub fn from_settings(settings: &Settings) -> Limits {
        Limits {
            request_line_bytes: or_unlimited(settings.limit_request_line),
            header_fields: or_unlimited(settings.limit_request_fields),
            header_field_bytes: or_unlimited(settings.limit_request_field_size),
            body_bytes: Some(settings.max_request_body).filter(|&limit| limit > 0),
            header_timeout: settings.header_timeout(),
            keep_alive: settings.keep_alive(),
            socket_timeout: settings.socket_timeout(),
            any_method: settings.permit_unconventional_methods,
        }
    }

    /// How long a connection may sit with no request in progress before it is closed: the
    /// keep-alive wait, or with keep-alive off the wait for the one request it will carry.
    pub fn idle_timeout(&self) -> Duration {
        self.keep_alive.unwrap_or(self.header_timeout)
    }
}

impl Default for Limits {
    /// The settings' defaults.
    fn default() -> Limits {
        Limits::from_settings(&Settings::defaults())
    }
}
