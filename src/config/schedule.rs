//! When ticks happen: a fixed interval (`30s`) or a cron expression.
//!
//! Five-field expressions are standard cron, as Kubernetes CronJob users write them (day of week
//! 0-7, Sunday = 0 or 7); they are translated for the `cron` crate, which wants a seconds field
//! and numbers days of the week 1-7 from Sunday. Six- and seven-field expressions and `@hourly`
//! style shorthands are passed to the `cron` crate as written. Times are UTC.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;

use super::duration::{HumanDuration, InvalidDuration};

/// Shortest interval accepted: faster polling only loads the API server.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A tick schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    Interval(Duration),
    Cron {
        expression: String,
        schedule: Box<cron::Schedule>,
    },
}

/// A schedule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("interval `{0}` is shorter than the minimum of 1s")]
    TooShort(String),
    #[error(
        "`{expression}` is neither an interval (e.g. 30s, 5m) nor a cron expression: {problem}"
    )]
    Invalid { expression: String, problem: String },
    /// Written as an interval, but not one.
    #[error("interval {0}")]
    Interval(InvalidDuration),
}

/// The `@` shorthands the `cron` crate accepts.
const SHORTHANDS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// A cron field: its name, its range, and the names it accepts for its numbers.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const YEAR: Field = Field {
    name: "year",
    min: 1970,
    max: 2100,
    names: &[],
};

impl Field {
    /// Checks `text` (`*`, `?`, `N`, `N-M`, with an optional `/STEP`, comma-separated) against
    /// the field's range, so that an error names the field, the value and the range.
    fn check(&self, text: &str) -> Result<(), String> {
        let range = format!("{}-{}", self.min, self.max);
        for item in text.split(',') {
            let (span, step) = match item.split_once('/') {
                Some((span, step)) => (span, Some(step)),
                None => (item, None),
            };
            if let Some(step) = step
                && step.parse::<u32>().map_or(true, |s| s == 0)
            {
                return Err(format!(
                    "{} `{text}`: step `{step}` is not a whole number above 0",
                    self.name
                ));
            }
            if span == "*" || (span == "?" && self.name == "day of month") {
                continue;
            }
            let (first, last) = span.split_once('-').unwrap_or((span, span));
            let first = self.number(text, first, &range)?;
            let last = self.number(text, last, &range)?;
            if last < first {
                return Err(format!(
                    "{} `{text}`: range `{span}` runs backwards",
                    self.name
                ));
            }
        }
        Ok(())
    }

    fn number(&self, field: &str, text: &str, range: &str) -> Result<u32, String> {
        if let Some(index) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(self.min + index as u32);
        }
        match text.parse::<u32>() {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            Ok(_) => Err(format!(
                "{} `{field}`: {text} is out of range {range}",
                self.name
            )),
            Err(_) if self.names.is_empty() => Err(format!(
                "{} `{field}`: `{text}` is not a number in {range}",
                self.name
            )),
            Err(_) => Err(format!(
                "{} `{field}`: `{text}` is not a number in {range} nor a name ({})",
                self.name,
                self.names.join(", ")
            )),
        }
    }
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let invalid = |problem: String| ScheduleError::Invalid {
            expression: text.to_string(),
            problem,
        };
        // One word starting like a number is meant as an interval: say what is wrong with it
        // as an interval, not that it has too few cron fields.
        if !text.contains(char::is_whitespace)
            && text.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+')
        {
            let HumanDuration(interval) = text
                .parse::<HumanDuration>()
                .map_err(ScheduleError::Interval)?;
            if interval < MIN_INTERVAL {
                return Err(ScheduleError::TooShort(text.to_string()));
            }
            return Ok(Schedule::Interval(interval));
        }
        if text.starts_with('@') && !SHORTHANDS.contains(&text.to_ascii_lowercase().as_str()) {
            return Err(invalid(format!(
                "`{text}` is not a shorthand ({})",
                SHORTHANDS.join(", ")
            )));
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let checks: &[Field] = match fields.len() {
            5 => &[MINUTE, HOUR, DAY_OF_MONTH, MONTH],
            6 | 7 => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH],
            _ => &[],
        };
        for (field, value) in checks.iter().zip(&fields) {
            field.check(value).map_err(invalid)?;
        }
        if fields.len() == 7 {
            YEAR.check(fields[6]).map_err(invalid)?;
        }
        let native = match fields.len() {
            1 if text.starts_with('@') => text.to_ascii_lowercase(),
            5 => {
                let day_of_week =
                    translate_day_of_week(fields[4]).map_err(|e| invalid(e.to_string()))?;
                format!(
                    "0 {} {} {} {} {}",
                    fields[0], fields[1], fields[2], fields[3], day_of_week
                )
            }
            6 | 7 => fields.join(" "),
            n => {
                return Err(invalid(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week, as a CronJob's \
                     schedule) or 6-7 fields with seconds first, found {n}"
                )));
            }
        };
        // The cron crate's message points a caret at our translated expression; keep its last line.
        let schedule = cron::Schedule::from_str(&native).map_err(|e| {
            let text = e.to_string();
            invalid(
                text.lines()
                    .map(str::trim)
                    .rfind(|l| !l.is_empty())
                    .unwrap_or("invalid")
                    .to_string(),
            )
        })?;
        if schedule.upcoming(chrono::Utc).next().is_none() {
            return Err(invalid("it never fires".to_string()));
        }
        Ok(Schedule::Cron {
            expression: text.to_string(),
            schedule: Box::new(schedule),
        })
    }
}

