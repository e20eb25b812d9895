//! The per-object series, rendered on each scrape from the latest assessment and ledger facts.

use std::fmt::Write as _;
use std::sync::Arc;

use jiff::Timestamp;

use super::FAMILIES;
use crate::flux::FluxKind;
use crate::model::{Assessment, Readiness, ResourceAssessment, ResourceState};

/// revisions; longer ones cost one more growth of the buffer).
pub(super) const OBJECT_TEXT_ESTIMATE: usize = 1100;

/// At most this many `reason` series of `flux_status_failures_total` per object; rarer
/// reasons are summed under `reason="Other"` so an object never has more than 10 series.
pub const MAX_FAILURE_REASONS_PER_OBJECT: usize = 3;

/// Per-object facts from the ledger, aligned with the assessment's resources.
#[derive(Debug, Clone, Default)]
pub(super) struct LedgerFacts {
    pub(super) failures: Vec<(String, u64)>,
    pub(super) drift_since: Option<Timestamp>,
    pub(super) left_success_at: Option<Timestamp>,
}

#[derive(Default)]
pub(super) struct ObjectsView {
    pub(super) assessment: Arc<Assessment>,
    pub(super) facts: Vec<LedgerFacts>,
    pub(super) kinds: Vec<FluxKind>,
}

pub(super) fn bounded_failures<'a>(
    failures: impl Iterator<Item = (&'a str, u64)>,
) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = failures
        .map(|(reason, n)| {
            (
                if is_bounded_label(reason) {
                    reason.to_string()
                } else {
                    "Other".to_string()
                },
                n,
            )
        })
        .collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if all.len() > MAX_FAILURE_REASONS_PER_OBJECT {
        let rest: u64 = all[MAX_FAILURE_REASONS_PER_OBJECT - 1..]
            .iter()
            .map(|(_, n)| n)
            .sum();
        all.truncate(MAX_FAILURE_REASONS_PER_OBJECT - 1);
        all.push(("Other".to_string(), rest));
    }
    let mut merged: Vec<(String, u64)> = Vec::new();
    for (reason, n) in all {
        match merged.iter_mut().find(|(r, _)| *r == reason) {
            Some(entry) => entry.1 += n,
            None => merged.push((reason, n)),
        }
    }
    merged.sort();
    merged
}

