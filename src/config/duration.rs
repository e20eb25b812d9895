//! Durations written like Kubernetes and Flux write them: `30s`, `5m`, `1h30m`, `720h`, `500ms`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from text such as `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

/// Text that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a duration (use a number with a unit: ms, s, m, h or d, e.g. 30s, 5m, 1h30m)"
)]
pub struct InvalidDuration(pub String);

impl FromStr for HumanDuration {
    type Err = InvalidDuration;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidDuration(text.to_string());
        let s = text.trim();
        if s.is_empty() {
            return Err(invalid());
        }
        if s == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(invalid());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ms" => Duration::from_millis(1),
                "s" => Duration::from_secs(1),
                "m" => Duration::from_secs(60),
                "h" => Duration::from_secs(3600),
                "d" => Duration::from_secs(86_400),
                _ => return Err(invalid()),
            };
            rest = &rest[unit_len..];
            let part = u32::try_from(number)
                .ok()
                .and_then(|n| unit.checked_mul(n))
                .ok_or_else(invalid)?;
            total = total.checked_add(part).ok_or_else(invalid)?;
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let millis = d.subsec_millis();
        let mut secs = d.as_secs();
        if secs == 0 {
            return write!(f, "{millis}ms");
        }
        for (unit, size) in [("h", 3600), ("m", 60)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        if secs > 0 || millis > 0 {
            write!(f, "{secs}s")?;
        }
        if millis > 0 {
            write!(f, "{millis}ms")?;
        }
        Ok(())
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
            ("720h", 2_592_000, "720h"),
            ("1d", 86_400, "24h"),
            ("90s", 90, "1m30s"),
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.0, Duration::from_secs(secs), "{text}");
            assert_eq!(parsed.to_string(), printed);
        }
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn malformed_durations_are_refused() {
        for text in ["", "5", "m", "5x", "-5s", "1.5h", "99999999999h"] {
            assert_eq!(
                text.parse::<HumanDuration>().unwrap_err().to_string(),
                format!(
                    "`{text}` is not a duration (use a number with a unit: ms, s, m, h or d, e.g. 30s, 5m, 1h30m)"
                )
            );
        }
    }
}
