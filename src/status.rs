//! The `/status` document: per object, the commits it speaks for, what was last posted for
//! each and what became of the last delivery, plus a summary of the last poll and the ledger.
//! It holds no credential: every credential the process holds is redacted from it, and
//! condition messages have URL credentials stripped when they are read.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::forge::DeliveryOutcome;
use crate::ledger::Ledger;
use crate::model::StatusKey;
use crate::model::{Assessment, CommitState, Readiness, ResourceState};

/// The last poll, as `/status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct PollSummary {
    pub outcome: &'static str,
    pub finished_at: Timestamp,
    pub duration_seconds: f64,
    pub error: Option<String>,
}

/// The ledger, as `/status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerSummary {
    pub backend: &'static str,
    pub entries: usize,
    pub bytes: Option<usize>,
}

#[derive(Serialize)]
struct Document<'a> {
    cluster: &'a str,
    leader: bool,
    dry_run: bool,
    last_poll: &'a PollSummary,
    ledger: &'a LedgerSummary,
    deliveries: HashMap<&'static str, usize>,
    /// Forge name → why it refuses its credential; empty while every credential is accepted.
    refused_credentials: std::collections::BTreeMap<&'a str, &'a str>,
    objects: Vec<Object<'a>>,
}

#[derive(Serialize)]
struct Object<'a> {
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
    state: ResourceState,
    ready: Readiness,
    reason: &'a str,
    message: &'a str,
    repository: Option<String>,
    unattributed: Option<&'a str>,
    commits: Vec<Commit<'a>>,
}

#[derive(Serialize)]
struct Commit<'a> {
    host: &'a str,
    repository: &'a str,
    sha: String,
    context: String,
    state: CommitState,
    reason: &'a str,
    posted: Option<Posted<'a>>,
    last_delivery: Option<&'a DeliveryOutcome>,
}

#[derive(Serialize)]
struct Posted<'a> {
    state: CommitState,
    reason: &'a str,
    at: Timestamp,
}

/// Inputs of the document.
pub struct StatusInputs<'a> {
    pub cluster: &'a str,
    pub leader: bool,
    pub dry_run: bool,
    pub assessment: &'a Assessment,
    /// The context of each object's statuses, in assessment order.
    pub contexts: &'a [String],
    pub ledger: &'a Ledger,
    pub last_deliveries: &'a HashMap<StatusKey, DeliveryOutcome>,
    pub last_poll: &'a PollSummary,
    pub ledger_summary: &'a LedgerSummary,
    /// (forge name, why) for each forge that refuses its credential.
    pub refused_credentials: &'a [(String, String)],
}

/// Renders the document as pretty JSON.
pub fn render(inputs: &StatusInputs<'_>) -> Vec<u8> {
    let mut deliveries: HashMap<&'static str, usize> = HashMap::new();
    for outcome in inputs.last_deliveries.values() {
        *deliveries.entry(outcome.result.as_str()).or_default() += 1;
    }
    let objects = inputs
        .assessment
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let context = inputs.contexts.get(i).cloned().unwrap_or_default();
            Object {
                kind: r.resource.kind.as_str(),
                namespace: &r.resource.namespace,
                name: &r.resource.name,
                state: r.state,
                ready: r.ready,
                reason: &r.reason,
                message: &r.message,
                repository: r.repository.as_ref().map(ToString::to_string),
                unattributed: r.unattributed.as_deref(),
                commits: r
                    .observations
                    .iter()
                    .map(|o| {
                        let key = StatusKey {
                            host: o.target.location.host.clone(),
                            repository: o.target.location.repository.clone(),
                            sha: o.target.sha,
                            context: context.clone(),
                        };
                        let posted = inputs.ledger.get(&key).map(|p| Posted {
                            state: p.state,
                            reason: &p.reason,
                            at: p.posted_at,
                        });
                        Commit {
                            host: &o.target.location.host,
                            repository: &o.target.location.repository,
                            sha: o.target.sha.to_hex(),
                            state: o.state,
                            reason: &o.reason,
                            posted,
                            last_delivery: inputs.last_deliveries.get(&key),
                            context: key.context,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let document = Document {
        cluster: inputs.cluster,
        leader: inputs.leader,
        dry_run: inputs.dry_run,
        last_poll: inputs.last_poll,
        ledger: inputs.ledger_summary,
        deliveries,
        refused_credentials: inputs
            .refused_credentials
            .iter()
            .map(|(forge, why)| (forge.as_str(), why.as_str()))
            .collect(),
        objects,
    };
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    // Forge errors are redacted where they are made; this catches whatever else may echo a
    // credential (an API server's error body, a condition message).
    crate::redact::redact(&text).into_owned().into_bytes()
}
