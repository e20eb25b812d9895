//! What a tick's deliveries add up to: the report's counts, the deliveries the metrics count,
//! the refusals to log, and how many repositories no forge serves. Pure: the tick applies it.

use std::collections::HashSet;
use std::time::Duration;

use crate::model::{
    CommitState, Delivery, DeliveryOutcome, DeliveryResult, StatusKey, StatusUpdate,
};

/// A status (and the state planned for it) whose skip was counted already.
pub type CountedSkip = (StatusKey, CommitState);

/// One delivery for `flux_status_deliveries_total` and its duration histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedDelivery<'a> {
    /// The configured forge, or `none` when no forge serves the repository.
    pub forge: &'a str,
    pub state: &'static str,
    pub result: &'static str,
    /// How long it took, when a request was made.
    pub duration: Option<Duration>,
}

/// The account of one tick's deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct TickAccount<'a> {
    pub delivered: usize,
    pub retry_later: usize,
    pub permanent_errors: usize,
    pub skipped: usize,
    /// The deliveries to count, in the order they ended.
    pub counted: Vec<CountedDelivery<'a>>,
    /// Statuses the forge refused for good, with why, to log.
    pub refused: Vec<(&'a StatusKey, &'a str)>,
    /// The skipped statuses of this tick: next tick's `counted_skips`.
    pub skips: HashSet<CountedSkip>,
    /// Distinct (host, repository) pairs no configured forge serves.
    pub unmatched_repositories: usize,
}

/// Accounts for `outcomes`. An undeliverable status is planned again every tick; it is counted
/// once (while it stays skipped), not once per tick, so the counter says how many statuses
/// were skipped. `counted_skips` are the skips counted by earlier ticks.
pub fn account<'a>(
    outcomes: &'a [DeliveryOutcome],
    counted_skips: &HashSet<CountedSkip>,
    updates: &[StatusUpdate],
) -> TickAccount<'a> {
    let mut tally = TickAccount {
        delivered: 0,
        retry_later: 0,
        permanent_errors: 0,
        skipped: 0,
        counted: Vec::with_capacity(outcomes.len()),
        refused: Vec::new(),
        skips: HashSet::new(),
        unmatched_repositories: 0,
    };
    for outcome in outcomes {
        let skipped = matches!(
            outcome.result,
            DeliveryResult::SkippedUnmatched | DeliveryResult::SkippedNotAllowed
        );
        let skip = (outcome.key.clone(), outcome.state);
        let first_skip = skipped && !counted_skips.contains(&skip);
        if skipped {
            tally.skips.insert(skip);
        }
        if !skipped || first_skip {
            tally.counted.push(CountedDelivery {
                forge: outcome.forge.as_deref().unwrap_or("none"),
                state: outcome.state.as_str(),
                result: outcome.result.as_str(),
                duration: (outcome.attempts > 0).then_some(outcome.duration),
            });
        }
        match &outcome.result {
            DeliveryResult::Delivered => tally.delivered += 1,
            DeliveryResult::PermanentError { error } => {
                tally.permanent_errors += 1;
                tally.refused.push((&outcome.key, error.as_str()));
            }
            DeliveryResult::RetryLater { .. } => tally.retry_later += 1,
            DeliveryResult::SkippedUnmatched | DeliveryResult::SkippedNotAllowed => {
                tally.skipped += 1
            }
        }
    }
    let unmatched: HashSet<(&str, &str)> = updates
        .iter()
        .filter(|u| u.delivery == Delivery::Unmatched)
        .map(|u| (u.key.host.as_str(), u.key.repository.as_str()))
        .collect();
    tally.unmatched_repositories = unmatched.len();
    tally
}

#[cfg(test)]
mod tests;
