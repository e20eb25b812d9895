//! The ledger: what was last posted for each status, plus the per-object facts that must
//! survive restarts and CronJob runs (drift start, failure counts, when success was lost).
//!
//! Statuses are keyed by (host, repository, sha, context). Only delivered updates are
//! recorded; a failed delivery leaves the previous record, so the next plan offers the update
//! again. The ledger changes only on transitions, so an idle tick has nothing to save.

mod codec;
mod configmap;
mod file;

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use codec::{FORMAT_VERSION, decode, encode};
pub use configmap::{ConfigMapStore, Saved};
pub use file::FileStore;

use crate::flux::ResourceRef;
use crate::model::{Assessment, CommitState, ResourceState, StatusKey};

/// What was last posted for a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedStatus {
    pub state: CommitState,
    pub reason: String,
    pub posted_at: Timestamp,
}

/// When an object's source revision started to differ from its applied revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftRecord {
    pub since: Timestamp,
}

/// What the exporter remembers about one Flux object between ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    pub state: ResourceState,
    pub reason: String,
    /// Transitions into failure seen by the exporter, by Flux reason.
    pub failures: BTreeMap<String, u64>,
    pub drift: Option<DriftRecord>,
    /// When the object was last seen leaving `success`; `None` while it is successful.
    pub left_success_at: Option<Timestamp>,
    /// Since when the object has been missing from the cluster; `None` while present.
    pub gone_since: Option<Timestamp>,
}

/// A loaded ledger, and what was wrong with the stored one if it could not be used.
#[derive(Debug)]
pub struct Loaded {
    pub ledger: Ledger,
    /// Set when the stored ledger was unreadable and a fresh one was started.
    pub discarded: Option<String>,
    /// Size of the stored ledger as a save reports it (so the size metric is right from the
    /// start, not only after the first change); `None` when nothing usable was stored.
    pub bytes: Option<usize>,
}

/// Problems reading or writing a ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {source_name}: {problem}")]
    Corrupt {
        source_name: String,
        problem: String,
    },
    #[error("ledger {path}: {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("ledger {object}: {action}: {message}")]
    Kube {
        action: &'static str,
        object: String,
        message: String,
    },
}

