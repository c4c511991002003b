//! Range requests (RFC 9110 §14): parses a `Range: bytes=...` header against the file's
//! size into what to send: the whole file, some byte ranges (sorted and coalesced), or
//! 416. Knows nothing of If-Range (conditional.rs decides whether this runs) nor of how
//! several ranges are framed (multipart.rs).

/// The most range-specs honoured in one header. More and the header is ignored (200 with
/// the whole file), nginx's protection against range amplification: thousands of tiny
/// ranges would cost a part header, and a seek, each.
pub const MAX_RANGES: usize = 16;

/// A non-empty run of bytes inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ByteRange {
    pub(super) offset: u64,
    pub(super) len: u64,
}

impl ByteRange {
    /// The last byte's position, as Content-Range writes it (inclusive).
    pub(super) fn last(self) -> u64 {
        self.offset + self.len - 1
    }

    /// The Content-Range value of this range of a `size`-byte file (RFC 9110 §14.4).
    pub(super) fn content_range(self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.offset, self.last())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum RangePlan {
    /// No Range, an unparseable one, a unit other than bytes, too many ranges or an empty
    /// file: 200 with everything. RFC 9110 §14.2 lets a server ignore Range.
    Whole,
    /// 206 with these ranges: at least one, sorted, none overlapping or touching.
    Partial(Vec<ByteRange>),
    /// 416: the header is valid but no range overlaps the file (RFC 9110 §15.5.17).
    Unsatisfiable,
}

/// One range-spec as written, before it meets the file's size.
#[derive(Debug, Clone, Copy)]
enum Spec {
    /// `first-last` or `first-` (last = None).
    From { first: u64, last: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// What to send for `range` (the Range field value, if any) on a file of `size` bytes.
pub(super) fn plan(range: Option<&str>, size: u64) -> RangePlan {
    let Some(specs) = range.and_then(parse) else {
        return RangePlan::Whole;
    };
    // An empty file has no byte to address: a Range on it is ignored rather than refused,
    // so downloaders resuming an empty file get a plain 200.
    if specs.len() > MAX_RANGES || size == 0 {
        return RangePlan::Whole;
    }
    let mut ranges: Vec<ByteRange> = specs
        .iter()
        .filter_map(|&spec| satisfy(spec, size))
        .collect();
    if ranges.is_empty() {
        return RangePlan::Unsatisfiable;
    }
    coalesce(&mut ranges);
    RangePlan::Partial(ranges)
}

/// RFC 9110 §14.1.1: `bytes=` then a comma list of `first-[last]` or `-suffix`. `None`
/// when malformed, so the header is ignored (a Range a server cannot parse is ignored,
/// RFC 9110 §14.2). A list of no specs at all is malformed too.
fn parse(header: &str) -> Option<Vec<Spec>> {
    let (unit, set) = header.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // RFC 9110 §5.6.1: a list may hold empty elements, which do not count.
    for element in set.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if specs.len() > MAX_RANGES {
            // Already too many: stop parsing a possibly huge header, the answer is Whole.
            break;
        }
        let (first, last) = element.split_once('-')?;
        let spec = match (first.trim(), last.trim()) {
            ("", suffix) => Spec::Suffix(parse_position(suffix)?),
            (first, "") => Spec::From {
                first: parse_position(first)?,
                last: None,
            },
            (first, last) => {
                let (first, last) = (parse_position(first)?, parse_position(last)?);
                // RFC 9110 §14.1.1: last-pos below first-pos makes the spec invalid.
                if last < first {
                    return None;
                }
                Spec::From {
                    first,
                    last: Some(last),
                }
            }
        };
        specs.push(spec);
    }
    (!specs.is_empty()).then_some(specs)
}

/// A `1*DIGIT` position. Values past u64 saturate: "0-99999999999999999999" still means
/// "to the end", and a huge first-pos is simply past the end (unsatisfiable).
fn parse_position(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

/// The bytes a spec selects in a `size`-byte file (size > 0), or `None` when it selects
/// none (RFC 9110 §14.1.1: a first-pos at or past the end, or a zero suffix).
fn satisfy(spec: Spec, size: u64) -> Option<ByteRange> {
    match spec {
        Spec::From { first, last } => {
            if first >= size {
                return None;
            }
            let last = last.map_or(size - 1, |last| last.min(size - 1));
            Some(ByteRange {
                offset: first,
                len: last - first + 1,
            })
        }
        Spec::Suffix(0) => None,
        Spec::Suffix(suffix) => {
            let len = suffix.min(size);
            Some(ByteRange {
                offset: size - len,
                len,
            })
        }
    }
}

/// Sorts and merges ranges that overlap or touch. RFC 9110 §14.2 lets a server coalesce
/// "regardless of the order in which the corresponding range-spec appeared"; it also
/// defuses "bytes=0-,0-,0-..." which would otherwise send the file once per spec.
fn coalesce(ranges: &mut Vec<ByteRange>) {
    ranges.sort_by_key(|range| range.offset);
    let mut merged: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for &range in ranges.iter() {
        match merged.last_mut() {
            Some(previous) if range.offset <= previous.last() + 1 => {
                let last = previous.last().max(range.last());
                previous.len = last - previous.offset + 1;
            }
            _ => merged.push(range),
        }
    }
    *ranges = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(pairs: &[(u64, u64)]) -> RangePlan {
        RangePlan::Partial(
            pairs
                .iter()
                .map(|&(offset, len)| ByteRange { offset, len })
                .collect(),
        )
    }

    #[test]
    fn no_range_header_is_whole() {
        assert_eq!(plan(None, 100), RangePlan::Whole);
    }

    #[test]
    fn closed_range_is_partial() {
        assert_eq!(plan(Some("bytes=0-9"), 100), partial(&[(0, 10)]));
        assert_eq!(plan(Some("bytes=10-10"), 100), partial(&[(10, 1)]));
    }

    #[test]
    fn open_range_runs_to_the_end() {
        assert_eq!(plan(Some("bytes=90-"), 100), partial(&[(90, 10)]));
    }

    #[test]
    fn suffix_range_is_the_last_bytes() {
        assert_eq!(plan(Some("bytes=-10"), 100), partial(&[(90, 10)]));
        assert_eq!(plan(Some("bytes=-500"), 100), partial(&[(0, 100)]));
    }

    #[test]
    fn last_pos_past_the_end_is_clamped() {
        assert_eq!(plan(Some("bytes=50-1000"), 100), partial(&[(50, 50)]));
        assert_eq!(
            plan(Some("bytes=0-99999999999999999999999"), 100),
            partial(&[(0, 100)])
        );
    }

    #[test]
    fn first_pos_past_the_end_is_unsatisfiable() {
        assert_eq!(plan(Some("bytes=100-"), 100), RangePlan::Unsatisfiable);
        assert_eq!(plan(Some("bytes=-0"), 100), RangePlan::Unsatisfiable);
        assert_eq!(
            plan(Some("bytes=99999999999999999999999-"), 100),
            RangePlan::Unsatisfiable
        );
    }

    #[test]
    fn unsatisfiable_specs_are_dropped_when_another_is_satisfiable() {
        assert_eq!(plan(Some("bytes=200-300, 0-0"), 100), partial(&[(0, 1)]));
    }

    #[test]
    fn malformed_range_is_ignored() {
        for header in [
            "bytes=",
            "bytes=a-b",
            "bytes=5",
            "bytes=9-5",
            "bytes=--5",
            "bytes=1-2-3",
            "items=0-5",
            "bytes 0-5",
            "bytes=0-5,x",
            "bytes=+1-5",
        ] {
            assert_eq!(plan(Some(header), 100), RangePlan::Whole, "{header}");
        }
    }

    #[test]
    fn unit_is_case_insensitive_and_whitespace_tolerated() {
        assert_eq!(
            plan(Some("Bytes = 0-1 ,, 5-6 "), 100),
            partial(&[(0, 2), (5, 2)])
        );
    }

    #[test]
    fn several_ranges_are_sorted() {
        assert_eq!(
            plan(Some("bytes=50-59,0-9"), 100),
            partial(&[(0, 10), (50, 10)])
        );
    }

    #[test]
    fn overlapping_and_adjacent_ranges_coalesce() {
        assert_eq!(plan(Some("bytes=0-9,5-19,20-29"), 100), partial(&[(0, 30)]));
        assert_eq!(plan(Some("bytes=0-,0-,0-,-10"), 100), partial(&[(0, 100)]));
    }

    #[test]
    fn ranges_at_the_cap_are_honoured() {
        let specs: Vec<String> = (0..MAX_RANGES)
            .map(|i| format!("{}-{}", i * 2, i * 2))
            .collect();
        let header = format!("bytes={}", specs.join(","));
        let RangePlan::Partial(ranges) = plan(Some(&header), 100) else {
            panic!("{MAX_RANGES} ranges are within the cap");
        };
        assert_eq!(ranges.len(), MAX_RANGES);
    }

    #[test]
    fn ranges_over_the_cap_serve_the_whole_file() {
        let specs: Vec<String> = (0..=MAX_RANGES)
            .map(|i| format!("{}-{}", i * 2, i * 2))
            .collect();
        let header = format!("bytes={}", specs.join(","));
        assert_eq!(plan(Some(&header), 100), RangePlan::Whole);
    }

    #[test]
    fn range_on_an_empty_file_is_ignored() {
        assert_eq!(plan(Some("bytes=0-0"), 0), RangePlan::Whole);
        assert_eq!(plan(Some("bytes=-5"), 0), RangePlan::Whole);
    }

    #[test]
    fn content_range_is_inclusive() {
        let range = ByteRange { offset: 0, len: 10 };
        assert_eq!(range.content_range(100), "bytes 0-9/100");
    }
}
