//! Tests for `negotiate`: Accept-Encoding parsing and the choice of coding.

use super::*;

fn defaults() -> CompressOptions {
    CompressOptions::default()
}

fn only(encodings: &[Encoding]) -> CompressOptions {
    CompressOptions {
        encodings: encodings.to_vec(),
        ..CompressOptions::default()
    }
}

fn chosen(field: &str) -> Option<Encoding> {
    choose(Some(field), &defaults())
}

#[test]
fn no_accept_encoding_means_no_compression() {
    assert_eq!(choose(None, &defaults()), None);
}

#[test]
fn empty_accept_encoding_means_no_compression() {
    assert_eq!(chosen(""), None);
    assert_eq!(chosen("  ,  , "), None);
}

#[test]
fn a_single_known_coding_is_chosen() {
    assert_eq!(chosen("gzip"), Some(Encoding::Gzip));
    assert_eq!(chosen("zstd"), Some(Encoding::Zstd));
    assert_eq!(chosen("br"), Some(Encoding::Brotli));
}

#[test]
fn equal_weights_follow_the_server_preference_not_the_client_order() {
    assert_eq!(chosen("gzip, deflate, br, zstd"), Some(Encoding::Brotli));
    assert_eq!(chosen("gzip, zstd"), Some(Encoding::Zstd));
    assert_eq!(
        choose(Some("br, gzip"), &only(&[Encoding::Gzip, Encoding::Brotli])),
        Some(Encoding::Gzip)
    );
}

#[test]
fn a_higher_q_value_beats_the_server_preference() {
    assert_eq!(chosen("br;q=0.5, gzip;q=0.8"), Some(Encoding::Gzip));
    assert_eq!(chosen("br;q=0.001, gzip;q=0.002"), Some(Encoding::Gzip));
    assert_eq!(chosen("gzip;q=0.9, br"), Some(Encoding::Brotli));
}

#[test]
fn q_zero_refuses_a_coding() {
    assert_eq!(chosen("br;q=0, gzip"), Some(Encoding::Gzip));
    assert_eq!(chosen("gzip;q=0"), None);
    assert_eq!(chosen("gzip;q=0.000"), None);
}

#[test]
fn wildcard_accepts_every_coding_not_named() {
    assert_eq!(chosen("*"), Some(Encoding::Brotli));
    assert_eq!(chosen("br;q=0, *"), Some(Encoding::Zstd));
    assert_eq!(chosen("*;q=0.5, gzip"), Some(Encoding::Gzip));
}

#[test]
fn wildcard_q_zero_refuses_everything_not_named() {
    assert_eq!(chosen("*;q=0"), None);
    assert_eq!(chosen("gzip, *;q=0"), Some(Encoding::Gzip));
}

#[test]
fn identity_and_unknown_codings_are_ignored() {
    assert_eq!(chosen("identity"), None);
    assert_eq!(chosen("identity;q=0, gzip"), Some(Encoding::Gzip));
    assert_eq!(chosen("deflate, compress, exi"), None);
}

#[test]
fn only_the_codings_the_server_allows_are_chosen() {
    assert_eq!(choose(Some("br, zstd"), &only(&[Encoding::Gzip])), None);
    assert_eq!(choose(Some("*"), &only(&[])), None);
    assert_eq!(
        choose(Some("br, gzip"), &only(&[Encoding::Gzip])),
        Some(Encoding::Gzip)
    );
}

#[test]
fn tokens_and_parameter_names_are_case_insensitive_and_x_gzip_counts() {
    assert_eq!(chosen("GZIP;Q=1"), Some(Encoding::Gzip));
    assert_eq!(chosen("x-gzip"), Some(Encoding::Gzip));
    assert_eq!(chosen("  br ;  q=1.0 "), Some(Encoding::Brotli));
}

#[test]
fn a_coding_listed_twice_takes_its_lower_weight() {
    assert_eq!(chosen("br, br;q=0, gzip"), Some(Encoding::Gzip));
    assert_eq!(
        chosen("br;q=0.2, br;q=0.9, gzip;q=0.5"),
        Some(Encoding::Gzip)
    );
}

#[test]
fn entries_with_malformed_q_values_are_ignored() {
    // Each malformed `br` entry is dropped; the well-formed `gzip` is still honoured.
    for field in [
        "br;q=2, gzip;q=0.1",
        "br;q=1.5, gzip;q=0.1",
        "br;q=0.1234, gzip;q=0.1",
        "br;q=-1, gzip;q=0.1",
        "br;q=, gzip;q=0.1",
        "br;q=abc, gzip;q=0.1",
        "br;q=.5, gzip;q=0.1",
        "br;q, gzip;q=0.1",
        "br;q=1.01, gzip;q=0.1",
    ] {
        assert_eq!(chosen(field), Some(Encoding::Gzip), "field: {field}");
    }
}

#[test]
fn parameters_other_than_q_are_skipped() {
    assert_eq!(chosen("br;level=5"), Some(Encoding::Brotli));
}

#[test]
fn garbage_never_panics() {
    for field in [
        ";;;",
        ",;=,",
        "q=1",
        ";q=1",
        "\u{0}\u{7f}",
        "br;q=0.\u{e9}",
        "gzip;q=0.9\u{301}",
        "\"br\", gzip\"",
        "*;*;*",
        "é, ü;q=1",
    ] {
        let _ = chosen(field);
    }
    assert_eq!(chosen("br;q=0.\u{e9}, gzip"), Some(Encoding::Gzip));
}

#[test]
fn qvalue_grammar_is_exact() {
    assert_eq!(parse_qvalue("1"), Some(1000));
    assert_eq!(parse_qvalue("1."), Some(1000));
    assert_eq!(parse_qvalue("1.000"), Some(1000));
    assert_eq!(parse_qvalue("0"), Some(0));
    assert_eq!(parse_qvalue("0.5"), Some(500));
    assert_eq!(parse_qvalue("0.05"), Some(50));
    assert_eq!(parse_qvalue("0.999"), Some(999));
    assert_eq!(parse_qvalue("1.001"), None);
    assert_eq!(parse_qvalue("0.1234"), None);
    assert_eq!(parse_qvalue("00.5"), None);
    assert_eq!(parse_qvalue(""), None);
}
