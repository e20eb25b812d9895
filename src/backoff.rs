//! Exponential back-off with equal jitter, for every retry loop of the program. Pure: the
//! caller supplies the random draw, so a seeded generator gives reproducible waits.

use std::ops::RangeInclusive;
use std::time::Duration;

/// The finest step of the random part of a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    /// Whole milliseconds.
    Millis,
    /// Nanoseconds.
    Nanos,
}

/// A doubling wait: `base`, `2 × base`, `4 × base` … up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The full step before retry number `retry` (0-based), without jitter.
    pub fn step(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.max)
    }

    /// The step before retry number `retry`, with equal jitter.
    pub fn jittered(
        &self,
        retry: u32,
        grain: Grain,
        draw: impl FnOnce(RangeInclusive<u64>) -> u64,
    ) -> Duration {
        equal_jitter(self.step(retry), grain, draw)
    }
}

/// Half of `step`, plus up to half again at random (`draw` picks from the range it is given,
/// in units of `grain`), so that many clients do not retry in step.
pub fn equal_jitter(
    step: Duration,
    grain: Grain,
    draw: impl FnOnce(RangeInclusive<u64>) -> u64,
) -> Duration {
    let half = step / 2;
    match grain {
        Grain::Millis => {
            let most = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
            half + Duration::from_millis(draw(0..=most))
        }
        Grain::Nanos => {
            let most = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
            half + Duration::from_nanos(draw(0..=most))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_millis(350),
    };

    #[test]
    fn steps_double_from_the_base_up_to_the_cap() {
        let steps: Vec<u64> = [0, 1, 2, 3, 40]
            .into_iter()
            .map(|r| u64::try_from(BACKOFF.step(r).as_millis()).unwrap())
            .collect();
        assert_eq!(steps, vec![100, 200, 350, 350, 350]);
    }

    #[test]
    fn a_huge_base_saturates_instead_of_overflowing() {
        let huge = Backoff {
            base: Duration::MAX,
            max: Duration::from_secs(60),
        };
        assert_eq!(huge.step(16), Duration::from_secs(60));
    }

    #[test]
    fn equal_jitter_is_half_the_step_plus_the_draw() {
        let step = Duration::from_millis(1000);
        assert_eq!(
            equal_jitter(step, Grain::Millis, |r| *r.start()),
            Duration::from_millis(500)
        );
        assert_eq!(
            equal_jitter(step, Grain::Millis, |r| *r.end()),
            Duration::from_millis(1000)
        );
        assert_eq!(
            equal_jitter(step, Grain::Nanos, |r| {
                assert_eq!(r, 0..=500_000_000);
                7
            }),
            Duration::from_nanos(500_000_007)
        );
    }

    #[test]
    fn a_jittered_wait_draws_within_half_its_step() {
        let wait = BACKOFF.jittered(1, Grain::Millis, |r| {
            assert_eq!(r, 0..=100);
            40
        });
        assert_eq!(wait, Duration::from_millis(140));
    }
}
