use super::*;
use crate::middleware::static_files::fixture::TempDir;

fn root(dir: &TempDir) -> Root {
    Root::open(dir.path()).expect("test: temp dir is a root")
}

fn resolve_default(dir: &TempDir, rest: &[u8]) -> Resolution {
    resolve(&root(dir), rest, rest, &StaticOptions::default())
}

fn file_name(resolution: Resolution) -> Option<String> {
    match resolution {
        Resolution::File(file) => Some(
            file.requested
                .file_name()
                .expect("test: a file has a name")
                .to_string_lossy()
                .into_owned(),
        ),
        _ => None,
    }
}

#[test]
fn nested_file_resolves() {
    let dir = TempDir::new();
    dir.write("css/app.css", b"body{}");
    assert_eq!(
        file_name(resolve_default(&dir, b"/css/app.css")).as_deref(),
        Some("app.css")
    );
}

#[test]
fn dot_dot_segment_is_refused_even_when_the_target_exists() {
    let dir = TempDir::new();
    dir.write("public/a.txt", b"a");
    dir.write("secret.txt", b"s");
    let public = Root::open(&dir.path().join("public")).unwrap();
    let options = StaticOptions::default();
    for rest in [&b"/../secret.txt"[..], b"/x/../a.txt", b"/..", b"/./a.txt"] {
        let resolution = resolve(&public, rest, rest, &options);
        assert!(matches!(resolution, Resolution::Nothing), "{rest:?}");
    }
}

#[test]
fn decoded_slash_inside_a_segment_is_just_a_separator() {
    // "/css%2Fapp.css" decoded by the caller is "/css/app.css": the same file, no bypass.
    let dir = TempDir::new();
    dir.write("css/app.css", b"body{}");
    assert!(file_name(resolve_default(&dir, b"/css/app.css")).is_some());
    // "%2e%2e%2f" decodes to "../": still a ".." segment.
    assert!(matches!(
        resolve_default(&dir, b"/css/../css/app.css"),
        Resolution::Nothing
    ));
}

#[test]
fn backslash_and_nul_are_refused() {
    let dir = TempDir::new();
    dir.write("a.txt", b"a");
    for rest in [&b"/..\\a.txt"[..], b"/a.txt\0.png", b"/\\a.txt"] {
        assert!(matches!(resolve_default(&dir, rest), Resolution::Nothing));
    }
}

#[test]
fn drive_letter_segment_is_refused() {
    let dir = TempDir::new();
    dir.write("C:/a.txt", b"a");
    assert!(matches!(
        resolve_default(&dir, b"/C:/a.txt"),
        Resolution::Nothing
    ));
}

#[test]
fn empty_segments_cannot_make_the_path_absolute() {
    let dir = TempDir::new();
    dir.write("etc/passwd", b"inside the root");
    let Resolution::File(file) = resolve_default(&dir, b"//etc//passwd") else {
        panic!("the doubled slashes are skipped");
    };
    assert!(file.requested.is_relative() && file.opened.metadata.is_file());
}

#[test]
fn dotfiles_are_refused_unless_allowed() {
    let dir = TempDir::new();
    dir.write(".env", b"SECRET=1");
    dir.write(".well-known/security.txt", b"x");
    assert!(matches!(
        resolve_default(&dir, b"/.env"),
        Resolution::Nothing
    ));
    assert!(matches!(
        resolve_default(&dir, b"/.well-known/security.txt"),
        Resolution::Nothing
    ));
    let allowed = StaticOptions {
        allow_dotfiles: true,
        ..StaticOptions::default()
    };
    let rest = b"/.well-known/security.txt";
    assert!(file_name(resolve(&root(&dir), rest, rest, &allowed)).is_some());
    // ".." stays refused with dotfiles allowed.
    let rest = b"/.well-known/../.env";
    assert!(matches!(
        resolve(&root(&dir), rest, rest, &allowed),
        Resolution::Nothing
    ));
}

