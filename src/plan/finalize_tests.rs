//! A commit posted as pending is finalized when its object stops speaking for it: the object
//! moved to another repository (its source's URL changed, or its `sourceRef` points elsewhere),
//! possibly on another forge, or the object left the cluster. Each case also across a restart,
//! when only the stored ledger remembers what was pending.

use jiff::Timestamp;

use super::*;
use crate::assess::assess;
use crate::assess::tests::{A, B, K, git};
use crate::cluster::Snapshot;
use crate::flux::ConditionStatus::Unknown;
use crate::ledger::{decode, encode};

fn now() -> Timestamp {
    "2026-11-22T12:00:00Z".parse().unwrap()
}

fn config() -> Config {
    Config::from_yaml(
        "cluster: prod\nforges:\n  - name: hub\n    type: github\n    repositories: ['acme/*']\n    credentials: {token: {env: T}}\n  - name: lab\n    type: gitlab\n    repositories: ['acme/*']\n    credentials: {token: {env: U}}\n",
        "test.yaml",
    )
    .unwrap()
}

const HUB: &str = "https://github.com/acme/app.git";
const HUB_OTHER: &str = "https://github.com/acme/other.git";
const LAB: &str = "https://gitlab.com/acme/moved.git";

/// One tick: the ledger observes the assessment, the plan is made and every deliverable
/// update is recorded as delivered.
fn tick(snapshot: &Snapshot, ledger: &mut Ledger) -> Plan {
    let config = config();
    let assessment = assess(snapshot, &config);
    ledger.observe(&assessment, now());
    let planned = plan(&assessment, ledger, &config);
    for u in planned
        .updates
        .iter()
        .filter(|u| u.delivery.is_deliverable())
    {
        ledger.record(u.key.clone(), u.state, &u.reason, now());
    }
    planned
}

/// The ledger as a restarted process reads it back.
fn restarted(ledger: &Ledger) -> Ledger {
    decode(&encode(ledger), "test").unwrap()
}

fn reconciling(sha: &str) -> K {
    K::new("apps", "app")
        .revs(Some(sha), None)
        .cond(
            "Reconciling",
            crate::flux::ConditionStatus::True,
            "Progressing",
            "Building",
        )
        .cond("Ready", Unknown, "Progressing", "")
}

fn one_source(url: &str, sha: &str, k: K) -> Snapshot {
    Snapshot {
        git_repositories: vec![git("apps", "repo", url, Some(&format!("main@sha1:{sha}")))],
        kustomizations: vec![k.0],
        ..Default::default()
    }
}

/// (forge, repository, short sha, state, description) of each update.
fn brief(plan: &Plan) -> Vec<(String, String, String, &'static str, String)> {
    plan.updates
        .iter()
        .map(|u| {
            (
                u.delivery.forge_name().unwrap_or("-").to_string(),
                u.key.repository.clone(),
                u.key.sha.short(),
                u.state.as_str(),
                u.description.clone(),
            )
        })
        .collect()
}

fn row(
    forge: &str,
    repository: &str,
    sha: &str,
    state: &'static str,
    description: &str,
) -> (String, String, String, &'static str, String) {
    (
        forge.into(),
        repository.into(),
        sha[..7].into(),
        state,
        description.into(),
    )
}

#[test]
fn a_source_url_moving_to_another_repository_cancels_the_old_pending_commit_there() {
    let mut ledger = Ledger::new();
    let first = tick(&one_source(HUB, A, reconciling(A)), &mut ledger);
    assert_eq!(
        brief(&first),
        vec![row(
            "hub",
            "acme/app",
            A,
            "pending",
            "progressing: Building"
        )]
    );
    let moved = tick(
        &one_source(
            HUB_OTHER,
            B,
            K::new("apps", "app").revs(Some(B), Some(B)).ready(),
        ),
        &mut ledger,
    );
    assert_eq!(
        brief(&moved),
        vec![
            row(
                "hub",
                "acme/other",
                B,
                "success",
                "reconciliation succeeded: Applied revision: main@sha1:..."
            ),
            row(
                "hub",
                "acme/app",
                A,
                "canceled",
                "superseded by acme/other@bbbbbbb"
            ),
        ]
    );
    assert_eq!(moved.updates[1].reason, "Superseded");
    assert_eq!(moved.updates[1].previous, Some(CommitState::Pending));
    let settled = tick(
        &one_source(
            HUB_OTHER,
            B,
            K::new("apps", "app").revs(Some(B), Some(B)).ready(),
        ),
        &mut ledger,
    );
    assert_eq!(brief(&settled), vec![], "the cancellation is posted once");
}

