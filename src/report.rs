//! Renders a plan for people (`-o table`, like `flux get`) and for programs (`-o json`).
//!
//! The JSON form is a stable contract: an object with an `updates` array whose elements carry
//! `forge`, `host`, `repository`, `sha`, `context`, `state`, `reason`, `description`,
//! `target_url`, `previous_state`, `deliverable`, `undeliverable_reason` and `resource`
//! {`kind`, `namespace`, `name`}. Fields are only ever added.

use serde::Serialize;

use crate::config::Config;
use crate::forge::DeliveryOutcome;
use crate::ledger::Ledger;
use crate::model::CommitState;
use crate::model::{Assessment, Delivery, Plan, Readiness, StatusKey, StatusUpdate};

#[derive(Serialize)]
struct JsonPlan<'a> {
    updates: Vec<JsonUpdate<'a>>,
}

#[derive(Serialize)]
struct JsonResource<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct JsonUpdate<'a> {
    forge: Option<&'a str>,
    host: &'a str,
    repository: &'a str,
    sha: String,
    context: &'a str,
    state: CommitState,
    reason: &'a str,
    description: &'a str,
    target_url: Option<&'a str>,
    previous_state: Option<CommitState>,
    deliverable: bool,
    undeliverable_reason: Option<String>,
    resource: JsonResource<'a>,
}

/// Why an update cannot be sent, in words; `None` when it can.
pub fn undeliverable_reason(update: &StatusUpdate) -> Option<String> {
    match &update.delivery {
        Delivery::Forge { .. } => None,
        Delivery::Unmatched => Some(format!(
            "no forge is configured for host {}",
            update.key.host
        )),
        Delivery::NotAllowed { forge } => Some(format!(
            "repository {} is not in the allowlist of forge {forge}",
            update.key.repository
        )),
    }
}