/// A standard cron day-of-week field that cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DayOfWeekError {
    #[error("invalid step in `{0}`")]
    Step(String),
    #[error("day-of-week range `{0}` runs backwards")]
    Backwards(String),
    #[error("day of week `{0}` is out of range 0-7 (or SUN-SAT)")]
    OutOfRange(String),
    #[error("`{0}` is not a day of the week")]
    NotADay(String),
}

/// Standard cron day-of-week field → explicit day names for the `cron` crate.
fn translate_day_of_week(field: &str) -> Result<String, DayOfWeekError> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| DayOfWeekError::Step(item.to_string()))?,
            ),
            None => (item, 1),
        };
        let (first, last) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (day_number(a)?, day_number(b)?)
        } else {
            let d = day_number(range)?;
            (d, if step > 1 { 6 } else { d })
        };
        if last < first {
            return Err(DayOfWeekError::Backwards(range.to_string()));
        }
        // `5-7` means Friday to Sunday: 7 is Sunday again.
        for day in (first..=last).step_by(step) {
            days[day % 7] = true;
        }
    }
    let names: Vec<&str> = (0..7).filter(|d| days[*d]).map(|d| DAY_NAMES[d]).collect();
    Ok(names.join(","))
}

fn day_number(text: &str) -> Result<usize, DayOfWeekError> {
    if let Ok(n) = text.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(DayOfWeekError::OutOfRange(text.to_string()))
        };
    }
    DAY_NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .ok_or_else(|| DayOfWeekError::NotADay(text.to_string()))
}

