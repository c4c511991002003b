//! The shared table's file: `/dev/shm/ferrogate-ratelimit-<scope>`, mapped `MAP_SHARED` by
//! every worker process of the host so they count against the same slots. Owns the name,
//! the file format (an 8-byte header, then the slots), creation and removal. Knows the
//! slots only as `Slot`'s size and alignment, not how they are probed. Called once per
//! limiter at startup (`Limiter::shared`) and by the master at exit (`remove_tables`);
//! nothing here runs per request.
//!
//! Format: header word = `slot_count << 32 | MAGIC` (native endian: the file never leaves
//! the host), then `slot_count` slots of `SLOT_BYTES` zero-initialised bytes. A file of
//! zeros is an empty table, so creating one is `ftruncate`, not a write per slot.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapRaw;

use super::table::{Slot, SLOT_BYTES};

/// tmpfs on every Linux: memory, not disk, and shared by every process of the host.
const SHM_DIR: &str = "/dev/shm";

/// Every table file starts with this, so `remove_tables` never touches another program's.
const FILE_PREFIX: &str = "ferrogate-ratelimit-";

/// "FRL" and a format version; a file written by another version is refused, not misread.
const MAGIC: u32 = u32::from_le_bytes(*b"FRL\x01");

const HEADER_BYTES: usize = 8;

/// Leaves room in NAME_MAX (255) for the prefix; a scope is a pid and a hash in practice.
const MAX_SCOPE_BYTES: usize = 200;

/// Which shared table a limiter uses: limiters with the same name share counters. Only
/// `[A-Za-z0-9_-]` survive (anything else becomes `_`), so a scope can never name a path
/// outside /dev/shm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

impl TableName {
    /// `scope` sanitized and cut to `MAX_SCOPE_BYTES`; an empty scope is `default`.
    pub fn new(scope: &str) -> TableName {
        let name: String = scope.chars().take(MAX_SCOPE_BYTES).map(sanitize).collect();
        if name.is_empty() {
            TableName("default".to_owned())
        } else {
            TableName(name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("{SHM_DIR}/{FILE_PREFIX}{}", self.0))
    }
}

fn sanitize(c: char) -> char {
    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
        c
    } else {
        '_'
    }
}

/// The slots of a mapped table file. The mapping outlives the file's name: a table removed
/// by the master stays valid for the workers still using it.
pub struct MappedSlots {
    map: MmapRaw,
    slot_count: usize,
}

impl MappedSlots {
    /// Opens the table `name`, creating it with `slot_count` slots if it does not exist.
    /// An existing table keeps the slot count it was created with (its header says which):
    /// a worker started with another setting shares it rather than losing the counters.
    pub fn open(name: &TableName, slot_count: usize) -> io::Result<MappedSlots> {
        let path = name.path();
        let context = |error: io::Error| {
            io::Error::new(
                error.kind(),
                format!("rate-limit table {}: {error}", path.display()),
            )
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            // Never truncate: other workers may have it mapped, and would fault (SIGBUS).
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(context)?;
        let _lock = ExclusiveLock::acquire(&file).map_err(context)?;
        if file.metadata().map_err(context)?.len() == 0 {
            file.set_len(file_len(slot_count)? as u64)
                .map_err(context)?;
        }
        let map = MmapRaw::map_raw(&file).map_err(context)?;
        let slot_count = read_or_write_header(&map, slot_count).map_err(context)?;
        Ok(MappedSlots { map, slot_count })
    }

    pub fn slots(&self) -> &[Slot] {
        // SAFETY: `read_or_write_header` checked the mapping holds HEADER_BYTES plus
        // `slot_count` slots; the mapping is page-aligned and HEADER_BYTES is a multiple of
        // Slot's alignment (8), so the slots are aligned; it lives as long as `self`, and
        // is never unmapped or shrunk while mapped (files only grow from 0, under the
        // lock). Every byte is only ever accessed through the atomics in `Slot`, in this
        // and in other processes, so shared mutation through `&` is sound.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(HEADER_BYTES).cast::<Slot>(),
                self.slot_count,
            )
        }
    }
}

