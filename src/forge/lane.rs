//! One forge's lane: its publisher and its delivery state (pacing, circuit, pauses, budget),
//! and the decisions on that state: whether a request may start now, and what an answer
//! teaches the lane.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::circuit::{Circuit, Refusal};
use super::pacing::{Budget, Pacer};
use super::policy::DeliveryPolicy;
use super::transport::Publisher;
use super::verdict::{Answer, Judgement, PauseReason, whole_seconds};
use crate::config::{ForgeConfig, RateLimit, RepositoryAllowlist};

/// The request timeout of the catch-all dry-run lane, which no configuration sets.
const DRY_RUN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct LaneState {
    pacer: Option<Pacer>,
    pub(crate) circuit: Circuit,
    /// Set by the forge: no request before this.
    paused_until: Option<Instant>,
    pause_reason: String,
    /// Rate-limit refusals in a row.
    pub(crate) rate_limited_streak: u32,
    /// The forge's last `x-ratelimit-remaining`.
    pub(crate) remaining: Option<u64>,
    /// What the last failed request got (no answer, or which error answer), for the
    /// circuit's message.
    pub(crate) last_failure: String,
    /// The forge refused the credential, or it cannot be used: it is not used again while
    /// held.
    pub(crate) credential: Hold,
    /// Repositories the forge answered with a redirect for (renamed or moved), by lower-case
    /// `owner/name`: their statuses are not sent while held.
    pub(crate) moved: HashMap<String, Hold>,
}

/// The first hold; each refusal in a row doubles it.
pub(crate) const FIRST_HOLD: Duration = Duration::from_secs(60);
/// The longest hold.
pub(crate) const LONGEST_HOLD: Duration = Duration::from_secs(3600);

/// A refusal that is not the status's fault (a refused credential, a moved repository): what it
/// covers is not sent again for a while, doubling from [`FIRST_HOLD`] to [`LONGEST_HOLD`] with
/// each refusal in a row, and the reason is kept until the forge accepts a request again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hold {
    /// Not before this, and why.
    held: Option<(Instant, String)>,
    /// Refusals in a row.
    refusals: u32,
}

impl Hold {
    /// Holds after a refusal at `now` and returns for how long.
    pub(crate) fn hold(&mut self, now: Instant, why: &str) -> Duration {
        let doubled = FIRST_HOLD.saturating_mul(1u32 << self.refusals.min(10));
        let hold = doubled.min(LONGEST_HOLD);
        self.refusals = self.refusals.saturating_add(1);
        self.held = Some((now + hold, why.to_string()));
        hold
    }

    /// Notes at `now` why the credential cannot be read, without holding it: reading it again
    /// costs the forge nothing, so the next status tries again (a Secret created later is used
    /// at once), while the reason shows until the forge accepts a request.
    pub(crate) fn note(&mut self, now: Instant, why: &str) {
        self.held = Some((now, why.to_string()));
    }

    /// The refusal still holding at `now`, and how long it still holds.
    pub(crate) fn active(&self, now: Instant) -> Option<(Duration, &str)> {
        self.held
            .as_ref()
            .filter(|(until, _)| *until > now)
            .map(|(until, why)| (until.saturating_duration_since(now), why.as_str()))
    }

    /// The last refusal's reason, held or not, until [`Hold::release`].
    pub(crate) fn reason(&self) -> Option<&str> {
        self.held.as_ref().map(|(_, why)| why.as_str())
    }

    /// The forge accepted a request: the hold and its backoff are over.
    pub(crate) fn release(&mut self) {
        *self = Hold::default();
    }
}

impl LaneState {
    /// Pauses the forge until `until`, unless it is already paused longer.
    fn pause(&mut self, until: Instant, reason: String) {
        if self.paused_until.is_none_or(|u| u < until) {
            self.paused_until = Some(until);
            self.pause_reason = reason;
        }
    }

    /// Records what `judgement` (of an answer whose refusal text is `error`) teaches, at
    /// `now`. The circuit learns that the forge answered, unless the answer was a failure:
    /// the caller records that, since a post must know whether it opened the circuit.
    pub(crate) fn learn(&mut self, judgement: &Judgement, now: Instant, error: &str) {
        if let Some(remaining) = judgement.remaining {
            self.remaining = Some(remaining);
        }
        self.rate_limited_streak = judgement.streak;
        if !judgement.is_failure() {
            self.circuit.answered();
        }
        if judgement.answer == Answer::Accepted || judgement.answer == Answer::AlreadyCurrent {
            self.credential.release();
        }
        if let Some(pause) = judgement.pause {
            let reason = match pause.reason {
                PauseReason::RateLimited => format!("rate limited ({error})"),
                PauseReason::BudgetUsedUp => {
                    "the rate-limit budget is used up until its reset".to_string()
                }
            };
            self.pause(now + pause.wait, reason);
        }
    }

