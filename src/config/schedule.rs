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

use super::duration::HumanDuration;

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
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(HumanDuration(interval)) = text.parse::<HumanDuration>() {
            if interval < MIN_INTERVAL {
                return Err(ScheduleError::TooShort(text.to_string()));
            }
            return Ok(Schedule::Interval(interval));
        }
        let invalid = |problem: String| ScheduleError::Invalid {
            expression: text.to_string(),
            problem,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let native = match fields.len() {
            1 if text.starts_with('@') => text.to_string(),
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
                    "expected 5 fields (standard cron) or 6-7 fields with seconds, found {n}"
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
    #[error("day of week `{0}` is out of range 0-7")]
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
            "`* * *` is neither an interval (e.g. 30s, 5m) nor a cron expression: expected 5 fields (standard cron) or 6-7 fields with seconds, found 3"
        );
        assert_eq!(
            "0 0 * * 9".parse::<Schedule>().unwrap_err().to_string(),
            "`0 0 * * 9` is neither an interval (e.g. 30s, 5m) nor a cron expression: day of week `9` is out of range 0-7"
        );
        assert!("61 * * * *".parse::<Schedule>().is_err());
    }
}
