//! Test-only: a throwaway directory of real files, removed on drop. The crate has no
//! tempfile dependency and these tests need nothing more.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub(super) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(super) fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "ferrogate-static-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("test: create temp dir");
        TempDir { path }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` at `relative` (creating parent directories) and returns its path.
    pub(super) fn write(&self, relative: &str, contents: &[u8]) -> PathBuf {
        let path = self.path.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("test: create parent dir");
        }
        std::fs::write(&path, contents).expect("test: write file");
        path
    }

    pub(super) fn mkdir(&self, relative: &str) -> PathBuf {
        let path = self.path.join(relative);
        std::fs::create_dir_all(&path).expect("test: create dir");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