/// The last-posted state of every status and the remembered facts of every object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    statuses: HashMap<StatusKey, PostedStatus>,
    resources: HashMap<ResourceRef, ResourceRecord>,
    /// The exporter's own counters (name, label values, value), so that a CronJob's counters
    /// continue from run to run.
    counters: Vec<(String, Vec<String>, u64)>,
    dirty: bool,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// What was last posted for `key`.
    pub fn get(&self, key: &StatusKey) -> Option<&PostedStatus> {
        self.statuses.get(key)
    }

    /// Records a delivered status.
    pub fn record(
        &mut self,
        key: StatusKey,
        state: CommitState,
        reason: &str,
        posted_at: Timestamp,
    ) {
        let posted_at = whole_seconds(posted_at);
        let new = PostedStatus {
            state,
            reason: reason.to_string(),
            posted_at,
        };
        if self.statuses.get(&key) != Some(&new) {
            self.statuses.insert(key, new);
            self.dirty = true;
        }
    }

    /// Every record whose last posted state is `pending`.
    pub fn pending(&self) -> impl Iterator<Item = (&StatusKey, &PostedStatus)> {
        self.statuses
            .iter()
            .filter(|(_, p)| p.state == CommitState::Pending)
    }

    /// Every status record.
    pub fn statuses(&self) -> impl Iterator<Item = (&StatusKey, &PostedStatus)> {
        self.statuses.iter()
    }

    /// Every object record.
    pub fn resources(&self) -> impl Iterator<Item = (&ResourceRef, &ResourceRecord)> {
        self.resources.iter()
    }

    /// The record of one object.
    pub fn resource(&self, resource: &ResourceRef) -> Option<&ResourceRecord> {
        self.resources.get(resource)
    }

    /// Number of status records.
    pub fn len(&self) -> usize {
        self.statuses.len()
    }

    /// Whether the ledger has no status records.
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
    }

    /// Whether anything changed since the ledger was loaded or last marked saved.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the current content as persisted.
    pub fn mark_saved(&mut self) {
        self.dirty = false;
    }

    /// Updates the object records from one tick's assessment: failure transitions are counted,
    /// drift start and loss of success are remembered, and objects that disappeared are marked
    /// gone. Changes only on transitions.
    pub fn observe(&mut self, assessment: &Assessment, now: Timestamp) {
        let now = whole_seconds(now);
        let mut present: HashSet<&ResourceRef> = HashSet::with_capacity(assessment.resources.len());
        for r in &assessment.resources {
            present.insert(&r.resource);
            let drift_since = r
                .drift
                .map(|hint| whole_seconds(hint.map_or(now, |t| t.min(now))));
            let record = match self.resources.get_mut(&r.resource) {
                Some(record) => record,
                None => {
                    let mut failures = BTreeMap::new();
                    if r.state == ResourceState::Failure {
                        failures.insert(r.reason.clone(), 1);
                    }
                    self.resources.insert(
                        r.resource.clone(),
                        ResourceRecord {
                            state: r.state,
                            reason: r.reason.clone(),
                            failures,
                            drift: drift_since.map(|since| DriftRecord { since }),
                            left_success_at: None,
                            gone_since: None,
                        },
                    );
                    self.dirty = true;
                    continue;
                }
            };
            let before = record.clone();
            if r.state == ResourceState::Failure && record.state != ResourceState::Failure {
                *record.failures.entry(r.reason.clone()).or_default() += 1;
            }
            if record.state == ResourceState::Success && r.state != ResourceState::Success {
                record.left_success_at = Some(now);
            } else if r.state == ResourceState::Success {
                record.left_success_at = None;
            }
            match (drift_since, &record.drift) {
                (Some(since), None) => record.drift = Some(DriftRecord { since }),
                (None, Some(_)) => record.drift = None,
                _ => {}
            }
            record.state = r.state;
            record.reason.clone_from(&r.reason);
            record.gone_since = None;
            if *record != before {
                self.dirty = true;
            }
        }
        for (resource, record) in self.resources.iter_mut() {
            if !present.contains(resource) && record.gone_since.is_none() {
                record.gone_since = Some(now);
                self.dirty = true;
            }
        }
    }

    /// Drops status records posted before `cutoff` that `in_use` does not claim, and object
    /// records gone since before `cutoff`, so the ledger stays bounded while nothing still
    /// observed is forgotten. Returns how many records were dropped.
    pub fn prune(&mut self, cutoff: Timestamp, in_use: impl Fn(&StatusKey) -> bool) -> usize {
        let before = self.statuses.len() + self.resources.len();
        self.statuses
            .retain(|key, posted| posted.posted_at >= cutoff || in_use(key));
        self.resources
            .retain(|_, record| record.gone_since.is_none_or(|gone| gone >= cutoff));
        let dropped = before - self.statuses.len() - self.resources.len();
        if dropped > 0 {
            self.dirty = true;
        }
        dropped
    }

    /// Merges another copy of the ledger (written concurrently by another writer): for each
    /// status the most recently posted record wins; object records present only in `other`
    /// are added, and failure counts take the larger of the two.
    pub fn merge(&mut self, other: Ledger) {
        for (key, theirs) in other.statuses {
            match self.statuses.get(&key) {
                Some(ours) if ours.posted_at >= theirs.posted_at => {}
                _ => {
                    self.statuses.insert(key, theirs);
                    self.dirty = true;
                }
            }
        }
        for (resource, theirs) in other.resources {
            match self.resources.get_mut(&resource) {
                None => {
                    self.resources.insert(resource, theirs);
                    self.dirty = true;
                }
                Some(ours) => {
                    for (reason, count) in theirs.failures {
                        let entry = ours.failures.entry(reason).or_default();
                        if count > *entry {
                            *entry = count;
                            self.dirty = true;
                        }
                    }
                }
            }
        }
    }

    /// The exporter counters saved with the ledger.
    pub fn counters(&self) -> &[(String, Vec<String>, u64)] {
        &self.counters
    }

    /// Replaces the saved exporter counters; they are written with the next save but do not
    /// by themselves make the ledger dirty (a counter ticking is no reason to write).
    pub fn set_counters(&mut self, counters: Vec<(String, Vec<String>, u64)>) {
        self.counters = counters;
    }

    pub(crate) fn insert_raw(&mut self, key: StatusKey, posted: PostedStatus) {
        self.statuses.insert(key, posted);
    }

    pub(crate) fn insert_resource_raw(&mut self, resource: ResourceRef, record: ResourceRecord) {
        self.resources.insert(resource, record);
    }
}

/// Ledger times are kept to the second: enough for every use, and compact to store.
fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

#[cfg(test)]
mod tests;
