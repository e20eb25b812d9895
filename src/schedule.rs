//! When the next tick runs. Ticks never overlap: a tick that overruns its slot makes the
//! scheduled times it covered count as skipped, and the next tick is the first scheduled time
//! after it finished.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::config::Schedule;

/// The next tick to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextTick {
    /// When to start it (scheduled time plus jitter).
    pub at: Timestamp,
    /// Scheduled times that passed while the previous tick ran.
    pub skipped: u32,
}

/// Computes tick times from a schedule and a jitter bound.
#[derive(Debug, Clone)]
pub struct Ticker {
    schedule: Schedule,
    jitter: Duration,
}

/// Scheduled times counted as skipped are capped, so a stalled tick cannot make the count
/// (or the loop that computes it) unbounded.
const MAX_SKIPPED: u32 = 10_000;

impl Ticker {
    /// A ticker for `schedule` adding up to `jitter` to every tick.
    pub fn new(schedule: Schedule, jitter: Duration) -> Ticker {
        Ticker { schedule, jitter }
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The first tick after start-up at `now`.
    pub fn first(&self, now: Timestamp, jitter_fraction: f64) -> Option<NextTick> {
        match self.schedule {
            // An interval exporter polls at once, then every interval.
            Schedule::Interval(_) => Some(NextTick {
                at: now,
                skipped: 0,
            }),
            Schedule::Cron { .. } => {
                let at = self.schedule.next_after(now)?;
                Some(NextTick {
                    at: self.jittered(at, jitter_fraction),
                    skipped: 0,
                })
            }
        }
    }

    /// The tick after one scheduled at `scheduled` that finished at `finished`.
    /// `jitter_fraction` in [0, 1) picks the jitter (random in production, fixed in tests).
    pub fn after(
        &self,
        scheduled: Timestamp,
        finished: Timestamp,
        jitter_fraction: f64,
    ) -> Option<NextTick> {
        let mut next = self.schedule.next_after(scheduled)?;
        let mut skipped = 0;
        while next <= finished && skipped < MAX_SKIPPED {
            skipped += 1;
            next = self.schedule.next_after(next)?;
        }
        if next <= finished {
            next = self.schedule.next_after(finished)?;
        }
        Some(NextTick {
            at: self.jittered(next, jitter_fraction),
            skipped,
        })
    }

    fn jittered(&self, at: Timestamp, fraction: f64) -> Timestamp {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let delay = self.jitter.mul_f64(fraction);
        SignedDuration::try_from(delay)
            .ok()
            .and_then(|d| at.checked_add(d).ok())
            .unwrap_or(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn ticker(schedule: &str, jitter: u64) -> Ticker {
        Ticker::new(schedule.parse().unwrap(), Duration::from_secs(jitter))
    }

    #[test]
    fn an_interval_polls_at_once_then_every_interval() {
        let t = ticker("30s", 0);
        assert_eq!(
            t.first(at("2026-11-22T12:00:07Z"), 0.0),
            Some(NextTick {
                at: at("2026-11-22T12:00:07Z"),
                skipped: 0
            })
        );
        assert_eq!(
            t.after(at("2026-11-22T12:00:07Z"), at("2026-11-22T12:00:09Z"), 0.0),
            Some(NextTick {
                at: at("2026-11-22T12:00:37Z"),
                skipped: 0
            })
        );
    }

    #[test]
    fn a_slow_tick_delays_the_next_and_counts_the_slots_it_covered() {
        let t = ticker("30s", 0);
        assert_eq!(
            t.after(at("2026-11-22T12:00:00Z"), at("2026-11-22T12:01:10Z"), 0.0),
            Some(NextTick {
                at: at("2026-11-22T12:01:30Z"),
                skipped: 2
            })
        );
    }

    #[test]
    fn cron_ticks_land_on_the_schedule_plus_jitter() {
        let t = ticker("*/5 * * * *", 60);
        assert_eq!(
            t.first(at("2026-11-22T12:01:00Z"), 0.5),
            Some(NextTick {
                at: at("2026-11-22T12:05:30Z"),
                skipped: 0
            })
        );
        assert_eq!(
            t.after(at("2026-11-22T12:05:00Z"), at("2026-11-22T12:16:00Z"), 0.0),
            Some(NextTick {
                at: at("2026-11-22T12:20:00Z"),
                skipped: 2
            })
        );
    }

    #[test]
    fn odd_jitter_fractions_are_clamped() {
        let t = ticker("1m", 10);
        assert_eq!(
            t.after(
                at("2026-11-22T12:00:00Z"),
                at("2026-11-22T12:00:01Z"),
                f64::NAN
            )
            .unwrap()
            .at,
            at("2026-11-22T12:01:00Z")
        );
        assert_eq!(
            t.after(at("2026-11-22T12:00:00Z"), at("2026-11-22T12:00:01Z"), 7.0)
                .unwrap()
                .at,
            at("2026-11-22T12:01:10Z")
        );
    }
}
