//! The knobs of the static-files layer and their defaults. Owns only the declaration; the
//! settings layer (config/) derives CLI flags and Python keywords from its own declaration
//! and builds one of these. Knows nothing of requests.

/// How files under the mounts are served. `Default` is the safe choice: no caching header,
/// no index pages, no symlink escapes, no dotfiles, precompressed siblings on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticOptions {
    /// `Cache-Control: public, max-age=N` on every file; `None` sends no Cache-Control
    /// (except for hashed names when `immutable_hashed` is on).
    pub max_age: Option<u32>,
    /// Names carrying a content hash (`app.3f2a9c1b.js`) are cached for a year with
    /// `immutable`: their content can never change under that name. See `headers.rs`.
    pub immutable_hashed: bool,
    /// `dir/` serves `dir/index.html`, and `dir` redirects to `dir/` (301, nginx's
    /// behaviour) when that index exists. Off: directories fall through.
    pub index: bool,
    /// Off (default): a path whose canonical form leaves the root (a symlink pointing
    /// outside) falls through. On: symlinks are followed wherever they lead.
    pub follow_symlinks: bool,
    /// Off (default): any path segment starting with '.' falls through, so `.git/`,
    /// `.env` and friends under a root are never served. `..` is refused either way.
    pub allow_dotfiles: bool,
    /// Serve `file.br` / `file.gz` siblings when Accept-Encoding allows them.
    pub precompressed: bool,
}

impl Default for StaticOptions {
    fn default() -> StaticOptions {
        StaticOptions {
            max_age: None,
            immutable_hashed: false,
            index: false,
            follow_symlinks: false,
            allow_dotfiles: false,
            precompressed: true,
        }
    }
}
