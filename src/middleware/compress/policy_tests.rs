//! Tests for `policy`: each reason a response is or is not compressed.

use super::*;

/// A response every rule lets through; each test changes one fact.
fn html() -> ResponseFacts<'static> {
    ResponseFacts {
        status: 200,
        content_type: Some("text/html; charset=utf-8"),
        content_length: Some(10_000),
        ..ResponseFacts::default()
    }
}

fn allowed(facts: ResponseFacts<'_>) -> bool {
    should_compress(&facts, &CompressOptions::default())
}

#[test]
fn a_large_html_page_is_compressed() {
    assert!(allowed(html()));
}

#[test]
fn full_2xx_answers_and_error_pages_are_compressed() {
    for status in [200, 201, 202, 203, 400, 404, 422, 500, 503] {
        assert!(
            allowed(ResponseFacts { status, ..html() }),
            "status {status}"
        );
    }
}

#[test]
fn bodiless_partial_informational_and_redirect_statuses_are_not() {
    for status in [100, 101, 103, 204, 205, 206, 301, 302, 304, 307, 308] {
        assert!(
            !allowed(ResponseFacts { status, ..html() }),
            "status {status}"
        );
    }
}

#[test]
fn an_already_encoded_response_is_not_compressed_again() {
    for coding in ["gzip", "br", "zstd", "deflate", "x-custom", "gzip, br"] {
        let facts = ResponseFacts {
            content_encoding: Some(coding),
            ..html()
        };
        assert!(!allowed(facts), "Content-Encoding: {coding}");
    }
}

#[test]
fn content_encoding_identity_or_empty_counts_as_none() {
    for coding in ["identity", "IDENTITY", "", "  "] {
        let facts = ResponseFacts {
            content_encoding: Some(coding),
            ..html()
        };
        assert!(allowed(facts), "Content-Encoding: {coding:?}");
    }
}

#[test]
fn cache_control_no_transform_forbids_compression() {
    for value in [
        "no-transform",
        "public, No-Transform",
        "max-age=60 ,no-transform ",
    ] {
        let facts = ResponseFacts {
            cache_control: Some(value),
            ..html()
        };
        assert!(!allowed(facts), "Cache-Control: {value}");
    }
}

#[test]
fn other_cache_control_directives_allow_compression() {
    for value in [
        "public, max-age=60",
        "no-cache",
        "no-store",
        "private=\"x\"",
        "",
    ] {
        let facts = ResponseFacts {
            cache_control: Some(value),
            ..html()
        };
        assert!(allowed(facts), "Cache-Control: {value}");
    }
}

#[test]
fn a_range_answer_is_not_compressed() {
    let facts = ResponseFacts {
        content_range: true,
        ..html()
    };
    assert!(!allowed(facts));
}

#[test]
fn a_head_response_is_not_compressed() {
    let facts = ResponseFacts {
        request_method_head: true,
        ..html()
    };
    assert!(!allowed(facts));
}

#[test]
fn text_json_javascript_xml_svg_and_wasm_are_compressible() {
    for content_type in [
        "text/plain",
        "text/css",
        "text/csv",
        "text/event-stream",
        "TEXT/HTML;charset=UTF-8",
        "application/json",
        "application/json; charset=utf-8",
        "application/javascript",
        "application/xml",
        "application/xhtml+xml",
        "application/problem+json",
        "application/ld+json",
        "application/vnd.api+json",
        "application/rss+xml",
        "application/x-ndjson",
        "application/wasm",
        "image/svg+xml",
        "image/x-icon",
        "font/ttf",
    ] {
        let facts = ResponseFacts {
            content_type: Some(content_type),
            ..html()
        };
        assert!(allowed(facts), "Content-Type: {content_type}");
    }
}

#[test]
fn already_compressed_or_unknown_media_types_are_not() {
    for content_type in [
        "image/png",
        "image/jpeg",
        "image/webp",
        "video/mp4",
        "audio/mpeg",
        "font/woff2",
        "application/zip",
        "application/gzip",
        "application/pdf",
        "application/octet-stream",
        "application/jsonx",
        "application/json-seq-not-really",
        "multipart/form-data; boundary=x",
        "text",
        "/json",
        "text/",
        "",
        ";charset=utf-8",
    ] {
        let facts = ResponseFacts {
            content_type: Some(content_type),
            ..html()
        };
        assert!(!allowed(facts), "Content-Type: {content_type:?}");
    }
}

#[test]
fn a_response_without_content_type_is_not_compressed() {
    let facts = ResponseFacts {
        content_type: None,
        ..html()
    };
    assert!(!allowed(facts));
}

#[test]
fn a_body_below_min_size_is_not_compressed_and_one_at_min_size_is() {
    let options = CompressOptions {
        min_size: 512,
        ..CompressOptions::default()
    };
    let sized = |length| ResponseFacts {
        content_length: Some(length),
        ..html()
    };
    assert!(!should_compress(&sized(511), &options));
    assert!(should_compress(&sized(512), &options));
    assert!(should_compress(&sized(513), &options));
}

#[test]
fn an_empty_body_is_never_compressed() {
    let options = CompressOptions {
        min_size: 0,
        ..CompressOptions::default()
    };
    let facts = ResponseFacts {
        content_length: Some(0),
        ..html()
    };
    assert!(!should_compress(&facts, &options));
}

#[test]
fn a_streamed_body_of_unknown_length_is_compressed() {
    let facts = ResponseFacts {
        content_length: None,
        ..html()
    };
    assert!(allowed(facts));
}
