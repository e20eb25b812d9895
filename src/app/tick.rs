//! One tick: read → assess → plan → deliver → account → save, and what it reports.

use std::sync::Arc;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::exporter::ReadFailure;
use super::{Exporter, LedgerStore};
use crate::account::account;
use crate::assess::assess;
use crate::cluster::UndecodableObject;
use crate::flux::FluxKind;
use crate::forge::{DeliveryOutcome, DeliveryResult};
use crate::model::{Assessment, StatusUpdate};
use crate::plan::{observed_keys, plan};

/// During a tick's deliveries, the wait before the next ledger checkpoint is at least this
/// many times the last save's duration, so checkpoints take at most a tenth of the time.
const CHECKPOINT_COST_FACTOR: u32 = 9;

/// After a checkpoint failed, the wait before the next one.
const CHECKPOINT_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// The cluster was read and every update was delivered, deferred or skipped.
    Completed,
    /// The cluster could not be read completely; nothing was planned or posted.
    ReadFailed(String),
    /// The `--snapshot` dump is missing, unreadable or not a dump; nothing was planned or
    /// posted.
    SnapshotUnreadable(String),
    /// Updates were delivered but the ledger could not be saved (it is retried next tick).
    SaveFailed(String),
    /// The ledger to be loaded in this tick could not be read; nothing was planned or posted.
    LedgerUnreadable(String),
    /// Stopped by a signal before it finished within the shutdown grace period (typically
    /// while still reading a slow API server); what was delivered is recorded.
    Abandoned,
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub outcome: TickOutcome,
    pub planned: usize,
    pub delivered: usize,
    /// Failed for now; planned again next tick.
    pub retry_later: usize,
    pub permanent_errors: usize,
    pub skipped: usize,
}

impl TickReport {
    pub(super) fn failed(outcome: TickOutcome) -> TickReport {
        TickReport {
            outcome,
            planned: 0,
            delivered: 0,
            retry_later: 0,
            permanent_errors: 0,
            skipped: 0,
        }
    }
}

impl Exporter {
    /// One tick. Never panics and never returns early with work half-recorded: a failed read
    /// posts nothing; delivered updates are recorded before the ledger is saved.
    pub async fn tick(&mut self) -> TickReport {
        let started = self.clock.now();
        let now = self.wall_now();
        let leading = self.follow_leadership().await;

        let snapshot = match self.read().await {
            Ok(snapshot) => snapshot,
            Err(error) => return self.read_failed(error, started, now).await,
        };
        let undecodable = undecodable_counts(&snapshot.undecodable);
        let assessment = Arc::new(assess(&snapshot, &self.config));
        drop(snapshot);
        if let Err(error) = self.load_deferred_ledger().await {
            return TickReport::failed(TickOutcome::LedgerUnreadable(error));
        }
        self.log_unattributed(&assessment);

        if !leading {
            self.show_leaders_ledger().await;
        }
        self.ledger.observe(&assessment, now);
        let planned = plan(&assessment, &self.ledger, &self.config);
        let outcomes = if leading {
            self.deliver(&planned.updates).await
        } else {
            Vec::new()
        };

        let mut report = self.account_for(&outcomes, &planned.updates);
        self.metrics.set_undecodable(&undecodable);
        self.remember_deliveries(outcomes, &assessment);

        self.prune(now, &assessment);
        let save_error = if leading {
            self.save_after_tick().await
        } else {
            None
        };
        if let Some(bytes) = self.ledger_bytes {
            self.metrics.set_ledger_size(self.ledger.len(), bytes);
        }
        self.metrics
            .update_objects(Arc::clone(&assessment), &self.ledger, &self.config.kinds);
        let elapsed = self.clock.now().saturating_duration_since(started);
        let finished = self.wall_now();
        match save_error {
            None => {
                self.metrics.record_poll("success", elapsed, Some(finished));
                if let Some(server) = &self.server {
                    server.readiness.poll_succeeded(finished);
                }
                self.publish_status(finished, "success", elapsed, None, &assessment);
            }
            Some(error) => {
                self.metrics.record_poll("failure", elapsed, None);
                self.publish_status(
                    finished,
                    "failure",
                    elapsed,
                    Some(error.clone()),
                    &assessment,
                );
                report.outcome = TickOutcome::SaveFailed(error);
            }
        }
        tracing::info!(
            planned = report.planned,
            delivered = report.delivered,
            retry_later = report.retry_later,
            permanent_errors = report.permanent_errors,
            skipped = report.skipped,
            seconds = elapsed.as_secs_f64(),
            leader = leading,
            "poll finished"
        );
        report
    }

    /// Follows leadership changes; a new leader continues from what the previous one saved.
    /// Returns whether this exporter leads for this tick.
    async fn follow_leadership(&mut self) -> bool {
        let leading = self.leadership.is_leader();
        if leading
            && !self.was_leader
            && !self.ledger_deferred
            && !matches!(self.store, LedgerStore::Memory)
            && let Err(e) = self.load_ledger().await
        {
            tracing::warn!("cannot reload the ledger on becoming leader: {e}");
        }
        self.was_leader = leading;
        leading
    }