/// The plan as pretty-printed JSON.
pub fn plan_json(plan: &Plan) -> String {
    let updates = plan
        .updates
        .iter()
        .map(|u| JsonUpdate {
            forge: u.delivery.forge_name(),
            host: &u.key.host,
            repository: &u.key.repository,
            sha: u.key.sha.to_hex(),
            context: &u.key.context,
            state: u.state,
            reason: &u.reason,
            description: &u.description,
            target_url: u.target_url.as_deref(),
            previous_state: u.previous,
            deliverable: u.delivery.is_deliverable(),
            undeliverable_reason: undeliverable_reason(u),
            resource: JsonResource {
                kind: u.resource.kind.as_str(),
                namespace: &u.resource.namespace,
                name: &u.resource.name,
            },
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&JsonPlan { updates })
        .unwrap_or_else(|_| "{\"updates\":[]}".to_string());
    text.push('\n');
    text
}

/// Longest description shown in the table; JSON always has the whole text.
const TABLE_DESCRIPTION_CHARS: usize = 72;

/// The plan as an aligned table, followed by a one-line summary.
pub fn plan_table(plan: &Plan) -> String {
    let header = [
        "RESOURCE",
        "REPOSITORY",
        "COMMIT",
        "STATE",
        "FORGE",
        "DESCRIPTION",
    ];
    let rows: Vec<[String; 6]> = plan
        .updates
        .iter()
        .map(|u| {
            [
                format!(
                    "{}/{}/{}",
                    u.resource.kind, u.resource.namespace, u.resource.name
                ),
                format!("{}/{}", u.key.host, u.key.repository),
                u.key.sha.short(),
                u.state.as_str().to_string(),
                match &u.delivery {
                    Delivery::Forge { forge } => forge.clone(),
                    Delivery::Unmatched => "(none)".to_string(),
                    Delivery::NotAllowed { forge } => format!("{forge} (not allowed)"),
                },
                ellipsize(&u.description, TABLE_DESCRIPTION_CHARS),
            ]
        })
        .collect();
    let mut out = aligned(&header, &rows);
    let undeliverable = plan
        .updates
        .iter()
        .filter(|u| !u.delivery.is_deliverable())
        .count();
    let mut hosts: Vec<&str> = plan
        .updates
        .iter()
        .filter(|u| u.delivery == Delivery::Unmatched)
        .map(|u| u.key.host.as_str())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    out.push_str(&format!(
        "{} update{} to post, {} undeliverable, {} unchanged",
        plan.updates.len(),
        if plan.updates.len() == 1 { "" } else { "s" },
        undeliverable,
        plan.unchanged
    ));
    if !hosts.is_empty() {
        out.push_str(&format!(" (no forge configured for {})", hosts.join(", ")));
    }
    out.push('\n');
    out
}

/// Rows under a header, columns padded to their widest cell; nothing when there are no rows.
/// Longest message in `-o wide`.
const WIDE_MESSAGE_CHARS: usize = 60;
/// Longest revision in `-o wide`: a branch and a full commit id fit, an OCI digest is cut.
const WIDE_REVISION_CHARS: usize = 56;

/// `plan -o wide`: one row per Flux object, as `flux get kustomizations` shows them, with what
/// the ledger says was last posted for the newest commit it speaks for (`-` when nothing
/// was, or when it names no commit).
pub fn objects_wide(assessment: &Assessment, ledger: &Ledger, config: &Config) -> String {
    let header = [
        "KIND",
        "NAMESPACE",
        "NAME",
        "REVISION",
        "READY",
        "STATUS-POSTED",
        "MESSAGE",
    ];
    let rows: Vec<[String; 7]> = assessment
        .resources
        .iter()
        .map(|r| {
            let context = crate::plan::context_for(&r.resource, config);
            let posted = r.observations.first().and_then(|o| {
                let key = StatusKey {
                    host: o.target.location.host.clone(),
                    repository: o.target.location.repository.clone(),
                    sha: o.target.sha,
                    context,
                };
                ledger
                    .get(&key)
                    .map(|p| format!("{} at {}", p.state.as_str(), o.target.sha.short()))
            });
            let ready = match r.ready {
                Readiness::True => "True",
                Readiness::False => "False",
                Readiness::Unknown => "Unknown",
            };
            [
                r.resource.kind.as_str().to_string(),
                r.resource.namespace.clone(),
                r.resource.name.clone(),
                ellipsize(
                    r.applied_revision
                        .as_deref()
                        .or(r.attempted_revision.as_deref())
                        .unwrap_or("-"),
                    WIDE_REVISION_CHARS,
                ),
                ready.to_string(),
                posted.unwrap_or_else(|| "-".into()),
                ellipsize(&r.message, WIDE_MESSAGE_CHARS),
            ]
        })
        .collect();
    aligned(&header, &rows)
}

fn aligned<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    if !rows.is_empty() {
        line(header);
        for row in rows {
            line(&row.each_ref().map(String::as_str));
        }
    }
    out
}

/// Delivery outcomes as pretty-printed JSON: `{"outcomes": [...]}`, each with the status key,
/// `forge`, `state`, `reason`, `result` (and `error`), `http_status`, `duration` (seconds) and
/// `attempts`.
pub fn outcomes_json(outcomes: &[DeliveryOutcome]) -> String {
    #[derive(Serialize)]
    struct Outcomes<'a> {
        outcomes: &'a [DeliveryOutcome],
    }
    let mut text = serde_json::to_string_pretty(&Outcomes { outcomes })
        .unwrap_or_else(|_| "{\"outcomes\":[]}".to_string());
    text.push('\n');
    text
}

