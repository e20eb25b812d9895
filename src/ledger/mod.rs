//! The ledger: what was last posted for each status, so that only changes are posted.
//!
//! Keyed by (host, repository, sha, context). Only delivered updates are recorded; a failed
//! delivery leaves the previous record, so the next plan offers the update again.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::assess::CommitState;
use crate::flux::revision::CommitSha;

/// Identity of one commit status on a forge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatusKey {
    pub host: String,
    pub repository: String,
    pub sha: CommitSha,
    pub context: String,
}

/// What was last posted for a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedStatus {
    pub state: CommitState,
    pub reason: String,
    pub posted_at: Timestamp,
}

/// The last-posted state of every status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    statuses: HashMap<StatusKey, PostedStatus>,
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
        self.statuses.insert(
            key,
            PostedStatus {
                state,
                reason: reason.to_string(),
                posted_at,
            },
        );
    }

    /// Every record whose last posted state is `pending`.
    pub fn pending(&self) -> impl Iterator<Item = (&StatusKey, &PostedStatus)> {
        self.statuses
            .iter()
            .filter(|(_, p)| p.state == CommitState::Pending)
    }

    /// Every record.
    pub fn iter(&self) -> impl Iterator<Item = (&StatusKey, &PostedStatus)> {
        self.statuses.iter()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.statuses.len()
    }

    /// Whether the ledger has no records.
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
    }

    /// Drops records posted before `cutoff` whose key `in_use` does not claim, so that the
    /// ledger stays bounded while commits still observed are never re-posted. Returns how
    /// many records were dropped.
    pub fn prune(&mut self, cutoff: Timestamp, in_use: impl Fn(&StatusKey) -> bool) -> usize {
        let before = self.statuses.len();
        self.statuses
            .retain(|key, posted| posted.posted_at >= cutoff || in_use(key));
        before - self.statuses.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sha: char, context: &str) -> StatusKey {
        StatusKey {
            host: "github.com".into(),
            repository: "acme/app".into(),
            sha: CommitSha::from_hex(&sha.to_string().repeat(40)).unwrap(),
            context: context.into(),
        }
    }

    #[test]
    fn recording_replaces_the_previous_state() {
        let mut ledger = Ledger::new();
        let t: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        ledger.record(key('a', "c"), CommitState::Pending, "Progressing", t);
        ledger.record(
            key('a', "c"),
            CommitState::Success,
            "ReconciliationSucceeded",
            t,
        );
        assert_eq!(ledger.len(), 1);
        assert_eq!(
            ledger.get(&key('a', "c")).unwrap().state,
            CommitState::Success
        );
        assert_eq!(ledger.pending().count(), 0);
    }

    #[test]
    fn pruning_keeps_recent_and_in_use_records() {
        let mut ledger = Ledger::new();
        let old: Timestamp = "2026-10-01T00:00:00Z".parse().unwrap();
        let recent: Timestamp = "2026-11-21T00:00:00Z".parse().unwrap();
        ledger.record(key('a', "c"), CommitState::Success, "", old);
        ledger.record(key('b', "c"), CommitState::Success, "", old);
        ledger.record(key('c', "c"), CommitState::Success, "", recent);
        let cutoff: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let dropped = ledger.prune(cutoff, |k| *k == key('b', "c"));
        assert_eq!(dropped, 1);
        assert!(ledger.get(&key('a', "c")).is_none());
        assert!(ledger.get(&key('b', "c")).is_some());
        assert!(ledger.get(&key('c', "c")).is_some());
    }
}
