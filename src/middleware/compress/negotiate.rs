//! Content negotiation for response compression: reads a request's `Accept-Encoding`
//! (RFC 9110 §12.5.3) and picks the coding to use from the ones the server allows. Owns
//! the field's parsing (codings, `*`, q-values); knows nothing of the response (that is
//! `policy`) nor of the codecs. Called once per request by the compression layer.

use super::{CompressOptions, Encoding};

/// A q-value in thousandths (RFC 9110 §12.4.2 allows at most three decimals), so weights
/// compare exactly, without floats.
type Weight = u16;

/// The weight `1` (a coding listed without `q`).
const FULL_WEIGHT: Weight = 1000;

/// The coding to compress with, or `None` to send the response as it is.
///
/// `accept_encoding` is the request's whole field value (several field lines joined with
/// `,`, RFC 9110 §5.3). Rules, RFC 9110 §12.5.3:
/// - no field: the client stated no preference; we still answer uncompressed, since it
///   "does not imply that the user agent will be able to correctly process all encodings";
/// - an empty field: the client wants no coding;
/// - `q=0` refuses a coding; a coding listed by name overrides `*` for that coding;
/// - `*` stands for every coding not listed by name;
/// - among acceptable codings the highest q wins, ties go to the server's order
///   (`options.encodings`), which is what lets it prefer brotli when a client lists
///   `gzip, br`.
///
/// Unknown codings (`deflate`, `compress`, `identity`) are ignored, and so is any entry
/// whose q-value is malformed; nothing here panics.
pub fn choose(accept_encoding: Option<&str>, options: &CompressOptions) -> Option<Encoding> {
    let preferences = Preferences::parse(accept_encoding?);
    let mut best: Option<(Encoding, Weight)> = None;
    for &encoding in &options.encodings {
        let weight = preferences.weight(encoding);
        // Strictly greater: on a tie the earlier (server-preferred) coding stays.
        if weight > 0 && best.is_none_or(|(_, best_weight)| weight > best_weight) {
            best = Some((encoding, weight));
        }
    }
    best.map(|(encoding, _)| encoding)
}

/// What one `Accept-Encoding` value says about the codings we can produce.
#[derive(Debug, Default)]
struct Preferences {
    /// Weight of each coding listed by name, indexed like `Encoding::ALL`.
    named: [Option<Weight>; Encoding::ALL.len()],
    /// Weight of `*`, if listed.
    wildcard: Option<Weight>,
}

impl Preferences {
    fn parse(field: &str) -> Preferences {
        let mut preferences = Preferences::default();
        // RFC 9110 §5.6.1: empty list elements are allowed and ignored.
        for entry in field.split(',').filter(|entry| !entry.trim().is_empty()) {
            let Some((coding, weight)) = parse_entry(entry) else {
                continue;
            };
            let slot = if coding == "*" {
                &mut preferences.wildcard
            } else if let Some(encoding) = Encoding::from_token(coding) {
                &mut preferences.named[index_of(encoding)]
            } else {
                continue;
            };
            // Listed twice with different weights: believe the lower one, so a coding the
            // client refused anywhere is never sent.
            *slot = Some(slot.map_or(weight, |seen| seen.min(weight)));
        }
        preferences
    }

    /// The weight the client gives `encoding`: its own entry, else `*`'s, else 0.
    fn weight(&self, encoding: Encoding) -> Weight {
        self.named[index_of(encoding)]
            .or(self.wildcard)
            .unwrap_or(0)
    }
}

fn index_of(encoding: Encoding) -> usize {
    match encoding {
        Encoding::Brotli => 0,
        Encoding::Zstd => 1,
        Encoding::Gzip => 2,
    }
}

/// One list element, `coding *( OWS ";" OWS param )`, as (coding, weight); `None` if the
/// `q` parameter is malformed. Parameters other than `q` have no meaning for
/// Accept-Encoding and are skipped.
fn parse_entry(entry: &str) -> Option<(&str, Weight)> {
    let mut parts = entry.split(';');
    let coding = parts.next()?.trim();
    let mut weight = FULL_WEIGHT;
    for param in parts {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            weight = parse_qvalue(value.trim())?;
        }
    }
    Some((coding, weight))
}

/// RFC 9110 §12.4.2: `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn parse_qvalue(text: &str) -> Option<Weight> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: Weight = 0;
    for (place, byte) in [100, 10, 1].into_iter().zip(fraction.bytes()) {
        thousandths += place * Weight::from(byte - b'0');
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(FULL_WEIGHT),
        _ => None,
    }
}

#[cfg(test)]
#[path = "negotiate_tests.rs"]
mod tests;
