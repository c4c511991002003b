//! Response body bytes from Python objects: small ones are copied, large ones are lent to the
//! I/O thread without a copy (the bytes object is kept alive until the socket is done with it).

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Below this a copy is cheaper than keeping the Python object alive across threads (its
/// release without the GIL goes through PyO3's deferred reference pool).
const ZERO_COPY_MIN_BYTES: usize = 16 * 1024;

/// A `bytes` object's buffer, readable without the GIL because `bytes` is immutable.
struct LentBytes {
    _owner: Py<PyBytes>,
    start: *const u8,
    len: usize,
}

// SAFETY: the buffer belongs to an immutable `bytes` object kept alive by `_owner`; reading it
// from any thread is sound, and `Py` itself is Send + Sync.
unsafe impl Send for LentBytes {}
// SAFETY: as above; the buffer is never written.
unsafe impl Sync for LentBytes {}

impl AsRef<[u8]> for LentBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `start`/`len` describe the live, immutable buffer of `_owner`.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }
}

/// The contents of `bytes` as `Bytes`, copied or lent depending on size.
pub fn body_bytes(bytes: &Bound<'_, PyBytes>) -> Bytes {
    let data = bytes.as_bytes();
    if data.len() < ZERO_COPY_MIN_BYTES {
        return Bytes::copy_from_slice(data);
    }
    Bytes::from_owner(LentBytes {
        start: data.as_ptr(),
        len: data.len(),
        _owner: bytes.clone().unbind(),
    })
}