/// Delivery outcomes as an aligned table, followed by a count per result.
pub fn outcomes_table(outcomes: &[DeliveryOutcome]) -> String {
    let header = [
        "REPOSITORY",
        "COMMIT",
        "CONTEXT",
        "STATE",
        "FORGE",
        "RESULT",
        "HTTP",
        "ATTEMPTS",
        "ERROR",
    ];
    let rows: Vec<[String; 9]> = outcomes
        .iter()
        .map(|o| {
            [
                format!("{}/{}", o.key.host, o.key.repository),
                o.key.sha.short(),
                o.key.context.clone(),
                o.state.as_str().to_string(),
                o.forge.clone().unwrap_or_else(|| "(none)".to_string()),
                o.result.as_str().to_string(),
                o.http_status
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
                o.attempts.to_string(),
                o.result.error().unwrap_or("").to_string(),
            ]
        })
        .collect();
    let mut out = aligned(&header, &rows);
    let counts: Vec<(&str, usize)> = [
        "delivered",
        "retry_later",
        "permanent_error",
        "skipped_unmatched",
        "skipped_not_allowed",
    ]
    .into_iter()
    .map(|label| {
        let n = outcomes
            .iter()
            .filter(|o| o.result.as_str() == label)
            .count();
        (label, n)
    })
    .filter(|(_, n)| *n > 0)
    .collect();
    let summary: Vec<String> = counts.iter().map(|(l, n)| format!("{n} {l}")).collect();
    out.push_str(&format!(
        "{} update{}: {}\n",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" },
        if summary.is_empty() {
            "nothing to post".to_string()
        } else {
            summary.join(", ")
        }
    ));
    out
}

fn ellipsize(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::revision::CommitSha;
    use crate::flux::{FluxKind, ResourceRef};
    use crate::model::StatusKey;

    fn update(delivery: Delivery, description: &str) -> StatusUpdate {
        StatusUpdate {
            key: StatusKey {
                host: "github.com".into(),
                repository: "acme/app".into(),
                sha: CommitSha::from_hex(&"ab".repeat(20)).unwrap(),
                context: "flux/demo/Kustomization/apps/web".into(),
            },
            delivery,
            state: CommitState::Failure,
            reason: "BuildFailed".into(),
            description: description.into(),
            target_url: None,
            resource: ResourceRef::new(FluxKind::Kustomization, "apps", "web"),
            previous: Some(CommitState::Pending),
        }
    }

    #[test]
    fn json_output_carries_every_documented_field() {
        let plan = Plan {
            updates: vec![update(Delivery::Unmatched, "build failed: x")],
            unchanged: 0,
        };
        let value: serde_json::Value = serde_json::from_str(&plan_json(&plan)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"updates": [{
                "forge": null,
                "host": "github.com",
                "repository": "acme/app",
                "sha": "abababababababababababababababababababab",
                "context": "flux/demo/Kustomization/apps/web",
                "state": "failure",
                "reason": "BuildFailed",
                "description": "build failed: x",
                "target_url": null,
                "previous_state": "pending",
                "deliverable": false,
                "undeliverable_reason": "no forge is configured for host github.com",
                "resource": {"kind": "Kustomization", "namespace": "apps", "name": "web"}
            }]})
        );
    }

    #[test]
    fn the_table_aligns_columns_and_summarises() {
        let plan = Plan {
            updates: vec![
                update(
                    Delivery::Forge {
                        forge: "github".into(),
                    },
                    "build failed: x",
                ),
                update(
                    Delivery::NotAllowed {
                        forge: "github".into(),
                    },
                    &"é".repeat(100),
                ),
            ],
            unchanged: 3,
        };
        let expected = format!(
            "RESOURCE                REPOSITORY           COMMIT   STATE    FORGE                 DESCRIPTION\n\
             Kustomization/apps/web  github.com/acme/app  abababa  failure  github                build failed: x\n\
             Kustomization/apps/web  github.com/acme/app  abababa  failure  github (not allowed)  {}…\n\
             2 updates to post, 1 undeliverable, 3 unchanged\n",
            "é".repeat(71)
        );
        assert_eq!(plan_table(&plan), expected);
    }

    #[test]
    fn an_empty_plan_says_so() {
        assert_eq!(
            plan_table(&Plan::default()),
            "0 updates to post, 0 undeliverable, 0 unchanged\n"
        );
        assert_eq!(plan_json(&Plan::default()), "{\n  \"updates\": []\n}\n");
    }
}
