//! Durations written as Go's `time.ParseDuration` (and so Kubernetes and Flux) read them:
//! `30s`, `5m`, `1h30m`, `1.5h`, `720h`, `500ms`, `250us`. There is no day unit, as in Go.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from text such as `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

/// What every duration error says is accepted.
const ACCEPTED: &str = "use numbers with units ns, us, ms, s, m or h, as Go and Flux write durations, e.g. 30s, 5m, 1h30m, 1.5h";

/// The longest duration Go can represent (2^63 - 1 ns, about 292 years).
const LONGEST: Duration = Duration::from_nanos(i64::MAX as u64);

/// Text that is not a duration: the text and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a duration: {problem} ({ACCEPTED})")]
pub struct InvalidDuration {
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Nanoseconds per unit, for the units Go accepts.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

impl FromStr for HumanDuration {
    type Err = InvalidDuration;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |problem: &str| InvalidDuration {
            text: text.to_string(),
            problem: problem.to_string(),
        };
        let s = text.trim();
        if s.is_empty() {
            return Err(invalid("it is empty"));
        }
        if s == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        if s.starts_with('-') {
            return Err(invalid("it is negative"));
        }
        let mut rest = s.strip_prefix('+').unwrap_or(s);
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let number = &rest[..number_len];
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
            if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
                return Err(invalid(&if number.is_empty() && total == 0 {
                    "it does not start with a number".to_string()
                } else if number.is_empty() {
                    format!("`{unit}` has no number before it")
                } else {
                    format!("`{number}` is not a number")
                }));
            }
            if unit.is_empty() {
                return Err(invalid(&format!("`{number}` has no unit")));
            }
            let Some(scale) = unit_nanos(unit) else {
                return Err(invalid(&if unit == "d" {
                    "Go durations have no day unit (write 24h for a day)".to_string()
                } else {
                    format!("`{unit}` is not a unit")
                }));
            };
            let too_long = || {
                invalid(&format!(
                    "it is longer than Go allows ({})",
                    HumanDuration(LONGEST)
                ))
            };
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| too_long())?
            };
            // Fractions beyond nanoseconds are dropped, as Go does.
            let mut fraction_nanos: u128 = 0;
            let mut denominator: u128 = 1;
            for digit in fraction.bytes().take(18) {
                fraction_nanos = fraction_nanos * 10 + u128::from(digit - b'0');
                denominator *= 10;
            }
            let part = whole
                .checked_mul(scale)
                .and_then(|w| w.checked_add(fraction_nanos * scale / denominator))
                .ok_or_else(too_long)?;
            total = total.checked_add(part).ok_or_else(too_long)?;
            if total > LONGEST.as_nanos() {
                return Err(too_long());
            }
        }
        let nanos = u64::try_from(total).map_err(|_| invalid("it is too long"))?;
        Ok(HumanDuration(Duration::from_nanos(nanos)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let mut secs = d.as_secs();
        for (unit, size) in [("h", 3600), ("m", 60)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        if secs > 0 {
            write!(f, "{secs}s")?;
        }
        let nanos = d.subsec_nanos();
        match nanos {
            0 => Ok(()),
            n if n % 1_000_000 == 0 => write!(f, "{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => write!(f, "{}us", n / 1_000),
            n => write!(f, "{n}ns"),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_in_the_flux_style() {
        for (text, secs, printed) in [
            ("30s", 30, "30s"),
            ("5m", 300, "5m"),
            ("1h30m", 5400, "1h30m"),
            ("1.5h", 5400, "1h30m"),
            ("720h", 2_592_000, "720h"),
            ("90s", 90, "1m30s"),
            (".5m", 30, "30s"),
            ("+2m", 120, "2m"),
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.0, Duration::from_secs(secs), "{text}");
            assert_eq!(parsed.to_string(), printed);
        }
        for (text, nanos) in [
            ("250ms", 250_000_000),
            ("1ns", 1),
            ("3us", 3_000),
            ("3µs", 3_000),
            ("1.5ms", 1_500_000),
            ("1h0.000000001s", 3_600_000_000_001),
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.0, Duration::from_nanos(nanos), "{text}");
            let again: HumanDuration = parsed.to_string().parse().unwrap();
            assert_eq!(
                again, parsed,
                "{text} prints as {parsed}, which reads back the same"
            );
        }
    }

    #[test]
    fn malformed_durations_are_refused_saying_what_is_wrong() {
        for (text, problem) in [
            ("", "it is empty"),
            ("5", "`5` has no unit"),
            ("m", "it does not start with a number"),
            ("5x", "`x` is not a unit"),
            ("-5s", "it is negative"),
            ("1..5h", "`1..5` is not a number"),
            ("2d", "Go durations have no day unit (write 24h for a day)"),
            (
                "99999999999999999999h",
                "it is longer than Go allows (2562047h47m16s854775807ns)",
            ),
            (
                "2562048h",
                "it is longer than Go allows (2562047h47m16s854775807ns)",
            ),
        ] {
            assert_eq!(
                text.parse::<HumanDuration>().unwrap_err().to_string(),
                format!("`{text}` is not a duration: {problem} ({ACCEPTED})"),
            );
        }
    }
}
