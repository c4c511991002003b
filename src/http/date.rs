//! The `Date` header's value (RFC 9110 §6.6.1, IMF-fixdate), formatted once per second per
//! I/O thread and shared by the HTTP/1 and HTTP/2 drivers.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

thread_local! {
    /// The current second and its IMF-fixdate.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Calls `f` with the current date as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn with_http_date<T>(f: impl FnOnce(&[u8]) -> T) -> T {
    let second = current_second();
    DATE.with_borrow_mut(|(cached_second, text)| {
        if *cached_second != second {
            *cached_second = second;
            let now = UNIX_EPOCH + Duration::from_secs(second);
            *text = httpdate::fmt_http_date(now).into_bytes();
        }
        f(text)
    })
}

/// Seconds since the epoch, from the kernel's clock as of its last tick. PERF: the coarse
/// clock is a read of memory the kernel shares (vDSO); `SystemTime::now` also reads the
/// cycle counter, 3% of a refused request's user time (perf, deny403). A tick is at most a
/// few milliseconds, far inside the second a Date names.
fn current_second() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let coarse = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
    match coarse {
        0 => u64::try_from(now.tv_sec).unwrap_or(0),
        _ => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}
