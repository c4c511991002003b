//! The content codings this layer can produce (RFC 9110 §8.4.1): their tokens as they
//! appear in `Accept-Encoding` / `Content-Encoding`, and each codec's compression levels.
//! Knows nothing of negotiation, policy or the codec crates; `negotiate`, `headers` and
//! `encoder` all speak in terms of [`Encoding`].

/// A content coding we can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `br` (RFC 7932): best ratio for text at on-the-fly levels; every current browser.
    Brotli,
    /// `zstd` (RFC 8878): fastest per byte; Chromium and Firefox accept it.
    Zstd,
    /// `gzip` (RFC 1952): the one every client understands.
    Gzip,
}

impl Encoding {
    /// Every coding, in the default server preference order (best ratio first).
    pub const ALL: [Encoding; 3] = [Encoding::Brotli, Encoding::Zstd, Encoding::Gzip];

    /// The coding's token for `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    /// The coding a request token names, if we produce it. Tokens are case-insensitive
    /// (RFC 9110 §8.4.1), and `x-gzip` is gzip (RFC 9110 §8.4.1.3: "A recipient SHOULD
    /// consider "x-gzip" to be equivalent to "gzip"").
    pub fn from_token(token: &str) -> Option<Encoding> {
        Encoding::ALL
            .into_iter()
            .find(|encoding| token.eq_ignore_ascii_case(encoding.token()))
            .or_else(|| {
                token
                    .eq_ignore_ascii_case("x-gzip")
                    .then_some(Encoding::Gzip)
            })
    }

    /// The level to use: the configured one clamped into what the codec accepts, or the
    /// codec's sensible default for compressing while serving (speed matters more than the
    /// last few percent: gzip 6 is zlib's own default, brotli 4 and zstd 3 are where their
    /// ratio beats gzip 6 at a similar or lower CPU cost).
    pub fn level(self, configured: Option<u32>) -> u32 {
        let (default, min, max) = match self {
            Encoding::Gzip => (6, 1, 9),
            Encoding::Brotli => (4, 0, 11),
            // zstd goes to 22, but levels above 19 need windows of up to 128 MiB per stream
            // (the library calls them "ultra"): never wanted for one response among many.
            Encoding::Zstd => (3, 1, 19),
        };
        configured.map_or(default, |level| level.clamp(min, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_the_registered_names() {
        assert_eq!(Encoding::Brotli.token(), "br");
        assert_eq!(Encoding::Zstd.token(), "zstd");
        assert_eq!(Encoding::Gzip.token(), "gzip");
    }

    #[test]
    fn tokens_parse_case_insensitively_and_x_gzip_is_gzip() {
        assert_eq!(Encoding::from_token("BR"), Some(Encoding::Brotli));
        assert_eq!(Encoding::from_token("Zstd"), Some(Encoding::Zstd));
        assert_eq!(Encoding::from_token("x-gzip"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_token("deflate"), None);
        assert_eq!(Encoding::from_token(""), None);
    }

    #[test]
    fn levels_default_per_codec_and_clamp_into_range() {
        assert_eq!(Encoding::Gzip.level(None), 6);
        assert_eq!(Encoding::Brotli.level(None), 4);
        assert_eq!(Encoding::Zstd.level(None), 3);
        assert_eq!(Encoding::Gzip.level(Some(0)), 1);
        assert_eq!(Encoding::Gzip.level(Some(42)), 9);
        assert_eq!(Encoding::Brotli.level(Some(0)), 0);
        assert_eq!(Encoding::Brotli.level(Some(99)), 11);
        assert_eq!(Encoding::Zstd.level(Some(22)), 19);
    }
}