/// The header word of a mapping at least HEADER_BYTES long.
fn header(map: &MmapRaw) -> &AtomicU64 {
    // SAFETY: callers checked `map.len() >= HEADER_BYTES`; the mapping is page-aligned so
    // suitably aligned for AtomicU64, lives as long as the borrow, and is only accessed
    // through atomics.
    unsafe { &*map.as_ptr().cast::<AtomicU64>() }
}

fn file_len(slot_count: usize) -> io::Result<usize> {
    if slot_count == 0 || slot_count > u32::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{slot_count} slots: a table holds 1 to {} slots", u32::MAX),
        ));
    }
    slot_count
        .checked_mul(SLOT_BYTES)
        .and_then(|bytes| bytes.checked_add(HEADER_BYTES))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "table too large"))
}

/// Returns the table's slot count: the header's, or `wanted` written into a new file's.
/// Runs under the file lock, so no other process is writing the header meanwhile.
fn read_or_write_header(map: &MmapRaw, wanted: usize) -> io::Result<usize> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    if map.len() < HEADER_BYTES {
        return Err(invalid(format!(
            "{} bytes is too short for a table",
            map.len()
        )));
    }
    let word = header(map).load(Ordering::Acquire);
    let slot_count = if word == 0 {
        // Created just now (or by a process that died before writing the header): zeros
        // are an empty table of whatever size the file was given.
        let fits = (map.len() - HEADER_BYTES) / SLOT_BYTES;
        let slot_count = if fits >= wanted { wanted } else { fits };
        file_len(slot_count)?;
        header(map).store(
            (slot_count as u64) << 32 | u64::from(MAGIC),
            Ordering::Release,
        );
        slot_count
    } else if word as u32 != MAGIC {
        return Err(invalid(
            "not a rate-limit table of this ferrogate version (bad header)".to_owned(),
        ));
    } else {
        (word >> 32) as usize
    };
    if map.len() < file_len(slot_count)? {
        return Err(invalid(format!(
            "the header says {slot_count} slots but the file holds only {} bytes",
            map.len()
        )));
    }
    Ok(slot_count)
}

/// `flock(LOCK_EX)` for as long as it lives: serialises creating and sizing a table between
/// workers starting at once. Released on drop, and by the kernel if the process dies.
struct ExclusiveLock<'a>(&'a File);

impl<'a> ExclusiveLock<'a> {
    fn acquire(file: &'a File) -> io::Result<ExclusiveLock<'a>> {
        loop {
            // SAFETY: flock on a descriptor `file` owns for the whole call; no memory is
            // passed.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(ExclusiveLock(file));
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

impl Drop for ExclusiveLock<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `acquire`. A failure cannot be acted on, and closing the file
        // releases the lock anyway.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The tables of `owner`: `ferrogate-ratelimit-<owner>` and `ferrogate-ratelimit-<owner>-*`
/// (not `<owner>7-*`: owner "12" must not take the tables of master 123), each as what
/// follows the owner in its name (`""` or `-forward-0-...`) and its path. An empty owner
/// would match every master's, so it is refused.
pub fn owned_tables(owner: &str) -> io::Result<Vec<(String, PathBuf)>> {
    if owner.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a table owner prefix is needed",
        ));
    }
    let owner = TableName::new(owner);
    let owned = format!("{FILE_PREFIX}{}", owner.as_str());
    let mut tables = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(owned.as_str()) else {
            continue;
        };
        if rest.is_empty() || rest.starts_with('-') {
            tables.push((rest.to_owned(), entry.path()));
        }
    }
    Ok(tables)
}

