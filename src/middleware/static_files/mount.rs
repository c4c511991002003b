//! The mount table: which URL prefix maps to which root directory, and which mount (if any)
//! claims a request path. Pure byte comparisons, no disk after construction. Knows nothing
//! of files below a root (resolve.rs) nor of HTTP.

use std::path::PathBuf;

use super::error::StaticError;
use super::root::Root;

/// One URL prefix served from one directory.
#[derive(Debug)]
pub(super) struct Mount {
    /// Decoded URL prefix without a trailing '/', so "/" becomes "" and matches everything.
    prefix: Vec<u8>,
    /// The root directory, opened once (a root that is itself a symlink, a common deploy
    /// layout, is pinned to what it named then).
    pub(super) root: Root,
}

/// The mounts, longest prefix first, so the first match is the most specific one.
#[derive(Debug)]
pub(super) struct MountTable {
    mounts: Vec<Mount>,
}

impl MountTable {
    pub(super) fn new(mounts: Vec<(String, PathBuf)>) -> Result<MountTable, StaticError> {
        let mut table = Vec::with_capacity(mounts.len());
        for (prefix, root) in mounts {
            table.push(Mount {
                prefix: normalized_prefix(&prefix)?,
                root: Root::open(&root)?,
            });
        }
        // Longest prefix wins: "/static/vendor" before "/static".
        table.sort_by_key(|mount| std::cmp::Reverse(mount.prefix.len()));
        Ok(MountTable { mounts: table })
    }

    /// The mount claiming `path` and the rest of the path after its prefix (starting with
    /// '/' or empty). A prefix only matches on a segment boundary: "/static" claims
    /// "/static" and "/static/x", never "/staticx".
    pub(super) fn find<'p>(&self, path: &'p [u8]) -> Option<(&Mount, &'p [u8])> {
        self.mounts.iter().find_map(|mount| {
            let rest = path.strip_prefix(mount.prefix.as_slice())?;
            (rest.is_empty() || rest[0] == b'/').then_some((mount, rest))
        })
    }
}

fn normalized_prefix(prefix: &str) -> Result<Vec<u8>, StaticError> {
    if !prefix.starts_with('/') || prefix.contains('\0') {
        return Err(StaticError::InvalidPrefix(prefix.to_owned()));
    }
    Ok(prefix.trim_end_matches('/').as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::static_files::fixture::TempDir;

    fn table(prefixes: &[&str], dir: &TempDir) -> MountTable {
        let mounts = prefixes
            .iter()
            .map(|prefix| (prefix.to_string(), dir.path().to_path_buf()))
            .collect();
        MountTable::new(mounts).expect("roots exist")
    }

    #[test]
    fn prefix_matches_only_on_a_segment_boundary() {
        let dir = TempDir::new();
        let mounts = table(&["/static"], &dir);
        assert_eq!(mounts.find(b"/static/x").map(|m| m.1), Some(&b"/x"[..]));
        assert_eq!(mounts.find(b"/static").map(|m| m.1), Some(&b""[..]));
        assert!(mounts.find(b"/staticx").is_none());
        assert!(mounts.find(b"/stat").is_none());
    }

    #[test]
    fn trailing_slash_on_a_prefix_is_ignored() {
        let dir = TempDir::new();
        let mounts = table(&["/static/"], &dir);
        assert_eq!(mounts.find(b"/static/x").map(|m| m.1), Some(&b"/x"[..]));
    }

    #[test]
    fn longest_mount_wins() {
        let dir = TempDir::new();
        let mounts = table(&["/static", "/static/vendor", "/"], &dir);
        assert_eq!(
            mounts.find(b"/static/vendor/a.js").map(|m| m.1),
            Some(&b"/a.js"[..])
        );
        assert_eq!(
            mounts.find(b"/static/app.js").map(|m| m.1),
            Some(&b"/app.js"[..])
        );
        assert_eq!(mounts.find(b"/other").map(|m| m.1), Some(&b"/other"[..]));
    }

    #[test]
    fn prefix_without_leading_slash_is_refused() {
        let dir = TempDir::new();
        let err = MountTable::new(vec![("static".into(), dir.path().into())]).unwrap_err();
        assert!(matches!(err, StaticError::InvalidPrefix(_)));
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let dir = TempDir::new();
        let missing = dir.path().join("nope");
        let err = MountTable::new(vec![("/s".into(), missing.clone())]).unwrap_err();
        assert!(err.to_string().contains(&*missing.to_string_lossy()));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn root_that_is_a_file_is_an_error() {
        let dir = TempDir::new();
        let file = dir.write("f.txt", b"x");
        let err = MountTable::new(vec![("/s".into(), file)]).unwrap_err();
        assert!(matches!(err, StaticError::RootNotADirectory(_)));
    }
}
