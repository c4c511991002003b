//! The TLS settings turned into a rustls configuration, and the errors that name the setting.

use super::*;
use crate::config::HttpVersions;
use crate::config::Settings;

fn settings(args: &[&str]) -> TlsSettings {
    let mut argv = vec!["ferrogate"];
    argv.extend_from_slice(args);
    <Settings as clap::Parser>::try_parse_from(argv)
        .expect("valid flags")
        .tls
}

#[test]
fn no_certificate_no_configuration() {
    assert!(ServerTls::from_settings(&settings(&[]), HttpVersions::Auto)
        .unwrap()
        .is_none());
}

#[test]
fn an_unknown_cipher_is_named_with_the_known_ones() {
    let error = provider(Some("TLS13_AES_128_GCM_SHA256, RC4-MD5")).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("--ciphers: unknown cipher suite \"RC4-MD5\""),
        "{text}"
    );
    assert!(text.contains("TLS13_CHACHA20_POLY1305_SHA256"), "{text}");
}

#[test]
fn ciphers_narrow_the_suites_and_the_versions_follow() {
    let only13 = provider(Some("tls13_aes_256_gcm_sha384")).unwrap();
    assert_eq!(only13.cipher_suites.len(), 1);
    let versions = versions(TlsVersion::Tls12, &only13).unwrap();
    assert_eq!(versions, vec![&rustls::version::TLS13]);
    let only12 = provider(Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")).unwrap();
    assert!(versions_error(TlsVersion::Tls13, &only12).contains("--ciphers"));
}

fn versions_error(min: TlsVersion, provider: &CryptoProvider) -> String {
    versions(min, provider).unwrap_err().to_string()
}

#[test]
fn default_versions_are_1_3_and_1_2_and_min_1_3_drops_1_2() {
    #[allow(deprecated)]
    let all = rustls::crypto::ring::default_provider();
    assert_eq!(versions(TlsVersion::Tls12, &all).unwrap().len(), 2);
    assert_eq!(
        versions(TlsVersion::Tls13, &all).unwrap(),
        vec![&rustls::version::TLS13]
    );
}

#[test]
fn a_missing_certificate_file_is_named() {
    let error = ServerTls::from_settings(
        &settings(&["--certfile", "/nonexistent/cert.pem"]),
        HttpVersions::Auto,
    )
    .expect_err("refused");
    assert!(
        error
            .to_string()
            .starts_with("--certfile /nonexistent/cert.pem: "),
        "{error}"
    );
}

#[test]
fn cert_reqs_without_ca_certs_is_refused() {
    let tls = settings(&["--cert-reqs", "optional"]);
    let error = client_verifier(&tls, Arc::new(provider(None).unwrap())).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "--cert-reqs: optional needs --ca-certs, the CAs client certificates must chain to"
    );
}