impl Schedule {
    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Interval(interval) => {
                let span = jiff::SignedDuration::try_from(*interval).ok()?;
                after.checked_add(span).ok()
            }
            Schedule::Cron { schedule, .. } => {
                let start = chrono::DateTime::from_timestamp(
                    after.as_second(),
                    after.subsec_nanosecond().max(0) as u32,
                )?;
                let next = schedule.after(&start).next()?;
                Timestamp::new(next.timestamp(), next.timestamp_subsec_nanos() as i32).ok()
            }
        }
    }

    /// The usual time between ticks: the interval, or the gap between the next two cron firings
    /// after `now`.
    pub fn period(&self, now: Timestamp) -> Duration {
        match self {
            Schedule::Interval(interval) => *interval,
            Schedule::Cron { .. } => {
                let gap = self
                    .next_after(now)
                    .and_then(|first| Some((first, self.next_after(first)?)))
                    .map(|(first, second)| second.duration_since(first));
                gap.and_then(|g| Duration::try_from(g).ok())
                    .unwrap_or(Duration::from_secs(60))
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Interval(interval) => write!(f, "{}", HumanDuration(*interval)),
            Schedule::Cron { expression, .. } => f.write_str(expression),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn an_interval_ticks_at_a_fixed_period() {
        let s: Schedule = "30s".parse().unwrap();
        assert_eq!(
            s.next_after(at("2026-11-22T10:00:00Z")),
            Some(at("2026-11-22T10:00:30Z"))
        );
        assert_eq!(
            s.period(at("2026-11-22T10:00:00Z")),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn five_field_cron_is_standard_cron_with_sunday_as_zero() {
        // 09:30 on weekdays; 2026-11-22 is a Sunday.
        let s: Schedule = "30 9 * * 1-5".parse().unwrap();
        assert_eq!(
            s.next_after(at("2026-11-22T12:00:00Z")),
            Some(at("2026-11-23T09:30:00Z"))
        );
        let sunday: Schedule = "0 0 * * 0".parse().unwrap();
        assert_eq!(
            sunday.next_after(at("2026-11-21T12:00:00Z")),
            Some(at("2026-11-22T00:00:00Z"))
        );
        let seven: Schedule = "0 0 * * 5-7".parse().unwrap();
        assert_eq!(
            seven.next_after(at("2026-11-22T12:00:00Z")),
            Some(at("2026-11-27T00:00:00Z"))
        );
        let every: Schedule = "*/5 * * * *".parse().unwrap();
        assert_eq!(
            every.next_after(at("2026-11-22T12:01:10Z")),
            Some(at("2026-11-22T12:05:00Z"))
        );
        assert_eq!(
            every.period(at("2026-11-22T12:01:10Z")),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn six_field_cron_and_shorthands_pass_through() {
        let s: Schedule = "*/15 * * * * *".parse().unwrap();
        assert_eq!(
            s.next_after(at("2026-11-22T12:00:01Z")),
            Some(at("2026-11-22T12:00:15Z"))
        );
        let h: Schedule = "@hourly".parse().unwrap();
        assert_eq!(
            h.next_after(at("2026-11-22T12:00:01Z")),
            Some(at("2026-11-22T13:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        assert_eq!(
            "500ms".parse::<Schedule>().unwrap_err().to_string(),
            "interval `500ms` is shorter than the minimum of 1s"
        );
        assert_eq!(
            "* * *".parse::<Schedule>().unwrap_err().to_string(),
            "`* * *` is neither an interval (e.g. 30s, 5m) nor a cron expression: expected 5 fields (minute hour day-of-month month day-of-week, as a CronJob's schedule) or 6-7 fields with seconds first, found 3"
        );
        assert_eq!(
            "0 0 * * 9".parse::<Schedule>().unwrap_err().to_string(),
            "`0 0 * * 9` is neither an interval (e.g. 30s, 5m) nor a cron expression: day of week `9` is out of range 0-7 (or SUN-SAT)"
        );
    }

    /// The error for `text`, without the part every cron error starts with.
    fn cron_problem(text: &str) -> String {
        let error = text.parse::<Schedule>().unwrap_err().to_string();
        let prefix =
            format!("`{text}` is neither an interval (e.g. 30s, 5m) nor a cron expression: ");
        error.strip_prefix(&prefix).unwrap_or(&error).to_string()
    }

    #[test]
    fn cron_errors_name_the_field_the_value_and_its_range() {
        for (text, problem) in [
            ("61 * * * *", "minute `61`: 61 is out of range 0-59"),
            ("0 24 * * *", "hour `24`: 24 is out of range 0-23"),
            ("0 0 0 * *", "day of month `0`: 0 is out of range 1-31"),
            ("0 0 1 13 *", "month `13`: 13 is out of range 1-12"),
            (
                "0 0 1 FOO *",
                "month `FOO`: `FOO` is not a number in 1-12 nor a name (JAN, FEB, MAR, APR, MAY, JUN, JUL, AUG, SEP, OCT, NOV, DEC)",
            ),
            (
                "*/0 * * * *",
                "minute `*/0`: step `0` is not a whole number above 0",
            ),
            (
                "30-10 * * * *",
                "minute `30-10`: range `30-10` runs backwards",
            ),
            ("0,x * * * *", "minute `0,x`: `x` is not a number in 0-59"),
            ("60 * * * * *", "second `60`: 60 is out of range 0-59"),
            (
                "0 0 0 1 1 * 1800",
                "year `1800`: 1800 is out of range 1970-2100",
            ),
            (
                "0 0 * * 8",
                "day of week `8` is out of range 0-7 (or SUN-SAT)",
            ),
            (
                "@never",
                "`@never` is not a shorthand (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)",
            ),
            (
                "every minute",
                "expected 5 fields (minute hour day-of-month month day-of-week, as a CronJob's schedule) or 6-7 fields with seconds first, found 2",
            ),
        ] {
            assert_eq!(cron_problem(text), problem, "{text}");
        }
        assert!("0 9 * JAN-MAR MON-FRI".parse::<Schedule>().is_ok());
        assert!("@Daily".parse::<Schedule>().is_ok());
    }

    #[test]
    fn a_schedule_written_as_an_interval_gets_the_interval_error() {
        assert_eq!(
            "1ns".parse::<Schedule>().unwrap_err().to_string(),
            "interval `1ns` is shorter than the minimum of 1s"
        );
        assert_eq!(
            "99999999999999999999h"
                .parse::<Schedule>()
                .unwrap_err()
                .to_string(),
            "interval `99999999999999999999h` is not a duration: it is longer than Go allows \
             (2562047h47m16s854775807ns) (use numbers with units ns, us, ms, s, m or h, as Go and \
             Flux write durations, e.g. 30s, 5m, 1h30m, 1.5h)"
        );
        assert_eq!("1.5h".parse::<Schedule>().unwrap().to_string(), "1h30m");
    }
}