    /// A read that failed: nothing is planned or posted; the failure is counted and shown.
    async fn read_failed(
        &mut self,
        failure: ReadFailure,
        started: Instant,
        now: Timestamp,
    ) -> TickReport {
        let (ReadFailure::Snapshot(error) | ReadFailure::Cluster(error)) = failure.clone();
        tracing::error!("poll failed, nothing posted: {error}");
        // The counters the failure adds to continue from the saved ones.
        if let Err(unreadable) = self.load_deferred_ledger().await {
            return TickReport::failed(TickOutcome::LedgerUnreadable(unreadable));
        }
        let elapsed = self.clock.now().saturating_duration_since(started);
        self.metrics.record_poll("failure", elapsed, None);
        self.publish_status(
            now,
            "failure",
            elapsed,
            Some(error.clone()),
            // The objects as last read: a failed read says nothing about them.
            &self.metrics.assessment(),
        );
        TickReport::failed(match failure {
            ReadFailure::Snapshot(_) => TickOutcome::SnapshotUnreadable(error),
            ReadFailure::Cluster(_) => TickOutcome::ReadFailed(error),
        })
    }

    /// Followers show the leader's ledger; they never write it.
    async fn show_leaders_ledger(&mut self) {
        if matches!(self.store, LedgerStore::Memory) {
            return;
        }
        match self.store.load().await {
            Ok(loaded) => self.ledger = loaded.ledger,
            Err(e) => tracing::warn!("cannot read the leader's ledger: {e}"),
        }
    }

    /// Applies the tick's account: logs refusals, counts deliveries, sets the gauges.
    fn account_for(
        &mut self,
        outcomes: &[DeliveryOutcome],
        updates: &[StatusUpdate],
    ) -> TickReport {
        let tally = account(outcomes, &self.counted_skips, updates);
        for (key, error) in &tally.refused {
            tracing::error!(repository = %key.repository, sha = %key.sha, context = %key.context, "the forge refused this status for good; it is not retried until the state changes: {error}");
        }
        for counted in &tally.counted {
            self.metrics.record_delivery(
                counted.forge,
                counted.state,
                counted.result,
                counted.duration,
            );
        }
        self.metrics
            .set_unmatched_repositories(tally.unmatched_repositories);
        self.metrics.set_pending_retries(tally.retry_later);
        for (forge, remaining) in self.publishers.rate_limit_remaining() {
            self.metrics.set_rate_limit_remaining(&forge, remaining);
        }
        let mut refused_credentials = Vec::new();
        for (forge, refusal) in self.publishers.credential_refused() {
            self.metrics
                .set_credential_refused(&forge, refusal.is_some());
            if let Some(why) = refusal {
                refused_credentials.push((forge, why));
            }
        }
        if let Some(server) = &self.server {
            server
                .readiness
                .set_refused_credentials(refused_credentials);
        }
        self.counted_skips = tally.skips;
        TickReport {
            outcome: TickOutcome::Completed,
            planned: updates.len(),
            delivered: tally.delivered,
            retry_later: tally.retry_later,
            permanent_errors: tally.permanent_errors,
            skipped: tally.skipped,
        }
    }

    /// Saves the ledger (with the counters) when it changed or `once` asks every tick; returns
    /// why the save failed, if it did.
    async fn save_after_tick(&mut self) -> Option<String> {
        if self.dry_run || !(self.ledger.is_dirty() || self.save_every_tick) {
            return None;
        }
        let mut counters = self.metrics.counter_values();
        // The counters saved include this poll, counted as the success it is if the save
        // works (if it does not, nothing is saved at all).
        *saved_value(&mut counters, crate::metrics::POLLS, &["success"]) += 1;
        *saved_value(&mut counters, crate::metrics::LAST_SUCCESS, &[]) =
            u64::try_from(self.wall_now().as_second()).unwrap_or(0);
        self.ledger.set_counters(counters);
        match self.store.save(&mut self.ledger).await {
            Ok(bytes) => {
                self.ledger_bytes = Some(bytes);
                None
            }
            Err(e) => {
                tracing::error!("ledger not saved (retried next tick): {e}");
                Some(e.to_string())
            }
        }
    }