#[test]
fn a_source_ref_pointing_at_another_git_repository_on_another_forge_cancels_through_the_old_forge()
{
    let mut ledger = Ledger::new();
    tick(&one_source(HUB, A, reconciling(A)), &mut ledger);
    // Restart between the move and the next tick: only the stored ledger knows A was pending.
    let mut ledger = restarted(&ledger);
    let mut k = K::new("apps", "app")
        .revs(Some(B), None)
        .cond("Ready", Unknown, "Progressing", "");
    k.0.spec.source_ref.name = "moved".into();
    let snapshot = Snapshot {
        git_repositories: vec![
            git("apps", "repo", HUB, Some(&format!("main@sha1:{A}"))),
            git("apps", "moved", LAB, Some(&format!("main@sha1:{B}"))),
        ],
        kustomizations: vec![k.0],
        ..Default::default()
    };
    let moved = tick(&snapshot, &mut ledger);
    assert_eq!(
        brief(&moved),
        vec![
            row("lab", "acme/moved", B, "pending", "progressing"),
            row(
                "hub",
                "acme/app",
                A,
                "canceled",
                "superseded by acme/moved@bbbbbbb"
            ),
        ]
    );
    assert_eq!(moved.updates[1].key.host, "github.com");
}

#[test]
fn a_url_change_across_forges_with_a_restart_cancels_the_old_commit_on_the_old_forge() {
    let mut ledger = Ledger::new();
    tick(&one_source(HUB, A, reconciling(A)), &mut ledger);
    let mut ledger = restarted(&ledger);
    let moved = tick(
        &one_source(LAB, B, K::new("apps", "app").revs(Some(B), Some(B)).ready()),
        &mut ledger,
    );
    let canceled: Vec<_> = brief(&moved)
        .into_iter()
        .filter(|r| r.3 == "canceled")
        .collect();
    assert_eq!(
        canceled,
        vec![row(
            "hub",
            "acme/app",
            A,
            "canceled",
            "superseded by acme/moved@bbbbbbb"
        )]
    );
}

#[test]
fn a_deleted_object_cancels_its_pending_commit_once_saying_why() {
    let mut ledger = Ledger::new();
    tick(&one_source(HUB, A, reconciling(A)), &mut ledger);
    let empty = Snapshot {
        git_repositories: vec![git("apps", "repo", HUB, Some(&format!("main@sha1:{A}")))],
        ..Default::default()
    };
    let deleted = tick(&empty, &mut ledger);
    assert_eq!(
        brief(&deleted),
        vec![row(
            "hub",
            "acme/app",
            A,
            "canceled",
            "deleted before it applied aaaaaaa: Kustomization apps/app is gone from the cluster or no longer watched"
        )]
    );
    assert_eq!(deleted.updates[0].reason, "Deleted");
    assert_eq!(deleted.updates[0].resource.name, "app");
    assert_eq!(brief(&tick(&empty, &mut ledger)), vec![], "said once");
}

#[test]
fn a_deleted_object_is_still_canceled_after_a_restart() {
    let mut ledger = Ledger::new();
    tick(&one_source(HUB, A, reconciling(A)), &mut ledger);
    let mut ledger = restarted(&ledger);
    let deleted = tick(&Snapshot::default(), &mut ledger);
    assert_eq!(
        brief(&deleted).into_iter().map(|r| r.3).collect::<Vec<_>>(),
        vec!["canceled"]
    );
}

#[test]
fn a_suspended_or_commitless_object_keeps_its_pending_commit() {
    let mut ledger = Ledger::new();
    tick(&one_source(HUB, A, reconciling(A)), &mut ledger);
    let mut suspended = reconciling(A);
    suspended.0.spec.suspend = true;
    assert_eq!(
        brief(&tick(&one_source(HUB, B, suspended), &mut ledger)),
        vec![]
    );
    // Its source is gone for now: the object names no commit, so it says nothing new.
    let sourceless = Snapshot {
        kustomizations: vec![reconciling(A).0],
        ..Default::default()
    };
    assert_eq!(brief(&tick(&sourceless, &mut ledger)), vec![]);
}

#[test]
fn a_pending_commit_of_an_object_in_a_namespace_this_exporter_does_not_read_is_left_alone() {
    // Another exporter sharing the ledger reads `apps`; this one reads only `team-a`.
    let mut ledger = Ledger::new();
    tick(&one_source(HUB, A, reconciling(A)), &mut ledger);
    let mut config = config();
    config.namespaces = vec!["team-a".to_string()];
    let assessment = assess(&Snapshot::default(), &config);
    ledger.observe(&assessment, now());
    let planned = plan(&assessment, &ledger, &config);
    assert_eq!(brief(&planned), vec![]);
}
