//! A mount's root directory, and opening a file below it without ever leaving it. Owns the
//! one place that touches the disk by path. Knows nothing of URLs (resolve.rs turns them
//! into checked relative paths) nor of HTTP.
//!
//! Containment is enforced by the kernel where it can be: openat2(2) with RESOLVE_BENEATH
//! resolves the relative path against the root's descriptor and fails with EXDEV if any
//! step (a `..` inside a symlink's target, an absolute symlink) would leave it, so the check
//! and the open are one atomic step: a symlink swapped in between a check and an open (the
//! TOCTOU race of canonicalize-then-open) cannot redirect the open outside the root. Symlinks
//! that stay inside the root still work (relative ones directly, absolute ones through their
//! canonical form, opened with the same check). Kernels before 5.6, and sandboxes whose seccomp
//! filter refuses the syscall, get the portable check (canonicalize, compare, open), which is
//! exact for a tree nobody changes while it is served, and logged once as the weaker one.

use std::ffi::CString;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::StaticError;

/// Set once openat2 turned out to be missing here: every later open takes the portable path.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// A file opened for reading, and what `fstat` says of it (of this very file: it cannot
/// have been replaced between the look and the open).
#[derive(Debug)]
pub(super) struct Opened {
    pub(super) file: File,
    pub(super) metadata: Metadata,
}

/// One mount's root: its canonical path (for the portable check and for messages) and a
/// descriptor on it (for openat2). Both are taken once, when the mount is set up, so a root
/// that is itself a symlink (`current -> releases/42`, a common deploy layout) is pinned
/// to what it named then, as before.
#[derive(Debug)]
pub(super) struct Root {
    path: PathBuf,
    directory: OwnedFd,
}

impl Root {
    pub(super) fn open(root: &Path) -> Result<Root, StaticError> {
        let error = |source| StaticError::Root {
            root: root.to_path_buf(),
            source,
        };
        let path = root.canonicalize().map_err(error)?;
        if !path.is_dir() {
            return Err(StaticError::RootNotADirectory(root.to_path_buf()));
        }
        let directory = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(&path)
            .map_err(error)?;
        Ok(Root {
            path,
            directory: OwnedFd::from(directory),
        })
    }

    /// Opens `relative` (checked segments from resolve.rs: no `..`, never absolute; empty
    /// for the root itself) for reading, or `None` when it is missing, unreadable or, unless
    /// `follow_symlinks`, when reaching it would leave the root. Opened O_NONBLOCK: a path
    /// that is a fifo must not hang the worker waiting for a writer (it is refused after the
    /// fstat, as every non-regular file is). Blocking: run off the I/O thread.
    pub(super) fn open_below(&self, relative: &Path, follow_symlinks: bool) -> Option<Opened> {
        let file = if follow_symlinks {
            open_nonblocking(&self.path.join(relative)).ok()?
        } else {
            self.open_contained(relative)?
        };
        let metadata = file.metadata().ok()?;
        Some(Opened { file, metadata })
    }

    fn open_contained(&self, relative: &Path) -> Option<File> {
        if !OPENAT2_MISSING.load(Ordering::Relaxed) {
            match self.openat2_beneath(relative) {
                Ok(file) => return Some(file),
                Err(error) if is_missing_syscall(&error) => {
                    if !OPENAT2_MISSING.swap(true, Ordering::Relaxed) {
                        log::info!(
                            "static files: openat2 is not available ({error}); symlinks are \
                             checked by canonical path instead, which a concurrent symlink \
                             swap inside the root could race"
                        );
                    }
                }
                // An absolute symlink, even one naming a place inside the root, is EXDEV
                // to RESOLVE_BENEATH; such links were served before, so the canonical form
                // decides, and its open is still the kernel-checked one: a symlink swapped
                // into that path meanwhile fails it with EXDEV again.
                Err(error) if error.raw_os_error() == Some(libc::EXDEV) => {
                    let canonical = self.path.join(relative).canonicalize().ok()?;
                    let inside = canonical.strip_prefix(&self.path).ok()?;
                    return self.openat2_beneath(inside).ok();
                }
                // ELOOP, ENOENT, EACCES...: not served.
                Err(_) => return None,
            }
        }
        let canonical = self.path.join(relative).canonicalize().ok()?;
        if !canonical.starts_with(&self.path) {
            return None;
        }
        open_nonblocking(&canonical).ok()
    }

    fn openat2_beneath(&self, relative: &Path) -> io::Result<File> {
        let name = match relative.as_os_str().is_empty() {
            true => CString::new("."),
            false => CString::new(relative.as_os_str().as_bytes()),
        }
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: open_how is plain integers; all-zero is its documented "no options" value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY) as u64;
        // /proc/self/fd/N style links jump anywhere, whatever RESOLVE_BENEATH says of them.
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: a valid directory descriptor we own, a NUL-terminated name that outlives
        // the call, and a pointer to an open_how of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.directory.as_raw_fd(),
                name.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        // SAFETY: the kernel just returned this descriptor to us, and nothing else owns it.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
}

/// ENOSYS: a kernel before 5.6; EPERM: a seccomp filter that refuses what it does not
/// know (older container runtimes). Either way the portable check is all there is.
fn is_missing_syscall(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM))
}

fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::static_files::fixture::TempDir;

    #[test]
    fn a_symlink_leaving_the_root_is_refused_by_the_kernel_check() {
        let dir = TempDir::new();
        dir.write("outside/secret.txt", b"s");
        let public = dir.mkdir("public");
        std::os::unix::fs::symlink(dir.path().join("outside"), public.join("out")).unwrap();
        std::os::unix::fs::symlink("../outside/secret.txt", public.join("rel")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", public.join("abs")).unwrap();
        let root = Root::open(&public).unwrap();
        for name in ["out/secret.txt", "rel", "abs"] {
            let error = root.openat2_beneath(Path::new(name)).unwrap_err();
            // EXDEV is the kernel saying "that would leave the root".
            assert_eq!(error.raw_os_error(), Some(libc::EXDEV), "{name}");
            assert!(root.open_below(Path::new(name), false).is_none(), "{name}");
        }
        assert!(root.open_below(Path::new("rel"), true).is_some());
    }

    #[test]
    fn an_absolute_symlink_to_a_place_inside_the_root_is_still_served() {
        let dir = TempDir::new();
        dir.write("real/app.js", b"x");
        let root = Root::open(dir.path()).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
        let opened = root.open_below(Path::new("alias/app.js"), false).unwrap();
        assert!(opened.metadata.is_file());
    }

    #[test]
    fn the_root_itself_and_files_below_it_open() {
        let dir = TempDir::new();
        dir.write("a/b.txt", b"hi");
        let root = Root::open(dir.path()).unwrap();
        assert!(root
            .open_below(Path::new(""), false)
            .unwrap()
            .metadata
            .is_dir());
        let opened = root.open_below(Path::new("a/b.txt"), false).unwrap();
        assert!(opened.metadata.is_file());
        assert_eq!(opened.metadata.len(), 2);
    }
}
