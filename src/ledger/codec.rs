//! The ledger's stored form: versioned JSON with repositories, contexts and reasons written
//! once each and referred to by index, so that a ledger of tens of thousands of statuses stays
//! well within a ConfigMap.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{DriftRecord, Ledger, LedgerError, PostedStatus, ResourceRecord, StatusKey};
use crate::flux::revision::CommitSha;
use crate::flux::{FluxKind, ResourceRef};
use crate::model::{CommitState, ResourceState};

/// Version of the stored form; a ledger written by another version is not read.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    /// `host repository` (hosts never contain spaces; Azure DevOps repositories may).
    repositories: Vec<String>,
    contexts: Vec<String>,
    reasons: Vec<String>,
    /// `[repository, sha, context, state, reason, posted_at]`.
    statuses: Vec<(u32, String, u32, char, u32, i64)>,
    resources: Vec<StoredResource>,
    /// `[name, label values, value]` of the exporter's counters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    counters: Vec<(String, Vec<String>, u64)>,
}

#[derive(Serialize, Deserialize)]
struct StoredResource {
    kind: FluxKind,
    namespace: String,
    name: String,
    state: ResourceState,
    reason: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    failures: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drift_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    left_success_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gone_since: Option<i64>,
}

struct Interner {
    index: HashMap<String, u32>,
    values: Vec<String>,
}

impl Interner {
    fn new() -> Self {
        Interner {
            index: HashMap::new(),
            values: Vec::new(),
        }
    }

    fn id(&mut self, value: &str) -> u32 {
        if let Some(id) = self.index.get(value) {
            return *id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_string());
        self.index.insert(value.to_string(), id);
        id
    }
}

fn state_code(state: CommitState) -> char {
    match state {
        CommitState::Pending => 'p',
        CommitState::Success => 's',
        CommitState::Failure => 'f',
        CommitState::Canceled => 'c',
    }
}

/// The ledger in its stored form. Entries are sorted, so equal ledgers encode identically.
pub fn encode(ledger: &Ledger) -> Vec<u8> {
    let mut repositories = Interner::new();
    let mut contexts = Interner::new();
    let mut reasons = Interner::new();
    let mut statuses: Vec<(&StatusKey, &PostedStatus)> = ledger.statuses.iter().collect();
    statuses.sort_by(|a, b| a.0.cmp(b.0));
    let statuses = statuses
        .into_iter()
        .map(|(key, posted)| {
            (
                repositories.id(&format!("{} {}", key.host, key.repository)),
                key.sha.to_hex(),
                contexts.id(&key.context),
                state_code(posted.state),
                reasons.id(&posted.reason),
                posted.posted_at.as_second(),
            )
        })
        .collect();
    let mut resources: Vec<(&ResourceRef, &ResourceRecord)> = ledger.resources.iter().collect();
    resources.sort_by(|a, b| a.0.cmp(b.0));
    let resources = resources
        .into_iter()
        .map(|(r, record)| StoredResource {
            kind: r.kind,
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            state: record.state,
            reason: reasons.id(&record.reason),
            failures: record.failures.clone(),
            drift_since: record.drift.as_ref().map(|d| d.since.as_second()),
            left_success_at: record.left_success_at.map(Timestamp::as_second),
            gone_since: record.gone_since.map(Timestamp::as_second),
        })
        .collect();
    let stored = Stored {
        version: FORMAT_VERSION,
        repositories: repositories.values,
        contexts: contexts.values,
        reasons: reasons.values,
        statuses,
        resources,
        counters: ledger.counters.clone(),
    };
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// Reads a stored ledger; `source_name` names it in errors.
pub fn decode(bytes: &[u8], source_name: &str) -> Result<Ledger, LedgerError> {
    let corrupt = |problem: String| LedgerError::Corrupt {
        source_name: source_name.to_string(),
        problem,
    };
    #[derive(Deserialize)]
    struct VersionOnly {
        version: Option<u32>,
    }
    let version: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not a ledger: {e}")))?;
    match version.version {
        Some(FORMAT_VERSION) => {}
        Some(other) => {
            return Err(corrupt(format!(
                "written in format version {other}, this exporter reads version {FORMAT_VERSION}"
            )));
        }
        None => return Err(corrupt("not a ledger: no format version".to_string())),
    }
    let stored: Stored =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not a ledger: {e}")))?;
    let lookup = |table: &[String], id: u32, what: &str| {
        table
            .get(id as usize)
            .cloned()
            .ok_or_else(|| corrupt(format!("{what} index {id} is out of range")))
    };
    let time = |seconds: i64| {
        Timestamp::from_second(seconds).map_err(|e| corrupt(format!("bad time {seconds}: {e}")))
    };
    let mut ledger = Ledger::new();
    for (repository, sha, context, state, reason, posted_at) in stored.statuses {
        let repository = lookup(&stored.repositories, repository, "repository")?;
        let (host, repository) = repository
            .split_once(' ')
            .map(|(h, r)| (h.to_string(), r.to_string()))
            .ok_or_else(|| corrupt(format!("repository `{repository}` has no host")))?;
        let sha = CommitSha::from_hex(&sha)
            .ok_or_else(|| corrupt(format!("`{sha}` is not a commit sha")))?;
        let state = match state {
            'p' => CommitState::Pending,
            's' => CommitState::Success,
            'f' => CommitState::Failure,
            'c' => CommitState::Canceled,
            other => return Err(corrupt(format!("unknown state code `{other}`"))),
        };
        ledger.insert_raw(
            StatusKey {
                host,
                repository,
                sha,
                context: lookup(&stored.contexts, context, "context")?,
            },
            PostedStatus {
                state,
                reason: lookup(&stored.reasons, reason, "reason")?,
                posted_at: time(posted_at)?,
            },
        );
    }
    for r in stored.resources {
        ledger.insert_resource_raw(
            ResourceRef {
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
            },
            ResourceRecord {
                state: r.state,
                reason: lookup(&stored.reasons, r.reason, "reason")?,
                failures: r.failures,
                drift: r
                    .drift_since
                    .map(time)
                    .transpose()?
                    .map(|since| DriftRecord { since }),
                left_success_at: r.left_success_at.map(time).transpose()?,
                gone_since: r.gone_since.map(time).transpose()?,
            },
        );
    }
    ledger.set_counters(stored.counters);
    Ok(ledger)
}
