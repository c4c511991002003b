//! URL path → file on disk, traversal-proof. Owns the segment rules (no `..`, no
//! backslashes, no NUL, no drive letters, dotfiles only when allowed), the containment
//! check (symlinks leaving the root), "regular files only", and the
//! directory rules (index.html, the redirect adding a '/'); root.rs does the opening, with
//! the kernel's containment check. Knows nothing of headers,
//! methods or encodings; answers "this file", "redirect there" or "nothing here".
//!
//! Every refusal looks exactly like a missing file (SharedDataMiddleware's behaviour), so a
//! client cannot probe what exists outside the root or behind a dotfile.

use std::ffi::OsStr;
use std::path::PathBuf;

use super::options::StaticOptions;
use super::root::{Opened, Root};

/// The name served for a directory request when `StaticOptions::index` is on.
const INDEX_FILE: &str = "index.html";

/// What the path names under a mount.
#[derive(Debug)]
pub(super) enum Resolution {
    File(ResolvedFile),
    /// A directory requested without its trailing '/', whose index exists: redirect to the
    /// value, a relative reference (see `directory_location`).
    AddSlash(String),
    /// Missing, refused, or not a regular file: all the same to the client.
    Nothing,
}

#[derive(Debug)]
pub(super) struct ResolvedFile {
    /// The path as requested, relative to the root (not canonical): its name picks the MIME
    /// type and the cache rule, and precompressed siblings are looked for next to it.
    pub(super) requested: PathBuf,
    /// The file itself, already open: what was checked is what gets read.
    pub(super) opened: Opened,
}

/// Resolves `rest` (the decoded path after the mount prefix, "" or starting with '/')
/// below `root`. `full_path` is the whole request path, used only to name the directory in
/// a redirect. Blocking (opens files): run it off the I/O thread.
pub(super) fn resolve(
    root: &Root,
    rest: &[u8],
    full_path: &[u8],
    options: &StaticOptions,
) -> Resolution {
    let Some(requested) = relative_path(rest, options) else {
        return Resolution::Nothing;
    };
    let Some(opened) = root.open_below(&requested, options.follow_symlinks) else {
        return Resolution::Nothing;
    };
    let wants_directory = rest.last() == Some(&b'/');
    if opened.metadata.is_file() {
        // "/app.css/" names a directory that is not there: nginx answers 404 (ENOTDIR).
        return match wants_directory {
            true => Resolution::Nothing,
            false => Resolution::File(ResolvedFile { requested, opened }),
        };
    }
    if !opened.metadata.is_dir() || !options.index {
        // Devices, fifos and sockets are never served: reading one could block forever or
        // expose something that is not a file's content.
        return Resolution::Nothing;
    }
    let index = requested.join(INDEX_FILE);
    let Some(index_opened) = root.open_below(&index, options.follow_symlinks) else {
        return Resolution::Nothing;
    };
    if !index_opened.metadata.is_file() {
        return Resolution::Nothing;
    }
    if wants_directory {
        return Resolution::File(ResolvedFile {
            requested: index,
            opened: index_opened,
        });
    }
    match directory_location(full_path) {
        Some(location) => Resolution::AddSlash(location),
        None => Resolution::Nothing,
    }
}

/// The relative path named by the decoded `rest`, or `None` when a segment is refused.
/// Empty segments ("//") are skipped: joining segment by segment means none of them can
/// make the path absolute.
fn relative_path(rest: &[u8], options: &StaticOptions) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for segment in rest.split(|&byte| byte == b'/') {
        if segment.is_empty() {
            continue;
        }
        if !is_allowed_segment(segment, options) {
            return None;
        }
        relative.push(segment_os_str(segment)?);
    }
    Some(relative)
}

fn is_allowed_segment(segment: &[u8], options: &StaticOptions) -> bool {
    // The path is already percent-decoded, so "%2e%2e" arrives here as "..", "%5c" as a
    // backslash (a separator on Windows) and "%00" as a NUL (truncates C paths).
    if segment == b"." || segment == b".." {
        return false;
    }
    if segment.iter().any(|&byte| byte == b'\\' || byte == 0) {
        return false;
    }
    if segment[0] == b'.' && !options.allow_dotfiles {
        return false;
    }
    // "C:" would make the joined path absolute on Windows; refused everywhere so the rule
    // does not depend on the platform.
    if segment.len() >= 2 && segment[0].is_ascii_alphabetic() && segment[1] == b':' {
        return false;
    }
    // Windows: "name:stream" addresses an alternate data stream of another file.
    if cfg!(windows) && segment.contains(&b':') {
        return false;
    }
    true
}

#[cfg(unix)]
fn segment_os_str(segment: &[u8]) -> Option<&OsStr> {
    // PEP 3333 paths are bytes; Unix file names are bytes too, so non-UTF-8 names work.
    Some(std::os::unix::ffi::OsStrExt::from_bytes(segment))
}

#[cfg(not(unix))]
fn segment_os_str(segment: &[u8]) -> Option<&OsStr> {
    std::str::from_utf8(segment).ok().map(OsStr::new)
}

/// The `Location` for a directory asked for without its '/': the last segment plus '/',
/// percent-encoded, as a relative reference (RFC 9110 §10.2.2 allows one; RFC 3986 §5.2
/// resolves it against the request URL). Relative because this layer sees the path after
/// any SCRIPT_NAME: "/static/docs" → "docs/" lands on "/static/docs/" wherever the app is
/// mounted. The caller appends the query string if it wants to keep it. `None` when the
/// path has no last segment to name (an empty PATH_INFO): the caller's own rules apply.
fn directory_location(full_path: &[u8]) -> Option<String> {
    let name = full_path.rsplit(|&byte| byte == b'/').next()?;
    if name.is_empty() {
        return None;
    }
    Some(format!(
        "{}/",
        percent_encoding::percent_encode(name, SEGMENT)
    ))
}

/// Bytes escaped in a path segment of the `Location`: controls, non-ASCII, and the
/// characters with a meaning in a URI reference. ':' is escaped so "a:b/" is not read as a
/// scheme (RFC 3986 §4.2).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
