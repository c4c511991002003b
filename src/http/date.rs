//! The `Date` header's value (RFC 9110 §6.6.1, IMF-fixdate), formatted once per second per
//! I/O thread and shared by the HTTP/1 and HTTP/2 drivers.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// The current second and its IMF-fixdate.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Calls `f` with the current date as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn with_http_date<T>(f: impl FnOnce(&[u8]) -> T) -> T {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(cached_second, text)| {
        if *cached_second != second {
            *cached_second = second;
            *text = httpdate::fmt_http_date(now).into_bytes();
        }
        f(text)
    })
}
