//! How hard delivery tries, and how long it waits.

use std::time::Duration;

use super::circuit::CircuitSettings;
use super::verdict::RateLimitPause;
use crate::backoff::Backoff;

/// How hard delivery tries, and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Requests per update at most (the first and its retries).
    pub max_attempts: u32,
    /// First back-off after a failed request; doubled per attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest back-off.
    pub backoff_max: Duration,
    /// Longest single wait (pacing slot, rate-limit pause, back-off) before giving up on an
    /// update for this tick; the update is then reported `retry_later` without being sent.
    pub max_wait: Duration,
    /// Pause after a rate-limit refusal that says nothing of when to come back (GitHub asks for
    /// at least a minute); doubled on each further refusal in a row.
    pub rate_limit_pause: Duration,
    /// Longest such pause.
    pub rate_limit_pause_max: Duration,
    /// The circuit breaker.
    pub circuit: CircuitSettings,
    /// Seed for the back-off jitter; `None` seeds from the system.
    pub jitter_seed: Option<u64>,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: 4,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_wait: Duration::from_secs(300),
            rate_limit_pause: Duration::from_secs(60),
            rate_limit_pause_max: Duration::from_secs(900),
            circuit: CircuitSettings {
                threshold: 5,
                cooldown: Duration::from_secs(30),
                max_cooldown: Duration::from_secs(600),
            },
            jitter_seed: None,
        }
    }
}

impl DeliveryPolicy {
    /// The back-off between retries of a failed request.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            base: self.backoff_base,
            max: self.backoff_max,
        }
    }

    /// The pauses after rate-limit refusals.
    pub fn rate_limit_pauses(&self) -> RateLimitPause {
        RateLimitPause {
            first: self.rate_limit_pause,
            max: self.rate_limit_pause_max,
        }
    }
}
