//! The one error type of the static-files layer: what can go wrong when the mounts are set
//! up (`StaticFiles::new`). Request time has no errors here: a path that cannot be served
//! is a `StaticAnswer::FallThrough`, never a failure. Knows nothing of HTTP statuses or
//! Python exceptions; the crate's single mappings turn this into an exit code or exception.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum StaticError {
    /// A mount's URL prefix does not start with '/' (or holds a NUL byte): it could never
    /// match a request path, so it is refused rather than silently ignored.
    InvalidPrefix(String),
    /// A mount's root directory could not be canonicalized (missing, unreadable...).
    Root { root: PathBuf, source: io::Error },
    /// A mount's root exists but is not a directory.
    RootNotADirectory(PathBuf),
}

impl fmt::Display for StaticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaticError::InvalidPrefix(prefix) => write!(
                f,
                "static files: mount prefix {prefix:?} must start with '/'"
            ),
            StaticError::Root { root, .. } => write!(
                f,
                "static files: cannot open root directory {}",
                root.display()
            ),
            StaticError::RootNotADirectory(root) => write!(
                f,
                "static files: root {} is not a directory",
                root.display()
            ),
        }
    }
}

impl std::error::Error for StaticError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StaticError::Root { source, .. } => Some(source),
            StaticError::InvalidPrefix(_) | StaticError::RootNotADirectory(_) => None,
        }
    }
}