/// Unlinks the tables of `owner` (`owned_tables`). Workers still mapping them keep working.
/// Returns how many were removed. Called by the master at exit.
pub fn remove_tables(owner: &str) -> io::Result<usize> {
    let mut removed = 0;
    for (_, path) in owned_tables(owner)? {
        match std::fs::remove_file(path) {
            Ok(()) => removed += 1,
            // Another process removing the same tables: already done.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scope no other test (or test run) uses.
    fn scope(test: &str) -> String {
        format!("test{}-{test}", std::process::id())
    }

    #[test]
    fn scope_is_sanitized_to_a_file_name() {
        assert_eq!(TableName::new("1234-ab_C9").as_str(), "1234-ab_C9");
        assert_eq!(TableName::new("../etc/passwd").as_str(), "___etc_passwd");
        assert_eq!(TableName::new("10/s é").as_str(), "10_s__");
        assert_eq!(TableName::new("").as_str(), "default");
        assert_eq!(
            TableName::new(&"x".repeat(500)).as_str().len(),
            MAX_SCOPE_BYTES
        );
        assert_eq!(
            TableName::new("a b").path(),
            PathBuf::from("/dev/shm/ferrogate-ratelimit-a_b")
        );
    }

    #[test]
    fn new_file_is_sized_for_its_slots_and_zero() {
        let name = TableName::new(&scope("sized"));
        let mapped = MappedSlots::open(&name, 100).expect("open");
        assert_eq!(mapped.slots().len(), 100);
        let len = std::fs::metadata(name.path()).expect("stat").len();
        assert_eq!(len, (HEADER_BYTES + 100 * SLOT_BYTES) as u64);
        assert!(mapped.slots().iter().all(|slot| slot.words() == (0, 0)));
        remove_tables(&scope("sized")).expect("cleanup");
    }

    #[test]
    fn second_opener_uses_the_files_slot_count() {
        let name = TableName::new(&scope("count"));
        let first = MappedSlots::open(&name, 64).expect("open");
        let second = MappedSlots::open(&name, 4096).expect("reopen");
        assert_eq!(second.slots().len(), 64);
        assert_eq!(first.slots().len(), 64);
        remove_tables(&scope("count")).expect("cleanup");
    }

    #[test]
    fn foreign_file_is_refused_with_its_path() {
        let name = TableName::new(&scope("foreign"));
        std::fs::write(name.path(), b"#!/bin/sh\necho not a table\n").expect("write");
        let error = MappedSlots::open(&name, 8).err().expect("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let text = error.to_string();
        assert!(
            text.contains(name.path().to_str().expect("utf-8")),
            "{text}"
        );
        assert!(text.contains("bad header"), "{text}");
        remove_tables(&scope("foreign")).expect("cleanup");
    }

    #[test]
    fn truncated_file_is_refused() {
        let name = TableName::new(&scope("short"));
        let header = (1000u64 << 32 | u64::from(MAGIC)).to_ne_bytes();
        std::fs::write(name.path(), header).expect("write");
        let error = MappedSlots::open(&name, 8).err().expect("refused");
        assert!(error.to_string().contains("says 1000 slots"), "{error}");
        remove_tables(&scope("short")).expect("cleanup");
    }

    #[test]
    fn zero_or_too_many_slots_are_refused() {
        let name = TableName::new(&scope("zero"));
        let error = MappedSlots::open(&name, 0).err().expect("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        remove_tables(&scope("zero")).expect("cleanup");
        assert!(file_len(u32::MAX as usize + 1).is_err());
    }

    #[test]
    fn remove_tables_takes_the_owners_tables_only() {
        let owner = scope("rm");
        let other = format!("{owner}7");
        for table in [
            owner.clone(),
            format!("{owner}-a"),
            format!("{owner}-b"),
            other.clone(),
        ] {
            MappedSlots::open(&TableName::new(&table), 1).expect("open");
        }
        assert_eq!(remove_tables(&owner).expect("remove"), 3);
        assert!(!TableName::new(&owner).path().exists());
        assert!(
            TableName::new(&other).path().exists(),
            "owner 12 spares owner 127"
        );
        assert_eq!(remove_tables(&other).expect("remove"), 1);
        assert_eq!(remove_tables(&owner).expect("again"), 0);
    }

    #[test]
    fn remove_tables_refuses_an_empty_owner() {
        assert_eq!(
            remove_tables("").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn removed_table_stays_usable_by_its_mappers() {
        let name = TableName::new(&scope("unlinked"));
        let mapped = MappedSlots::open(&name, 4).expect("open");
        remove_tables(&scope("unlinked")).expect("remove");
        assert_eq!(mapped.slots().len(), 4);
        assert_eq!(mapped.slots()[3].words(), (0, 0));
    }
}