#[cfg(unix)]
#[test]
fn symlink_escaping_the_root_is_refused_unless_followed() {
    let dir = TempDir::new();
    dir.write("outside/secret.txt", b"s");
    let public = dir.mkdir("public");
    std::os::unix::fs::symlink(dir.path().join("outside"), public.join("link")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside/secret.txt"), public.join("f")).unwrap();
    let public = Root::open(&public).unwrap();
    let rest = b"/link/secret.txt";
    let refused = resolve(&public, rest, rest, &StaticOptions::default());
    assert!(matches!(refused, Resolution::Nothing));
    assert!(matches!(
        resolve(&public, b"/f", b"/f", &StaticOptions::default()),
        Resolution::Nothing
    ));
    let follow = StaticOptions {
        follow_symlinks: true,
        ..StaticOptions::default()
    };
    assert!(file_name(resolve(&public, rest, rest, &follow)).is_some());
}

#[cfg(unix)]
#[test]
fn symlink_inside_the_root_is_served() {
    let dir = TempDir::new();
    dir.write("real/app.js", b"x");
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
    let Resolution::File(file) = resolve_default(&dir, b"/alias/app.js") else {
        panic!("a symlink staying inside the root is fine");
    };
    assert!(file.requested.ends_with("alias/app.js"));
    assert!(file.opened.metadata.is_file());
}

#[cfg(unix)]
#[test]
fn non_utf8_name_is_served_as_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new();
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(dir.path().join(name), b"x").unwrap();
    assert!(file_name(resolve_default(&dir, b"/caf\xe9.txt")).is_some());
}

#[cfg(unix)]
#[test]
fn fifo_is_not_served() {
    let dir = TempDir::new();
    let fifo = dir.path().join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(matches!(
        resolve_default(&dir, b"/pipe"),
        Resolution::Nothing
    ));
}

#[test]
fn missing_file_is_nothing() {
    let dir = TempDir::new();
    assert!(matches!(
        resolve_default(&dir, b"/nope.txt"),
        Resolution::Nothing
    ));
}

#[test]
fn file_with_trailing_slash_is_nothing() {
    let dir = TempDir::new();
    dir.write("app.css", b"x");
    assert!(matches!(
        resolve_default(&dir, b"/app.css/"),
        Resolution::Nothing
    ));
}

#[test]
fn directory_is_nothing_without_index_option() {
    let dir = TempDir::new();
    dir.write("docs/index.html", b"<p>");
    assert!(matches!(
        resolve_default(&dir, b"/docs/"),
        Resolution::Nothing
    ));
    assert!(matches!(
        resolve_default(&dir, b"/docs"),
        Resolution::Nothing
    ));
}

#[test]
fn directory_with_slash_serves_its_index() {
    let dir = TempDir::new();
    dir.write("docs/index.html", b"<p>");
    let index = StaticOptions {
        index: true,
        ..StaticOptions::default()
    };
    let resolution = resolve(&root(&dir), b"/docs/", b"/docs/", &index);
    assert_eq!(file_name(resolution).as_deref(), Some("index.html"));
    let resolution = resolve(&root(&dir), b"/", b"/", &index);
    assert!(matches!(resolution, Resolution::Nothing), "no root index");
}

#[test]
fn directory_without_slash_redirects_relative_to_its_name() {
    let dir = TempDir::new();
    dir.write("my docs/index.html", b"<p>");
    let index = StaticOptions {
        index: true,
        ..StaticOptions::default()
    };
    let resolution = resolve(&root(&dir), b"/my docs", b"/static/my docs", &index);
    let Resolution::AddSlash(location) = resolution else {
        panic!("expected a redirect, got {resolution:?}");
    };
    assert_eq!(location, "my%20docs/");
}

#[test]
fn mount_root_without_slash_redirects_to_the_prefix_name() {
    let dir = TempDir::new();
    dir.write("index.html", b"<p>");
    let index = StaticOptions {
        index: true,
        ..StaticOptions::default()
    };
    let resolution = resolve(&root(&dir), b"", b"/static", &index);
    assert!(matches!(resolution, Resolution::AddSlash(ref l) if l == "static/"));
    // An empty path has no name to redirect to.
    assert!(matches!(
        resolve(&root(&dir), b"", b"", &index),
        Resolution::Nothing
    ));
}

#[test]
fn directory_without_index_file_is_nothing_even_with_index_option() {
    let dir = TempDir::new();
    dir.mkdir("empty");
    let index = StaticOptions {
        index: true,
        ..StaticOptions::default()
    };
    for rest in [&b"/empty"[..], b"/empty/"] {
        assert!(matches!(
            resolve(&root(&dir), rest, rest, &index),
            Resolution::Nothing
        ));
    }
}

#[test]
fn location_escapes_colon_so_it_is_not_a_scheme() {
    assert_eq!(directory_location(b"/s/a:b").as_deref(), Some("a%3Ab/"));
    assert_eq!(
        directory_location(b"/s/\xc3\xa9").as_deref(),
        Some("%C3%A9/")
    );
}
