//! `SharedSlots<T>`: a fixed array of slots in an anonymous `MAP_SHARED` mapping, made by the
//! master before it forks, so that every worker reads and writes the same memory with no
//! syscall and no lock. The heartbeat slots, the metrics counters and the TLS session cache
//! are each one. Owns the mmap, the bounds and the munmap; knows nothing of what a slot
//! holds (that is `T`'s business, through its atomics).

use std::io;
use std::ptr::NonNull;

/// A slot type that may live in shared memory.
///
/// # Safety
/// All-zero bytes must be a valid, meaningful value of the type (mmap hands out zeroed
/// pages), and every field must be changed through shared references only (atomics), since
/// other processes hold references to the same bytes. `repr(C)` keeps the layout fixed.
pub unsafe trait ZeroedAtomics: Sync {}

/// `capacity` slots of `T`, unmapped when the value is dropped (in the master; a worker
/// leaves by `_exit` with its inherited copy still mapped). Wrap it in an `Arc` to share it
/// between handles of one process.
pub struct SharedSlots<T: ZeroedAtomics> {
    base: NonNull<T>,
    capacity: usize,
}

// SAFETY: the slots are `ZeroedAtomics`: any thread may read and write them through shared
// references; the pointer stays valid for the life of the value (unmapped in Drop only).
unsafe impl<T: ZeroedAtomics> Send for SharedSlots<T> {}
// SAFETY: as above.
unsafe impl<T: ZeroedAtomics> Sync for SharedSlots<T> {}

impl<T: ZeroedAtomics> SharedSlots<T> {
    /// Maps `capacity` (at least 1) zeroed slots. Pages are touched only as slots are used.
    pub fn new(capacity: usize) -> io::Result<SharedSlots<T>> {
        let capacity = capacity.max(1);
        // SAFETY: a fresh anonymous mapping, no address hint, no file; the result is checked
        // before use. MAP_SHARED is what lets forked workers' writes reach the master.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::length(capacity),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(address.cast::<T>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(SharedSlots { base, capacity })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slot `index`; `None` beyond the mapping.
    pub fn get(&self, index: usize) -> Option<&T> {
        if index >= self.capacity {
            return None;
        }
        // SAFETY: in bounds; mapped, page-aligned (which covers any slot alignment up to a
        // page) and zero-filled, which `ZeroedAtomics` makes a valid T. Only shared
        // references are made, so aliasing across processes is fine.
        Some(unsafe { &*self.base.as_ptr().add(index) })
    }

    fn length(capacity: usize) -> usize {
        capacity * std::mem::size_of::<T>()
    }
}

impl<T: ZeroedAtomics> Drop for SharedSlots<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mmap returned; no reference into it outlives the
        // value, which is being dropped.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), Self::length(self.capacity));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[repr(C)]
    struct Counter(AtomicU64);
    // SAFETY: one atomic; zero is a count of 0.
    unsafe impl ZeroedAtomics for Counter {}

    #[test]
    fn a_child_process_writes_what_the_parent_reads() {
        let slots = SharedSlots::<Counter>::new(4).unwrap();
        assert!(slots.get(3).is_some() && slots.get(4).is_none());
        // SAFETY: the child only touches atomics and leaves with _exit.
        match unsafe { libc::fork() } {
            0 => {
                slots.get(2).unwrap().0.store(42, Ordering::Release);
                // SAFETY: ends the forked child at once, running nothing of the parent's.
                unsafe { libc::_exit(0) }
            }
            child => {
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                unsafe { libc::waitpid(child, &mut status, 0) };
                assert_eq!(slots.get(2).unwrap().0.load(Ordering::Acquire), 42);
                assert_eq!(slots.get(1).unwrap().0.load(Ordering::Acquire), 0);
            }
        }
    }
}