    /// Delivers a plan's updates, recording each one in the ledger as soon as its outcome is
    /// known and saving the ledger as often as the store allows meanwhile, so that a crash in
    /// the middle of a long tick repeats only the deliveries that were not saved yet.
    async fn deliver(&mut self, updates: &[StatusUpdate]) -> Vec<DeliveryOutcome> {
        let publishers = Arc::clone(&self.publishers);
        let (finished, mut outcomes_so_far) = mpsc::unbounded_channel::<DeliveryOutcome>();
        let report = move |_: usize, outcome: &DeliveryOutcome| {
            let _ = finished.send(outcome.clone());
        };
        let publishing = publishers.publish_each(updates, &report);
        tokio::pin!(publishing);
        let checkpoints = if self.dry_run {
            None
        } else {
            self.store.checkpoint_interval()
        };
        let mut saved_at = self.clock.now();
        let mut gap = checkpoints.unwrap_or_default();
        let outcomes = loop {
            let since_save = self.clock.now().saturating_duration_since(saved_at);
            // Deliveries recorded during a gap are saved when it ends, even if no other
            // delivery ends meanwhile: a crash repeats at most one gap's worth of them.
            let due = self.clock.sleep(gap.saturating_sub(since_save));
            let unsaved = checkpoints.is_some() && self.ledger.is_dirty();
            tokio::select! {
                outcomes = &mut publishing => break outcomes,
                Some(outcome) = outcomes_so_far.recv() => {
                    self.record_outcome(&outcome);
                    if let Some(every) = checkpoints
                        && self.ledger.is_dirty()
                        && self.clock.now().saturating_duration_since(saved_at) >= gap
                    {
                        gap = self.checkpoint(every).await;
                        saved_at = self.clock.now();
                    }
                }
                () = due, if unsaved => {
                    if let Some(every) = checkpoints {
                        gap = self.checkpoint(every).await;
                        saved_at = self.clock.now();
                    }
                }
            }
        };
        while let Ok(outcome) = outcomes_so_far.try_recv() {
            self.record_outcome(&outcome);
        }
        outcomes
    }

    /// Saves the ledger during a tick's deliveries and returns the gap before the next save: at
    /// least `every`, and enough to keep saves to a tenth of the time (a large ledger saved
    /// after every delivery of a storm would cost more than the deliveries).
    async fn checkpoint(&mut self, every: Duration) -> Duration {
        let started = self.clock.now();
        match self.store.save(&mut self.ledger).await {
            Ok(bytes) => self.ledger_bytes = Some(bytes),
            Err(e) => {
                tracing::warn!("ledger not saved during the poll (tried again later): {e}");
                return every.max(CHECKPOINT_RETRY_AFTER);
            }
        }
        let cost = self.clock.now().saturating_duration_since(started);
        every.max(cost * CHECKPOINT_COST_FACTOR)
    }

    /// Records a delivered status; a status the forge refused for good is recorded as if
    /// posted, so the same refusal is not retried every tick. Anything else stays pending in
    /// the plan and is offered again next tick.
    fn record_outcome(&mut self, outcome: &DeliveryOutcome) {
        if matches!(
            outcome.result,
            DeliveryResult::Delivered | DeliveryResult::PermanentError { .. }
        ) {
            self.ledger.record(
                outcome.key.clone(),
                outcome.state,
                &outcome.reason,
                self.wall_now(),
            );
        }
    }

    /// Keeps the last delivery outcome of each status still observed, for `/status`.
    fn remember_deliveries(&mut self, outcomes: Vec<DeliveryOutcome>, assessment: &Assessment) {
        for outcome in outcomes {
            self.last_deliveries.insert(outcome.key.clone(), outcome);
        }
        if !self.last_deliveries.is_empty() {
            let keys = observed_keys(assessment, &self.config);
            self.last_deliveries.retain(|k, _| keys.contains(k));
        }
    }

    fn prune(&mut self, now: Timestamp, assessment: &Assessment) {
        let Ok(span) = jiff::SignedDuration::try_from(self.config.ledger.prune_after) else {
            return;
        };
        let Ok(cutoff) = now.checked_sub(span) else {
            return;
        };
        let has_candidates = self.ledger.statuses().any(|(_, p)| p.posted_at < cutoff)
            || self
                .ledger
                .resources()
                .any(|(_, r)| r.gone_since.is_some_and(|g| g < cutoff));
        if !has_candidates {
            return;
        }
        let keys = observed_keys(assessment, &self.config);
        let dropped = self.ledger.prune(cutoff, |k| keys.contains(k));
        if dropped > 0 {
            tracing::info!(
                dropped,
                "pruned ledger records of commits no longer observed"
            );
        }
    }
}

/// The saved value of a counter (0 when it was never saved), to change before saving.
fn saved_value<'a>(
    counters: &'a mut Vec<(String, Vec<String>, u64)>,
    name: &str,
    labels: &[&str],
) -> &'a mut u64 {
    let position = counters
        .iter()
        .position(|(n, l, _)| n == name && l.iter().map(String::as_str).eq(labels.iter().copied()));
    let index = match position {
        Some(index) => index,
        None => {
            counters.push((
                name.to_string(),
                labels.iter().map(|s| s.to_string()).collect(),
                0,
            ));
            counters.len() - 1
        }
    };
    &mut counters[index].2
}

fn undecodable_counts(objects: &[UndecodableObject]) -> Vec<(FluxKind, usize)> {
    let mut counts: Vec<(FluxKind, usize)> = Vec::new();
    for object in objects {
        match counts.iter_mut().find(|(k, _)| *k == object.kind) {
            Some(entry) => entry.1 += 1,
            None => counts.push((object.kind, 1)),
        }
    }
    counts
}
