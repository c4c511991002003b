//! Precompressed siblings: which content codings the client accepts (Accept-Encoding,
//! RFC 9110 §12.5.3) and in what order to look for `file.br` / `file.gz`. Pure header
//! logic; the disk lookup of the siblings is done by the caller through resolve.rs, so the
//! same containment rules apply to them. Knows nothing of ranges or validators.

/// A content coding we serve from a precompressed sibling file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    /// Every coding we know, in the order preferred on equal q: brotli is smaller.
    const ALL: [Encoding; 2] = [Encoding::Brotli, Encoding::Gzip];

    /// The Content-Encoding token (RFC 9110 §8.4.1).
    pub(super) fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The suffix of the sibling file holding this coding of the file.
    pub(super) fn file_suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Gzip => ".gz",
        }
    }

    fn matches(self, coding: &str) -> bool {
        match self {
            Encoding::Brotli => coding.eq_ignore_ascii_case("br"),
            // RFC 9110 §8.4.1.3: "x-gzip" is an alias of "gzip".
            Encoding::Gzip => {
                coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")
            }
        }
    }
}

/// A qvalue in thousandths (RFC 9110 §12.4.2 allows three decimals), so comparisons are
/// exact integers.
type Quality = u16;
const Q_MAX: Quality = 1000;
/// The weight given to `identity` when the header does not mention it: it stays acceptable
/// (RFC 9110 §12.5.3) but any listed coding is preferred over it.
const Q_IMPLIED_IDENTITY: Quality = 1;

/// The codings to try, best first: those the client accepts with a q above zero and at
/// least as high as identity's. Empty means serve the file as it is. No header at all also
/// means identity: that is what every server sends to a client that states nothing.
pub(super) fn preferred(accept_encoding: Option<&str>) -> Vec<Encoding> {
    let Some(header) = accept_encoding else {
        return Vec::new();
    };
    let listed: Vec<(&str, Quality)> = header.split(',').filter_map(parse_element).collect();
    let quality = |is_coding: &dyn Fn(&str) -> bool| {
        let explicit = listed.iter().find(|(coding, _)| is_coding(coding));
        let star = listed.iter().find(|(coding, _)| *coding == "*");
        explicit.or(star).map(|&(_, q)| q)
    };
    let identity =
        quality(&|coding| coding.eq_ignore_ascii_case("identity")).unwrap_or(Q_IMPLIED_IDENTITY);
    let mut chosen: Vec<(Encoding, Quality)> = Encoding::ALL
        .iter()
        .filter_map(|&encoding| {
            let q = quality(&|coding| encoding.matches(coding))?;
            (q > 0 && q >= identity).then_some((encoding, q))
        })
        .collect();
    // Stable sort: equal q keeps the ALL order, brotli first.
    chosen.sort_by_key(|&(_, q)| std::cmp::Reverse(q));
    chosen.into_iter().map(|(encoding, _)| encoding).collect()
}

/// One `coding [; q=value]` element; `None` for an empty element or a malformed qvalue
/// (ignored, as if not listed).
fn parse_element(element: &str) -> Option<(&str, Quality)> {
    let mut parts = element.split(';');
    let coding = parts.next()?.trim();
    if coding.is_empty() {
        return None;
    }
    let mut q = Q_MAX;
    for param in parts {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = parse_qvalue(value.trim())?;
        }
    }
    Some((coding, q))
}

/// RFC 9110 §12.4.2: `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn parse_qvalue(value: &str) -> Option<Quality> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: Quality = 0;
    for (index, digit) in fraction.bytes().enumerate() {
        thousandths += Quality::from(digit - b'0') * [100, 10, 1][index];
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(Q_MAX),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Brotli, Gzip};

    #[test]
    fn no_header_means_identity() {
        assert_eq!(preferred(None), vec![]);
        assert_eq!(preferred(Some("")), vec![]);
    }

    #[test]
    fn brotli_preferred_on_equal_q() {
        assert_eq!(preferred(Some("gzip, deflate, br")), vec![Brotli, Gzip]);
        assert_eq!(preferred(Some("gzip;q=0.8, br;q=0.8")), vec![Brotli, Gzip]);
    }

    #[test]
    fn higher_q_wins_over_brotli() {
        assert_eq!(preferred(Some("br;q=0.5, gzip")), vec![Gzip, Brotli]);
    }

    #[test]
    fn q_zero_refuses_a_coding() {
        assert_eq!(preferred(Some("br;q=0, gzip")), vec![Gzip]);
        assert_eq!(preferred(Some("gzip;q=0")), vec![]);
        assert_eq!(preferred(Some("br;q=0.000, gzip;Q=0")), vec![]);
    }

    #[test]
    fn star_covers_unlisted_codings() {
        assert_eq!(preferred(Some("*")), vec![Brotli, Gzip]);
        assert_eq!(preferred(Some("gzip;q=0, *")), vec![Brotli]);
        assert_eq!(preferred(Some("*;q=0")), vec![]);
    }

    #[test]
    fn identity_listed_higher_wins() {
        assert_eq!(preferred(Some("identity, gzip;q=0.5")), vec![]);
        assert_eq!(preferred(Some("identity;q=0.5, gzip")), vec![Gzip]);
        // Identity not listed: any accepted coding beats it, whatever its q.
        assert_eq!(preferred(Some("gzip;q=0.001")), vec![Gzip]);
    }

    #[test]
    fn x_gzip_is_gzip_and_names_are_case_insensitive() {
        assert_eq!(preferred(Some("x-gzip")), vec![Gzip]);
        assert_eq!(preferred(Some("GZIP, Br")), vec![Brotli, Gzip]);
    }

    #[test]
    fn malformed_qvalue_ignores_the_element() {
        assert_eq!(preferred(Some("br;q=2, gzip;q=0.5")), vec![Gzip]);
        assert_eq!(preferred(Some("br;q=0.1234")), vec![]);
        assert_eq!(preferred(Some("br;q=x")), vec![]);
        assert_eq!(
            preferred(Some("br;q=1.0, gzip; q = 0.9")),
            vec![Brotli, Gzip]
        );
    }

    #[test]
    fn qvalue_grammar() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue("0.25"), Some(250));
        assert_eq!(parse_qvalue("0."), Some(0));
        assert_eq!(parse_qvalue(".5"), None);
    }
}