/// Flux reasons are CamelCase identifiers; anything else would be unbounded text.
fn is_bounded_label(reason: &str) -> bool {
    !reason.is_empty() && reason.len() <= 64 && reason.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Appends `value` escaped for a label value of the text format.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn header(out: &mut String, name: &str) {
    let (_, kind, text) = FAMILIES
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .unwrap_or((name, "gauge", ""));
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn object_labels(out: &mut String, cluster: &str, kind: FluxKind, namespace: &str, name: &str) {
    out.push_str("cluster=\"");
    escape_into(out, cluster);
    out.push_str("\",kind=\"");
    out.push_str(kind.as_str());
    out.push_str("\",namespace=\"");
    escape_into(out, namespace);
    out.push_str("\",name=\"");
    escape_into(out, name);
    out.push('"');
}

fn seconds_since(since: Option<Timestamp>, now: Timestamp) -> i64 {
    since.map_or(0, |t| (now.as_second() - t.as_second()).max(0))
}

/// Writes `name{<object labels><extra>} value`; `extra` writes more labels, each starting
/// with a comma.
fn object_line(
    out: &mut String,
    cluster: &str,
    r: &ResourceAssessment,
    name: &str,
    extra: impl FnOnce(&mut String),
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    out.push('{');
    object_labels(
        out,
        cluster,
        r.resource.kind,
        &r.resource.namespace,
        &r.resource.name,
    );
    extra(out);
    let _ = writeln!(out, "}} {value}");
}

/// No labels beyond the object's.
fn no_labels(_: &mut String) {}

/// Writes `,label="value"` with the value escaped.
fn label(out: &mut String, label: &str, value: &str) {
    out.push(',');
    out.push_str(label);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

/// Writes the labels of `flux_status_resource_info`; `scratch` is reused for formatting.
fn info_labels(out: &mut String, r: &ResourceAssessment, scratch: &mut String) {
    match &r.source {
        Some((kind, namespace, name)) => {
            label(out, "source_kind", kind.as_str());
            scratch.clear();
            scratch.push_str(namespace);
            scratch.push('/');
            scratch.push_str(name);
            label(out, "source_name", scratch);
        }
        None => {
            label(out, "source_kind", "");
            label(out, "source_name", "");
        }
    }
    scratch.clear();
    if let Some(repository) = &r.repository {
        let _ = write!(scratch, "{repository}");
    }
    label(out, "repository", scratch);
    label(out, "revision", r.applied_revision.as_deref().unwrap_or(""));
    label(
        out,
        "attempted_revision",
        r.attempted_revision.as_deref().unwrap_or(""),
    );
    label(out, "reason", &r.reason);
}

pub(super) fn render_objects(out: &mut String, cluster: &str, view: &ObjectsView, now: Timestamp) {
    let resources = &view.assessment.resources;
    let no_facts = LedgerFacts::default();
    let facts = |i: usize| view.facts.get(i).unwrap_or(&no_facts);

    header(out, "flux_status_resource_ready");
    for r in resources {
        let value = match r.ready {
            Readiness::True => 1,
            Readiness::False => 0,
            Readiness::Unknown => -1,
        };
        object_line(
            out,
            cluster,
            r,
            "flux_status_resource_ready",
            no_labels,
            value,
        );
    }
    header(out, "flux_status_resource_state");
    for r in resources {
        object_line(
            out,
            cluster,
            r,
            "flux_status_resource_state",
            |out| label(out, "state", r.state.as_str()),
            1,
        );
    }
    header(out, "flux_status_resource_info");
    let mut scratch = String::new();
    for r in resources {
        object_line(
            out,
            cluster,
            r,
            "flux_status_resource_info",
            |out| info_labels(out, r, &mut scratch),
            1,
        );
    }
    header(out, "flux_status_revision_drift");
    for r in resources {
        object_line(
            out,
            cluster,
            r,
            "flux_status_revision_drift",
            no_labels,
            u8::from(r.drift.is_some()),
        );
    }
    header(out, "flux_status_revision_drift_seconds");
    for (i, r) in resources.iter().enumerate() {
        // The ledger remembers when drift began; before it has, the source artifact's time.
        let value = match r.drift {
            Some(hint) => seconds_since(facts(i).drift_since.or(hint).or(Some(now)), now),
            None => 0,
        };
        object_line(
            out,
            cluster,
            r,
            "flux_status_revision_drift_seconds",
            no_labels,
            value,
        );
    }
    header(out, "flux_status_stale_seconds");
    for (i, r) in resources.iter().enumerate() {
        let value = match r.state {
            ResourceState::Success => 0,
            _ => seconds_since(facts(i).left_success_at.or(r.ready_since), now),
        };
        object_line(
            out,
            cluster,
            r,
            "flux_status_stale_seconds",
            no_labels,
            value,
        );
    }
    header(out, "flux_status_failures_total");
    for (i, r) in resources.iter().enumerate() {
        for (reason, count) in &facts(i).failures {
            object_line(
                out,
                cluster,
                r,
                "flux_status_failures_total",
                |out| label(out, "reason", reason),
                count,
            );
        }
    }
    header(out, "flux_status_suspended");
    for r in resources {
        object_line(
            out,
            cluster,
            r,
            "flux_status_suspended",
            no_labels,
            u8::from(r.state == ResourceState::Suspended),
        );
    }

    header(out, "flux_status_resources");
    for kind in &view.kinds {
        for state in ResourceState::ALL {
            let count = resources
                .iter()
                .filter(|r| r.resource.kind == *kind && r.state == state)
                .count();
            out.push_str("flux_status_resources{cluster=\"");
            escape_into(out, cluster);
            let _ = writeln!(
                out,
                "\",kind=\"{}\",state=\"{}\"}} {count}",
                kind.as_str(),
                state.as_str()
            );
        }
    }
    header(out, "flux_status_unattributed_resources");
    let unattributed = resources
        .iter()
        .filter(|r| r.unattributed.is_some())
        .count();
    out.push_str("flux_status_unattributed_resources{cluster=\"");
    escape_into(out, cluster);
    let _ = writeln!(out, "\"}} {unattributed}");
}
