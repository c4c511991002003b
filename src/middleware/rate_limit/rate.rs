//! A rate as people write it: `"100/s"`, `"1000/min"`, `"5/day"`. Owns the parsing, the
//! accepted spellings and the error text; knows nothing of the algorithm that enforces it.
//! Called by the settings layer and by the Python-facing constructor.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How many requests a period allows: `Rate { count: 100, period: 1 s }` is "100/s".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// At least 1: a zero rate would be a block list, which is another layer's job.
    pub count: u32,
    pub period: Duration,
}

/// The units a rate may be written in, each with its spellings. The first spelling is the
/// one `Display` writes back.
const UNITS: [(&[&str], Duration); 4] = [
    (&["s", "sec", "second"], Duration::from_secs(1)),
    (&["min", "m", "minute"], Duration::from_secs(60)),
    (&["hour", "h"], Duration::from_secs(3600)),
    (&["day", "d"], Duration::from_secs(86_400)),
];

/// Repeated in every error, so whoever mistyped a rate sees what would have worked.
const ACCEPTED_FORMS: &str =
    "write COUNT/UNIT with UNIT one of s, sec, second, m, min, minute, h, hour, d, day (e.g. \"100/s\", \"1000/min\", \"5/day\")";

/// Why a rate string was refused; `Display` names the culprit and shows the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateError {
    /// No `/`: "100" alone is ambiguous (per second? per minute?), so it is refused.
    MissingUnit(String),
    /// The part before `/` is not a whole number that fits in 32 bits.
    BadCount(String),
    /// `0/s`: nothing would ever be allowed.
    ZeroCount,
    /// The part after `/` is not a known unit.
    BadUnit(String),
    /// More than one request per nanosecond: the algorithm's resolution.
    TooFast(String),
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateError::MissingUnit(text) => write!(f, "rate {text:?} has no unit"),
            RateError::BadCount(count) => {
                write!(
                    f,
                    "rate count {count:?} is not a whole number up to 4294967295"
                )
            }
            RateError::ZeroCount => f.write_str("rate count must be at least 1"),
            RateError::BadUnit(unit) => write!(f, "rate unit {unit:?} is unknown"),
            RateError::TooFast(text) => {
                write!(f, "rate {text:?} is over one request per nanosecond")
            }
        }?;
        write!(f, ": {ACCEPTED_FORMS}")
    }
}

impl std::error::Error for RateError {}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Rate, RateError> {
        let trimmed = text.trim();
        let Some((count, unit)) = trimmed.split_once('/') else {
            return Err(RateError::MissingUnit(text.to_owned()));
        };
        let (count, unit) = (count.trim(), unit.trim());
        // u32::from_str accepts a leading '+'; a rate is plain digits.
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RateError::BadCount(count.to_owned()));
        }
        let count: u32 = count
            .parse()
            .map_err(|_| RateError::BadCount(count.to_owned()))?;
        if count == 0 {
            return Err(RateError::ZeroCount);
        }
        let period = UNITS
            .iter()
            .find(|(spellings, _)| spellings.iter().any(|s| s.eq_ignore_ascii_case(unit)))
            .map(|(_, period)| *period)
            .ok_or_else(|| RateError::BadUnit(unit.to_owned()))?;
        if u128::from(count) > period.as_nanos() {
            return Err(RateError::TooFast(text.to_owned()));
        }
        Ok(Rate { count, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match UNITS.iter().find(|(_, period)| *period == self.period) {
            Some((spellings, _)) => write!(f, "{}/{}", self.count, spellings[0]),
            // Built by hand with an unusual period: still say what it means.
            None => write!(f, "{} per {:?}", self.count, self.period),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().expect("a valid rate")
    }

    #[test]
    fn every_documented_spelling_parses() {
        let second = Duration::from_secs(1);
        assert_eq!(
            rate("100/s"),
            Rate {
                count: 100,
                period: second
            }
        );
        assert_eq!(
            rate("100/sec"),
            Rate {
                count: 100,
                period: second
            }
        );
        assert_eq!(rate("3/second").period, second);
        assert_eq!(rate("1000/min").period, Duration::from_secs(60));
        assert_eq!(rate("1000/m").period, Duration::from_secs(60));
        assert_eq!(rate("7/minute").period, Duration::from_secs(60));
        assert_eq!(rate("10/h").period, Duration::from_secs(3600));
        assert_eq!(rate("10/hour").period, Duration::from_secs(3600));
        assert_eq!(
            rate("5/day"),
            Rate {
                count: 5,
                period: Duration::from_secs(86_400)
            }
        );
        assert_eq!(rate("5/d").period, Duration::from_secs(86_400));
    }

    #[test]
    fn surrounding_spaces_and_unit_case_are_forgiven() {
        assert_eq!(rate(" 10 / S "), rate("10/s"));
        assert_eq!(rate("10/Min"), rate("10/min"));
    }

    #[test]
    fn count_alone_is_refused_as_missing_unit() {
        let error = "100".parse::<Rate>().unwrap_err();
        assert_eq!(error, RateError::MissingUnit("100".into()));
        let text = error.to_string();
        assert!(text.contains("\"100\" has no unit"), "{text}");
        assert!(
            text.contains("\"100/s\""),
            "the accepted forms are shown: {text}"
        );
    }

    #[test]
    fn zero_count_is_refused() {
        assert_eq!("0/s".parse::<Rate>(), Err(RateError::ZeroCount));
    }

    #[test]
    fn count_that_is_not_a_whole_u32_is_refused() {
        for bad in ["/s", "ten/s", "-1/s", "+1/s", "1.5/s", "4294967296/day"] {
            assert!(
                matches!(bad.parse::<Rate>(), Err(RateError::BadCount(_))),
                "{bad} should be a bad count"
            );
        }
        assert_eq!(rate("4294967295/day").count, u32::MAX);
    }

    #[test]
    fn unknown_unit_is_refused_and_named() {
        let error = "10/week".parse::<Rate>().unwrap_err();
        assert_eq!(error, RateError::BadUnit("week".into()));
        assert!(error
            .to_string()
            .starts_with("rate unit \"week\" is unknown: "));
        assert!(matches!("10/".parse::<Rate>(), Err(RateError::BadUnit(_))));
        assert!(matches!(
            "10/s/s".parse::<Rate>(),
            Err(RateError::BadUnit(_))
        ));
    }

    #[test]
    fn more_than_one_per_nanosecond_is_refused() {
        assert_eq!(rate("1000000000/s").count, 1_000_000_000);
        assert!(matches!(
            "1000000001/s".parse::<Rate>(),
            Err(RateError::TooFast(_))
        ));
    }

    #[test]
    fn display_writes_a_parseable_rate() {
        for text in ["100/s", "1000/min", "10/hour", "5/day"] {
            assert_eq!(rate(text).to_string(), text);
            assert_eq!(rate(&rate(text).to_string()), rate(text));
        }
        assert_eq!(rate("3/m").to_string(), "3/min");
    }
}