    /// Whether a request may start at `now`: `Ok` (recording a paced one's start), a wait and
    /// its reason, or the circuit's refusal.
    fn slot(&mut self, now: Instant, pacing: Pacing) -> Slot {
        let pause = self
            .paused_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
        let (pace, budget) = match (self.pacer.as_mut(), pacing) {
            (Some(pacer), Pacing::Paced) => pacer.wait(now),
            _ => (Duration::ZERO, Budget::Minute),
        };
        if pause.is_zero() && pace.is_zero() {
            return match self.circuit.begin(now) {
                Ok(()) => {
                    if let (Some(pacer), Pacing::Paced) = (self.pacer.as_mut(), pacing) {
                        pacer.record(now);
                    }
                    Slot::Go
                }
                Err(refusal) => Slot::Refused(refusal),
            };
        }
        if pause >= pace {
            Slot::Wait(pause, self.pause_reason.clone())
        } else {
            let why = match budget {
                Budget::Minute => "pacing within the per-minute budget",
                Budget::Hour => "the per-hour budget is used up",
            };
            Slot::Wait(pace, why.to_string())
        }
    }
}

/// Whether a request was paced within the forge's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// A post: spaced within `perMinute` and counted against `perMinute` and `perHour`.
    Paced,
    /// A read-back: neither spaced nor counted.
    Unpaced,
}

/// What the lane says about starting a request now.
enum Slot {
    Go,
    Wait(Duration, String),
    Refused(Refusal),
}

/// Why a request does not start this tick.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NoSlot {
    #[error(
        "{forge} is failing ({failures} requests in a row failed, the last: {last}); not contacting it for {seconds}s"
    )]
    Open {
        forge: String,
        failures: u32,
        last: String,
        seconds: u64,
    },
    #[error("{forge} is failing; waiting for a probe request to succeed")]
    Probing { forge: String },
    #[error("{forge}: {why}; next request in {seconds}s, longer than the {max}s a tick waits")]
    TooLong {
        forge: String,
        why: String,
        seconds: u64,
        max: u64,
    },
    #[error("shutting down; not sent")]
    ShuttingDown,
}

/// One forge's publisher and delivery state.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) name: String,
    /// `None` for the catch-all dry-run lane, which no host binds.
    pub(crate) host: Option<String>,
    pub(crate) repositories: Option<RepositoryAllowlist>,
    pub(crate) request_timeout: Duration,
    pub(crate) publisher: Publisher,
    pub(crate) dry_run: bool,
    pub(crate) permits: Semaphore,
    state: Mutex<LaneState>,
}

impl Lane {
    pub(crate) fn new(
        forge: Option<&ForgeConfig>,
        publisher: Publisher,
        dry_run: bool,
        policy: &DeliveryPolicy,
    ) -> Lane {
        let rate = forge.map(|f| f.rate_limit);
        Lane {
            name: forge.map_or_else(|| "dry-run".to_string(), |f| f.name.clone()),
            host: forge.map(|f| f.host.clone()),
            repositories: forge.map(|f| f.repositories.clone()),
            request_timeout: forge.map_or(DRY_RUN_TIMEOUT, |f| f.request_timeout),
            publisher,
            dry_run,
            permits: Semaphore::new(rate.map_or(1, |r: RateLimit| {
                usize::try_from(r.concurrency).unwrap_or(1)
            })),
            state: Mutex::new(LaneState {
                pacer: rate.filter(|_| !dry_run).map(Pacer::new),
                circuit: Circuit::new(policy.circuit),
                paused_until: None,
                pause_reason: String::new(),
                rate_limited_streak: 0,
                remaining: None,
                last_failure: String::new(),
                credential: Hold::default(),
                moved: HashMap::new(),
            }),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, LaneState> {
        // The state stays consistent under a panic elsewhere (every update is one assignment).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a request may start at `now`: `Ok(None)` when it may (recording a paced one's
    /// start), `Ok(Some(wait))` when it must wait (at most `max_wait`), or why it does not
    /// start this tick.
    pub(crate) fn slot(
        &self,
        now: Instant,
        pacing: Pacing,
        max_wait: Duration,
    ) -> Result<Option<Duration>, NoSlot> {
        let (slot, last_failure) = {
            let mut state = self.state();
            let slot = state.slot(now, pacing);
            (slot, state.last_failure.clone())
        };
        match slot {
            Slot::Go => Ok(None),
            Slot::Refused(Refusal::Open { until, failures }) => Err(NoSlot::Open {
                forge: self.name.clone(),
                failures,
                last: last_failure,
                seconds: whole_seconds(until.saturating_duration_since(now)),
            }),
            Slot::Refused(Refusal::Probing) => Err(NoSlot::Probing {
                forge: self.name.clone(),
            }),
            Slot::Wait(wait, why) if wait > max_wait => Err(NoSlot::TooLong {
                forge: self.name.clone(),
                why,
                seconds: whole_seconds(wait),
                max: whole_seconds(max_wait),
            }),
            Slot::Wait(wait, _) => Ok(Some(wait)),
        }
    }
}
