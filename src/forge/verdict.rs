//! What a forge's answer (or its absence) means for delivery: delivered, already shown,
//! rate-limited (pause, then retry), credential refused, unavailable (retry after a back-off),
//! or refused for the request itself; and what the forge's lane learns from it (its remaining
//! budget, a pause, the run of rate-limit refusals). Pure: time is passed in as values.

use std::time::{Duration, SystemTime};

use super::answer::{Failure, ForgeResponse};
use crate::backoff::Backoff;
use crate::config::HumanDuration;

/// What kind of answer the forge gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: the forge did what was asked.
    Accepted,
    /// A refusal that says the forge already shows the update (GitLab's in-progress states).
    AlreadyCurrent,
    /// 429, or 403 with rate-limit signs: the forge limits our rate.
    RateLimited,
    /// 401: the credential was refused.
    CredentialRefused,
    /// 3xx: the repository was renamed or moved (GitHub answers 301 to reads and 307 to posts
    /// for a renamed repository). Not followed: the configuration names it where it was.
    Moved,
    /// 408 or 5xx: the forge could not answer now; worth retrying.
    Unavailable,
    /// Any other answer: the request's own fault (for a read, an answer to read, 404 included).
    Refused,
}

/// Classifies `response`; `already_current` is the dialect's word on whether a refusal means
/// the forge already shows the update (always `false` for a read).
pub fn classify(response: &ForgeResponse, already_current: bool) -> Answer {
    if response.is_success() {
        return Answer::Accepted;
    }
    if already_current {
        return Answer::AlreadyCurrent;
    }
    if is_rate_limited(response) {
        return Answer::RateLimited;
    }
    match response.status {
        300..=399 => Answer::Moved,
        401 => Answer::CredentialRefused,
        408 | 500..=599 => Answer::Unavailable,
        _ => Answer::Refused,
    }
}

/// Whether the forge refused the request for our rate: 429, or 403 with rate-limit signs.
fn is_rate_limited(response: &ForgeResponse) -> bool {
    match response.status {
        429 => true,
        403 => {
            response.rate.retry_after.is_some()
                || response.rate.exhausted()
                || response.message.to_ascii_lowercase().contains("rate limit")
        }
        _ => false,
    }
}

/// Which request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// A status post; `already_current` as for [`classify`].
    Post { already_current: bool },
    /// A read-back.
    Read,
}

/// How long to pause after rate-limit refusals that say nothing of when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPause {
    /// The first pause; doubled on each further refusal in a row.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

/// Why the forge is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    /// It refused us for our rate.
    RateLimited,
    /// It said the budget is used up until its reset.
    BudgetUsedUp,
}

/// A pause of the forge: no request before `wait` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// From now.
    pub wait: Duration,
    /// Why.
    pub reason: PauseReason,
}

/// What an answer means, and what the forge's lane learns from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// The kind of answer.
    pub answer: Answer,
    /// Rate-limit refusals in a row after this answer.
    pub streak: u32,
    /// Pause the forge, if it must be.
    pub pause: Option<Pause>,
    /// For an unavailable forge, how long its `Retry-After` asks to wait.
    pub retry_after: Option<Duration>,
    /// The forge's remaining budget, when it said.
    pub remaining: Option<u64>,
}

impl Judgement {
    /// Whether the answer counts as a failed request for the circuit breaker (the others show
    /// the forge is up).
    pub fn is_failure(&self) -> bool {
        self.answer == Answer::Unavailable
    }
}

/// Judges `response` to `asked`, at wall time `wall`, after `streak` rate-limit refusals in a
/// row. A post pauses the forge until its budget refills only when it was delivered; a read
/// whenever it is to be read (a refusal such as 404 included).
pub fn judge(
    response: &ForgeResponse,
    asked: Asked,
    wall: SystemTime,
    streak: u32,
    pauses: RateLimitPause,
) -> Judgement {
    let already_current = matches!(
        asked,
        Asked::Post {
            already_current: true
        }
    );
    let answer = classify(response, already_current);
    let refill = || {
        response
            .rate
            .exhausted()
            .then(|| response.rate.reset_wait(wall))
            .flatten()
            .map(|wait| Pause {
                wait: wait + Duration::from_secs(1),
                reason: PauseReason::BudgetUsedUp,
            })
    };
    let (streak, pause) = match (answer, asked) {
        (Answer::Accepted | Answer::AlreadyCurrent, _) => (0, refill()),
        (Answer::RateLimited, _) => (
            streak.saturating_add(1),
            Some(Pause {
                wait: rate_limit_wait(response, wall, streak, pauses),
                reason: PauseReason::RateLimited,
            }),
        ),
        (Answer::Refused, Asked::Read) => (streak, refill()),
        _ => (streak, None),
    };
    Judgement {
        answer,
        streak,
        pause,
        retry_after: (answer == Answer::Unavailable)
            .then(|| response.rate.retry_after_wait(wall))
            .flatten(),
        remaining: response.rate.remaining,
    }
}

/// How long to pause after a rate-limit refusal, the `streak`-th in a row before it: the
/// forge's word on when to come back (`Retry-After`) wins; else until the used-up budget
/// resets (and a second); else the first pause, doubling while refusals continue.
pub fn rate_limit_wait(
    response: &ForgeResponse,
    wall: SystemTime,
    streak: u32,
    pauses: RateLimitPause,
) -> Duration {
    response
        .rate
        .retry_after_wait(wall)
        .or_else(|| {
            response
                .rate
                .exhausted()
                .then(|| response.rate.reset_wait(wall))
                .flatten()
                .map(|w| w + Duration::from_secs(1))
        })
        .unwrap_or_else(|| {
            Backoff {
                base: pauses.first,
                max: pauses.max,
            }
            .step(streak)
        })
}

/// The error text of a refusal by the forge named `forge`.
pub fn refusal(forge: &str, response: &ForgeResponse) -> String {
    if response.message.is_empty() {
        format!("{forge} answered {}", response.status)
    } else {
        format!("{forge} answered {}: {}", response.status, response.message)
    }
}

/// Why sending a request gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Cut off at shutdown.
    CutOff,
    /// No answer within the request timeout.
    TimedOut(Duration),
    /// The transport failed, or could not send.
    Failed(Failure),
}

/// What a request without an answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// Cut off at shutdown: a probe slot it held is given back.
    CutOff,
    /// Sent, and no answer came: counts as a failed request; worth retrying.
    NoAnswer(String),
    /// Never sent (the credential could not be read, or the request cannot be made): the
    /// attempt does not count.
    NotSent(Failure),
}

/// What `failure` means.
pub fn unanswered(failure: SendFailure) -> Unanswered {
    match failure {
        SendFailure::CutOff => Unanswered::CutOff,
        SendFailure::TimedOut(limit) => {
            Unanswered::NoAnswer(format!("no answer within {}", HumanDuration(limit)))
        }
        SendFailure::Failed(Failure::Transport(e)) => {
            Unanswered::NoAnswer(format!("request failed: {e}"))
        }
        SendFailure::Failed(other) => Unanswered::NotSent(other),
    }
}

/// A wait in whole seconds, rounded up so that "0s" never describes a real wait.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests;
