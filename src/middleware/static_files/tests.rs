//! End-to-end behaviour of `StaticFiles::answer` on real files in a temp dir: what the
//! server and the WSGI object will see. The rules themselves are tested beside each module.

use std::io::{Read, Seek, SeekFrom};

use super::fixture::TempDir;
use super::*;

const CSS: &[u8] = b"body { color: red }\n";

fn files(dir: &TempDir, options: StaticOptions) -> StaticFiles {
    StaticFiles::new(vec![("/static".into(), dir.path().into())], options)
        .expect("test: root exists")
}

fn get(path: &[u8]) -> StaticRequest<'_> {
    StaticRequest {
        method: "GET",
        path,
        ..StaticRequest::default()
    }
}

fn response(answer: StaticAnswer) -> StaticResponse {
    match answer {
        StaticAnswer::Respond(response) => response,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn read_range(file: &mut std::fs::File, offset: u64, len: u64) -> Vec<u8> {
    file.seek(SeekFrom::Start(offset)).expect("test: seek");
    let mut bytes = vec![0; len as usize];
    file.read_exact(&mut bytes).expect("test: read");
    bytes
}

/// The bytes the caller would send for this body.
fn body_bytes(body: StaticBody) -> Vec<u8> {
    match body {
        StaticBody::Empty => Vec::new(),
        StaticBody::File {
            mut file,
            offset,
            len,
        } => read_range(&mut file, offset, len),
        StaticBody::Multipart { mut file, parts } => {
            let mut bytes = Vec::new();
            for part in parts {
                match part {
                    MultipartPiece::Literal(literal) => bytes.extend(literal),
                    MultipartPiece::Range { offset, len } => {
                        bytes.extend(read_range(&mut file, offset, len))
                    }
                }
            }
            bytes
        }
    }
}

fn css_dir() -> TempDir {
    let dir = TempDir::new();
    dir.write("css/app.css", CSS);
    dir
}

#[test]
fn path_outside_every_mount_falls_through() {
    let dir = css_dir();
    let files = files(&dir, StaticOptions::default());
    assert!(matches!(
        files.answer(&get(b"/app/css/app.css")),
        StaticAnswer::FallThrough
    ));
    assert!(!files.claims(b"/app/css/app.css"));
    assert!(files.claims(b"/static/nope"));
}

#[test]
fn missing_file_falls_through() {
    let dir = css_dir();
    let files = files(&dir, StaticOptions::default());
    assert!(matches!(
        files.answer(&get(b"/static/nope.css")),
        StaticAnswer::FallThrough
    ));
}

#[test]
fn traversal_falls_through_like_a_missing_file() {
    let dir = TempDir::new();
    dir.write("secret.txt", b"s");
    let public = dir.mkdir("public");
    let files = StaticFiles::new(vec![("/static".into(), public)], StaticOptions::default())
        .expect("test: root exists");
    for path in [
        &b"/static/../secret.txt"[..],
        b"/static/x/../../secret.txt",
        b"/static/\0",
    ] {
        assert!(matches!(
            files.answer(&get(path)),
            StaticAnswer::FallThrough
        ));
    }
}

#[test]
fn get_serves_the_whole_file_with_its_headers() {
    let dir = css_dir();
    let response =
        response(files(&dir, StaticOptions::default()).answer(&get(b"/static/css/app.css")));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(response.header("Content-Length"), Some("20"));
    assert_eq!(response.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(response.header("Vary"), Some("Accept-Encoding"));
    assert!(response
        .header("ETag")
        .is_some_and(|tag| tag.starts_with("\"14-")));
    assert!(response
        .header("Last-Modified")
        .is_some_and(|date| date.ends_with(" GMT")));
    assert_eq!(response.header("Cache-Control"), None);
    assert_eq!(response.header("Content-Encoding"), None);
    assert_eq!(body_bytes(response.body), CSS);
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    let dir = css_dir();
    let files = files(&dir, StaticOptions::default());
    let request = StaticRequest {
        method: "HEAD",
        ..get(b"/static/css/app.css")
    };
    let head = response(files.answer(&request));
    let get = response(files.answer(&get(b"/static/css/app.css")));
    assert_eq!(head.status, 200);
    assert_eq!(head.headers, get.headers);
    assert!(matches!(head.body, StaticBody::Empty));
}

#[test]
fn other_method_on_an_existing_file_is_method_not_allowed() {
    let dir = css_dir();
    let files = files(&dir, StaticOptions::default());
    for method in ["POST", "PUT", "get"] {
        let request = StaticRequest {
            method,
            ..get(b"/static/css/app.css")
        };
        assert!(matches!(
            files.answer(&request),
            StaticAnswer::MethodNotAllowed
        ));
    }
    let missing = StaticRequest {
        method: "POST",
        ..get(b"/static/nope.css")
    };
    assert!(matches!(files.answer(&missing), StaticAnswer::FallThrough));
}

#[test]
fn matching_if_none_match_is_304_with_validators_and_cache_headers() {
    let dir = css_dir();
    let options = StaticOptions {
        max_age: Some(60),
        ..StaticOptions::default()
    };
    let files = files(&dir, options);
    let first = response(files.answer(&get(b"/static/css/app.css")));
    let etag = first.header("ETag").expect("test: etag").to_owned();
    let request = StaticRequest {
        if_none_match: Some(&etag),
        ..get(b"/static/css/app.css")
    };
    let not_modified = response(files.answer(&request));
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("ETag"), Some(etag.as_str()));
    assert_eq!(
        not_modified.header("Last-Modified"),
        first.header("Last-Modified")
    );
    assert_eq!(
        not_modified.header("Cache-Control"),
        Some("public, max-age=60")
    );
    assert_eq!(not_modified.header("Vary"), Some("Accept-Encoding"));
    assert_eq!(not_modified.header("Content-Length"), None);
    assert!(matches!(not_modified.body, StaticBody::Empty));
}

#[test]
fn if_modified_since_the_last_modification_is_304() {
    let dir = css_dir();
    let files = files(&dir, StaticOptions::default());
    let first = response(files.answer(&get(b"/static/css/app.css")));
    let since = first
        .header("Last-Modified")
        .expect("test: date")
        .to_owned();
    let request = StaticRequest {
        if_modified_since: Some(&since),
        ..get(b"/static/css/app.css")
    };
    assert_eq!(response(files.answer(&request)).status, 304);
    let old = StaticRequest {
        if_modified_since: Some("Thu, 01 Jan 1998 00:00:00 GMT"),
        ..get(b"/static/css/app.css")
    };
    assert_eq!(response(files.answer(&old)).status, 200);
}

#[test]
fn single_range_is_206_with_content_range() {
    let dir = css_dir();
    let request = StaticRequest {
        range: Some("bytes=0-3"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.status, 206);
    assert_eq!(response.header("Content-Range"), Some("bytes 0-3/20"));
    assert_eq!(response.header("Content-Length"), Some("4"));
    assert_eq!(
        response.header("Content-Type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(body_bytes(response.body), b"body");
}

#[test]
fn several_ranges_are_multipart_byteranges() {
    let dir = css_dir();
    let request = StaticRequest {
        range: Some("bytes=-2,0-3"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.status, 206);
    let content_type = response
        .header("Content-Type")
        .expect("test: type")
        .to_owned();
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("test: multipart type");
    let length: usize = response
        .header("Content-Length")
        .expect("test: length")
        .parse()
        .unwrap();
    let body = body_bytes(response.body);
    assert_eq!(body.len(), length);
    let expected = format!(
        "--{boundary}\r\nContent-Type: text/css; charset=utf-8\r\nContent-Range: bytes 0-3/20\r\n\r\nbody\
         \r\n--{boundary}\r\nContent-Type: text/css; charset=utf-8\r\nContent-Range: bytes 18-19/20\r\n\r\n}}\n\
         \r\n--{boundary}--\r\n"
    );
    assert_eq!(String::from_utf8(body).unwrap(), expected);
}

#[test]
fn unsatisfiable_range_is_416_with_the_size() {
    let dir = css_dir();
    let request = StaticRequest {
        range: Some("bytes=100-"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.status, 416);
    assert_eq!(response.header("Content-Range"), Some("bytes */20"));
    assert_eq!(response.header("Content-Length"), Some("0"));
    assert!(matches!(response.body, StaticBody::Empty));
}

#[test]
fn malformed_range_serves_the_whole_file() {
    let dir = css_dir();
    let request = StaticRequest {
        range: Some("bytes=3-1"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.status, 200);
    assert_eq!(body_bytes(response.body), CSS);
}

#[test]
fn if_range_decides_between_range_and_whole_file() {
    let dir = css_dir();
    let files = files(&dir, StaticOptions::default());
    let first = response(files.answer(&get(b"/static/css/app.css")));
    let etag = first.header("ETag").expect("test: etag").to_owned();
    let current = StaticRequest {
        range: Some("bytes=0-3"),
        if_range: Some(&etag),
        ..get(b"/static/css/app.css")
    };
    assert_eq!(response(files.answer(&current)).status, 206);
    let stale = StaticRequest {
        if_range: Some("\"stale\""),
        ..current
    };
    let whole = response(files.answer(&stale));
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("Content-Length"), Some("20"));
}

#[test]
fn head_of_a_range_has_the_206_headers_and_no_body() {
    let dir = css_dir();
    let request = StaticRequest {
        method: "HEAD",
        range: Some("bytes=0-3"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.status, 206);
    assert_eq!(response.header("Content-Length"), Some("4"));
    assert!(matches!(response.body, StaticBody::Empty));
}

fn precompressed_dir() -> TempDir {
    let dir = css_dir();
    dir.write("css/app.css.br", b"BROTLI");
    dir.write("css/app.css.gz", b"GZIP!!!");
    dir
}

#[test]
fn brotli_sibling_served_when_accepted() {
    let dir = precompressed_dir();
    let request = StaticRequest {
        accept_encoding: Some("gzip, deflate, br"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Encoding"), Some("br"));
    assert_eq!(
        response.header("Content-Type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(response.header("Content-Length"), Some("6"));
    assert_eq!(response.header("Vary"), Some("Accept-Encoding"));
    assert!(response
        .header("ETag")
        .is_some_and(|tag| tag.ends_with("-br\"")));
    assert_eq!(body_bytes(response.body), b"BROTLI");
}

#[test]
fn gzip_sibling_served_when_brotli_is_refused() {
    let dir = precompressed_dir();
    let request = StaticRequest {
        accept_encoding: Some("br;q=0, gzip"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.header("Content-Encoding"), Some("gzip"));
    assert_eq!(body_bytes(response.body), b"GZIP!!!");
}

#[test]
fn missing_preferred_sibling_falls_back_to_the_next() {
    let dir = css_dir();
    dir.write("css/app.css.gz", b"GZIP!!!");
    let request = StaticRequest {
        accept_encoding: Some("br, gzip"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.header("Content-Encoding"), Some("gzip"));
}

#[test]
fn no_accept_encoding_serves_the_file_itself() {
    let dir = precompressed_dir();
    let response =
        response(files(&dir, StaticOptions::default()).answer(&get(b"/static/css/app.css")));
    assert_eq!(response.header("Content-Encoding"), None);
    assert_eq!(body_bytes(response.body), CSS);
}

#[test]
fn precompressed_off_ignores_siblings_and_sends_no_vary() {
    let dir = precompressed_dir();
    let options = StaticOptions {
        precompressed: false,
        ..StaticOptions::default()
    };
    let request = StaticRequest {
        accept_encoding: Some("br, gzip"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, options).answer(&request));
    assert_eq!(response.header("Content-Encoding"), None);
    assert_eq!(response.header("Vary"), None);
    assert_eq!(body_bytes(response.body), CSS);
}

#[test]
fn range_request_is_served_from_the_uncompressed_file() {
    let dir = precompressed_dir();
    let request = StaticRequest {
        accept_encoding: Some("br, gzip"),
        range: Some("bytes=0-3"),
        ..get(b"/static/css/app.css")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.status, 206);
    assert_eq!(response.header("Content-Encoding"), None);
    assert_eq!(response.header("Vary"), Some("Accept-Encoding"));
    assert_eq!(body_bytes(response.body), b"body");
}

#[cfg(unix)]
#[test]
fn precompressed_sibling_escaping_the_root_is_not_served() {
    let dir = TempDir::new();
    dir.write("public/app.css", CSS);
    dir.write("outside.br", b"OUTSIDE");
    std::os::unix::fs::symlink(
        dir.path().join("outside.br"),
        dir.path().join("public/app.css.br"),
    )
    .unwrap();
    let files = StaticFiles::new(
        vec![("/static".into(), dir.path().join("public"))],
        StaticOptions::default(),
    )
    .expect("test: root exists");
    let request = StaticRequest {
        accept_encoding: Some("br"),
        ..get(b"/static/app.css")
    };
    let response = response(files.answer(&request));
    assert_eq!(response.header("Content-Encoding"), None);
    assert_eq!(body_bytes(response.body), CSS);
}

#[test]
fn hashed_name_is_cached_as_immutable() {
    let dir = TempDir::new();
    dir.write("app.3f2a9c1b.js", b"1");
    let options = StaticOptions {
        immutable_hashed: true,
        ..StaticOptions::default()
    };
    let response = response(files(&dir, options).answer(&get(b"/static/app.3f2a9c1b.js")));
    assert_eq!(
        response.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
}

fn index_files(dir: &TempDir) -> StaticFiles {
    let options = StaticOptions {
        index: true,
        ..StaticOptions::default()
    };
    files(dir, options)
}

#[test]
fn directory_with_slash_serves_index_html() {
    let dir = TempDir::new();
    dir.write("docs/index.html", b"<h1>docs</h1>");
    let response = response(index_files(&dir).answer(&get(b"/static/docs/")));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(body_bytes(response.body), b"<h1>docs</h1>");
}

#[test]
fn directory_without_slash_is_301_to_the_slash_form() {
    let dir = TempDir::new();
    dir.write("docs/index.html", b"<h1>docs</h1>");
    let files = index_files(&dir);
    let response = response(files.answer(&get(b"/static/docs")));
    assert_eq!(response.status, 301);
    assert_eq!(response.header("Location"), Some("docs/"));
    assert_eq!(response.header("Content-Length"), Some("0"));
    assert!(matches!(response.body, StaticBody::Empty));
    let post = StaticRequest {
        method: "POST",
        ..get(b"/static/docs")
    };
    assert!(matches!(
        files.answer(&post),
        StaticAnswer::MethodNotAllowed
    ));
}

#[test]
fn directory_falls_through_without_index_option() {
    let dir = TempDir::new();
    dir.write("docs/index.html", b"<h1>docs</h1>");
    let files = files(&dir, StaticOptions::default());
    assert!(matches!(
        files.answer(&get(b"/static/docs/")),
        StaticAnswer::FallThrough
    ));
    assert!(matches!(
        files.answer(&get(b"/static/docs")),
        StaticAnswer::FallThrough
    ));
}

#[test]
fn empty_file_is_200_with_zero_length() {
    let dir = TempDir::new();
    dir.write("empty.txt", b"");
    let request = StaticRequest {
        range: Some("bytes=0-10"),
        ..get(b"/static/empty.txt")
    };
    let response = response(files(&dir, StaticOptions::default()).answer(&request));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Length"), Some("0"));
    assert!(matches!(response.body, StaticBody::Empty));
}

#[test]
fn unknown_extension_is_octet_stream() {
    let dir = TempDir::new();
    dir.write("data.zzzunknown", b"x");
    let response =
        response(files(&dir, StaticOptions::default()).answer(&get(b"/static/data.zzzunknown")));
    assert_eq!(
        response.header("Content-Type"),
        Some("application/octet-stream")
    );
}
