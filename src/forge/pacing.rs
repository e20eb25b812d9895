//! Pacing of status posts to one forge: evenly spaced within the per-minute budget, and never
//! more than the per-hour budget in any hour. Pure: the caller supplies the time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// Extra length given to each window (1%), so that clock skew and network jitter between us and
/// the forge can never tip the forge's own window over its limit.
const MARGIN_PERCENT: u32 = 1;

#[derive(Debug, Clone)]
struct Window {
    period: Duration,
    limit: usize,
    starts: VecDeque<Instant>,
}

impl Window {
    fn new(period: Duration, limit: u32) -> Window {
        Window {
            period: period + period * MARGIN_PERCENT / 100,
            limit: usize::try_from(limit).unwrap_or(usize::MAX).max(1),
            starts: VecDeque::new(),
        }
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .starts
            .front()
            .is_some_and(|s| now.saturating_duration_since(*s) >= self.period)
        {
            self.starts.pop_front();
        }
    }

    /// How long until one more request fits.
    fn wait(&self, now: Instant) -> Duration {
        if self.starts.len() < self.limit {
            return Duration::ZERO;
        }
        let must_leave = self.starts[self.starts.len() - self.limit];
        (must_leave + self.period).saturating_duration_since(now)
    }
}

/// Which budget a wait is for, to explain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Spacing within the per-minute budget.
    Minute,
    /// The per-hour budget is used up.
    Hour,
}

/// The pacing state of one forge.
#[derive(Debug, Clone)]
pub struct Pacer {
    minute: Window,
    hour: Window,
    spacing: Duration,
    last: Option<Instant>,
}

impl Pacer {
    /// Pacing for the configured per-minute and per-hour budgets.
    pub fn new(rate: RateLimit) -> Pacer {
        let minute = Window::new(Duration::from_secs(60), rate.per_minute);
        let spacing = minute.period / rate.per_minute.max(1);
        Pacer {
            minute,
            hour: Window::new(Duration::from_secs(3600), rate.per_hour),
            spacing,
            last: None,
        }
    }

    /// The gap kept between consecutive requests.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// How long until the next request may start, and for which budget; zero when it may
    /// start now.
    pub fn wait(&mut self, now: Instant) -> (Duration, Budget) {
        self.minute.forget_before(now);
        self.hour.forget_before(now);
        let spaced = self.last.map_or(Duration::ZERO, |l| {
            (l + self.spacing).saturating_duration_since(now)
        });
        let minute = spaced.max(self.minute.wait(now));
        let hour = self.hour.wait(now);
        if hour > minute {
            (hour, Budget::Hour)
        } else {
            (minute, Budget::Minute)
        }
    }

    /// Records a request starting at `now`.
    pub fn record(&mut self, now: Instant) {
        self.minute.starts.push_back(now);
        self.hour.starts.push_back(now);
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_minute: u32, per_hour: u32) -> RateLimit {
        RateLimit {
            per_minute,
            per_hour,
            concurrency: 1,
        }
    }

    /// Sends `n` requests as early as the pacer allows; returns their start offsets.
    fn schedule(pacer: &mut Pacer, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut now = start;
        let mut out = Vec::new();
        for _ in 0..n {
            let (wait, _) = pacer.wait(now);
            now += wait;
            assert_eq!(pacer.wait(now).0, Duration::ZERO);
            pacer.record(now);
            out.push(now - start);
        }
        out
    }

    #[test]
    fn posts_are_spaced_evenly_within_the_minute_budget() {
        let mut pacer = Pacer::new(rate(80, 100_000));
        assert_eq!(pacer.spacing(), Duration::from_micros(757_500));
        let starts = schedule(&mut pacer, 161);
        assert_eq!(starts[0], Duration::ZERO);
        assert_eq!(starts[1], Duration::from_micros(757_500));
        assert_eq!(starts[160], Duration::from_micros(757_500 * 160));
    }

    #[test]
    fn no_sixty_second_window_ever_holds_more_than_the_limit() {
        let mut pacer = Pacer::new(rate(80, 100_000));
        let starts = schedule(&mut pacer, 400);
        for (i, s) in starts.iter().enumerate() {
            let in_window = starts[i..]
                .iter()
                .take_while(|t| **t < *s + Duration::from_secs(60))
                .count();
            assert!(
                in_window <= 80,
                "{in_window} posts in the minute from {s:?}"
            );
        }
    }

    #[test]
    fn the_hour_budget_holds_back_the_next_post_until_the_oldest_leaves() {
        let mut pacer = Pacer::new(rate(600, 500));
        let starts = schedule(&mut pacer, 501);
        // 500 posts spaced 0.101 s apart, then the 501st waits for the first to leave the
        // (3636 s) window.
        assert_eq!(starts[499], Duration::from_millis(101 * 499));
        assert_eq!(starts[500], Duration::from_secs(3636));
    }

    #[test]
    fn an_exhausted_hour_names_the_hour_budget() {
        let mut pacer = Pacer::new(rate(600, 2));
        let now = Instant::now();
        pacer.record(now);
        pacer.record(now + Duration::from_secs(1));
        let (wait, budget) = pacer.wait(now + Duration::from_secs(2));
        assert_eq!(budget, Budget::Hour);
        assert_eq!(wait, Duration::from_secs(3634));
    }
}
