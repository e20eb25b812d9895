use jiff::Timestamp;

use super::*;
use crate::assess::assess;
use crate::assess::tests::{A, B, C, K, git};
use crate::cluster::Snapshot;
use crate::flux::ConditionStatus::{False, True, Unknown};

fn now() -> Timestamp {
    "2026-11-22T12:00:00Z".parse().unwrap()
}

fn config() -> Config {
    Config::from_yaml(
        "cluster: prod\nstatuses:\n  targetUrl: 'https://grafana.example.com/d/flux?var-name={name}&sha={short_sha}'\nforges:\n  - type: github\n    repositories: ['acme/*']\n    credentials: {token: {env: T}}\n",
        "test.yaml",
    )
    .unwrap()
}

fn snapshot(url: &str, source: &str, k: K) -> Snapshot {
    Snapshot {
        git_repositories: vec![git(
            "apps",
            "repo",
            url,
            Some(&format!("main@sha1:{source}")),
        )],
        kustomizations: vec![k.0],
        ..Default::default()
    }
}

fn plan_for(snapshot: &Snapshot, ledger: &Ledger) -> Plan {
    let config = config();
    plan(&assess(snapshot, &config), ledger, &config)
}

/// Records every deliverable update, as a successful publish would.
fn deliver(plan: &Plan, ledger: &mut Ledger) {
    for u in plan.updates.iter().filter(|u| u.delivery.is_deliverable()) {
        ledger.record(u.key.clone(), u.state, &u.reason, now());
    }
}

fn brief(plan: &Plan) -> Vec<(String, &'static str, String)> {
    plan.updates
        .iter()
        .map(|u| (u.key.sha.short(), u.state.as_str(), u.description.clone()))
        .collect()
}

fn row(sha: &str, state: &'static str, description: &str) -> (String, &'static str, String) {
    (sha[..7].to_string(), state, description.to_string())
}

const URL: &str = "https://github.com/acme/app.git";

#[test]
fn a_first_plan_posts_the_current_truth_with_rendered_context_description_and_link() {
    let p = plan_for(
        &snapshot(URL, B, K::new("apps", "app").revs(Some(A), Some(A)).ready()),
        &Ledger::new(),
    );
    assert_eq!(p.updates.len(), 2);
    let queued = &p.updates[0];
    assert_eq!(queued.key.context, "flux/prod/Kustomization/apps/app");
    assert_eq!(queued.key.host, "github.com");
    assert_eq!(queued.key.repository, "acme/app");
    assert_eq!(queued.key.sha.to_hex(), B);
    assert_eq!(queued.state, CommitState::Pending);
    assert_eq!(queued.description, "queued: waiting to be reconciled");
    assert_eq!(
        queued.target_url.as_deref(),
        Some("https://grafana.example.com/d/flux?var-name=app&sha=bbbbbbb")
    );
    assert_eq!(
        queued.delivery,
        Delivery::Forge {
            forge: "github".into()
        }
    );
    assert_eq!(queued.previous, None);
    assert_eq!(
        p.updates[1].description,
        "reconciliation succeeded: Applied revision: main@sha1:..."
    );
}

#[test]
fn an_unchanged_observation_is_not_posted_again() {
    let s = snapshot(URL, A, K::new("apps", "app").revs(Some(A), Some(A)).ready());
    let mut ledger = Ledger::new();
    let first = plan_for(&s, &ledger);
    assert_eq!(first.updates.len(), 1);
    deliver(&first, &mut ledger);
    let second = plan_for(&s, &ledger);
    assert_eq!(second.updates, vec![]);
    assert_eq!(second.unchanged, 1);
}

#[test]
fn an_undelivered_update_is_planned_again() {
    let s = snapshot(URL, A, K::new("apps", "app").revs(Some(A), Some(A)).ready());
    let ledger = Ledger::new();
    assert_eq!(plan_for(&s, &ledger).updates.len(), 1);
    assert_eq!(plan_for(&s, &ledger).updates.len(), 1);
}

#[test]
fn a_commit_goes_pending_then_fails_then_a_newer_one_supersedes_a_pending_commit() {
    let mut ledger = Ledger::new();
    // Push B: A is applied, B queued.
    let t1 = plan_for(
        &snapshot(URL, B, K::new("apps", "app").revs(Some(A), Some(A)).ready()),
        &ledger,
    );
    assert_eq!(
        brief(&t1),
        vec![
            row(B, "pending", "queued: waiting to be reconciled"),
            row(
                A,
                "success",
                "reconciliation succeeded: Applied revision: main@sha1:..."
            )
        ]
    );
    deliver(&t1, &mut ledger);
    // B is reconciling.
    let reconciling = K::new("apps", "app")
        .revs(Some(B), Some(A))
        .cond("Reconciling", True, "Progressing", "Building manifests")
        .cond("Ready", Unknown, "Progressing", "");
    let t2 = plan_for(&snapshot(URL, B, reconciling), &ledger);
    assert_eq!(
        brief(&t2),
        vec![row(B, "pending", "progressing: Building manifests")]
    );
    assert_eq!(t2.updates[0].previous, Some(CommitState::Pending));
    deliver(&t2, &mut ledger);
    // Push C before B finished: C queued, B canceled.
    let still = K::new("apps", "app")
        .revs(Some(B), Some(A))
        .cond("Reconciling", True, "Progressing", "Building manifests")
        .cond("Ready", Unknown, "Progressing", "");
    let t3 = plan_for(&snapshot(URL, C, still), &ledger);
    assert_eq!(
        brief(&t3),
        vec![row(C, "pending", "queued: waiting to be reconciled")]
    );
    deliver(&t3, &mut ledger);
    // The controller moves to C: B was never finished, so it is superseded.
    let on_c = K::new("apps", "app").revs(Some(C), Some(A)).cond(
        "Ready",
        False,
        "BuildFailed",
        "kustomize build failed",
    );
    let t4 = plan_for(&snapshot(URL, C, on_c), &ledger);
    assert_eq!(
        brief(&t4),
        vec![
            row(C, "failure", "build failed: kustomize build failed"),
            row(B, "canceled", "superseded by ccccccc")
        ]
    );
    assert_eq!(t4.updates[1].previous, Some(CommitState::Pending));
    assert_eq!(t4.updates[1].reason, "Superseded");
    deliver(&t4, &mut ledger);
    // Nothing else changes: nothing is posted, and the failed C is never canceled.
    let push_d_same = K::new("apps", "app").revs(Some(C), Some(A)).cond(
        "Ready",
        False,
        "BuildFailed",
        "kustomize build failed",
    );
    assert_eq!(
        plan_for(&snapshot(URL, C, push_d_same), &ledger).updates,
        vec![]
    );
}

#[test]
fn success_then_failure_then_success_on_one_commit_posts_each_change() {
    let mut ledger = Ledger::new();
    let states = [
        K::new("apps", "app").revs(Some(A), Some(A)).ready(),
        K::new("apps", "app").revs(Some(A), Some(A)).cond(
            "Ready",
            False,
            "HealthCheckFailed",
            "timeout waiting for: [Deployment/apps/web]",
        ),
        K::new("apps", "app").revs(Some(A), Some(A)).ready(),
    ];
    let mut posted = Vec::new();
    for k in states {
        let p = plan_for(&snapshot(URL, A, k), &ledger);
        posted.extend(p.updates.iter().map(|u| (u.state, u.previous)));
        deliver(&p, &mut ledger);
    }
    assert_eq!(
        posted,
        vec![
            (CommitState::Success, None),
            (CommitState::Failure, Some(CommitState::Success)),
            (CommitState::Success, Some(CommitState::Failure)),
        ]
    );
}

#[test]
fn a_suspended_object_gets_nothing_new_not_even_cancellations() {
    let mut ledger = Ledger::new();
    let reconciling =
        K::new("apps", "app")
            .revs(Some(B), Some(A))
            .cond("Ready", Unknown, "Progressing", "");
    deliver(
        &plan_for(&snapshot(URL, B, reconciling), &ledger),
        &mut ledger,
    );
    let mut suspended =
        K::new("apps", "app")
            .revs(Some(B), Some(A))
            .cond("Ready", Unknown, "Progressing", "");
    suspended.0.spec.suspend = true;
    assert_eq!(
        plan_for(&snapshot(URL, C, suspended), &ledger).updates,
        vec![]
    );
}

#[test]
fn statuses_for_unconfigured_hosts_and_disallowed_repositories_are_marked_undeliverable() {
    let gitlab = plan_for(
        &snapshot(
            "https://gitlab.com/acme/app.git",
            A,
            K::new("apps", "app").revs(Some(A), Some(A)).ready(),
        ),
        &Ledger::new(),
    );
    assert_eq!(gitlab.updates[0].delivery, Delivery::Unmatched);
    let other = plan_for(
        &snapshot(
            "https://github.com/evil/app.git",
            A,
            K::new("apps", "app").revs(Some(A), Some(A)).ready(),
        ),
        &Ledger::new(),
    );
    assert_eq!(
        other.updates[0].delivery,
        Delivery::NotAllowed {
            forge: "github".into()
        }
    );
}

#[test]
fn an_unchanged_state_with_a_new_reason_is_posted() {
    let mut ledger = Ledger::new();
    let failing = |reason: &str| {
        K::new("apps", "app")
            .revs(Some(A), Some(A))
            .cond("Ready", False, reason, "x")
    };
    deliver(
        &plan_for(&snapshot(URL, A, failing("BuildFailed")), &ledger),
        &mut ledger,
    );
    let p = plan_for(&snapshot(URL, A, failing("HealthCheckFailed")), &ledger);
    assert_eq!(brief(&p), vec![row(A, "failure", "health check failed: x")]);
    // A new message alone (same state, same reason) is not worth a post.
    let reworded = K::new("apps", "app").revs(Some(A), Some(A)).cond(
        "Ready",
        False,
        "BuildFailed",
        "another message",
    );
    assert_eq!(
        plan_for(&snapshot(URL, A, reworded), &ledger).updates,
        vec![]
    );
}

#[test]
fn descriptions_follow_the_template_and_stay_on_one_line() {
    let config = Config::from_yaml("statuses:\n  description: '[{state}] {reason_text} ({reason}) at {short_sha} on {cluster}: {message}'\n", "t").unwrap();
    let s = snapshot(
        URL,
        A,
        K::new("apps", "app").revs(Some(A), Some(A)).cond(
            "Ready",
            False,
            "BuildFailed",
            "line one\nline two",
        ),
    );
    let p = plan(&assess(&s, &config), &Ledger::new(), &config);
    assert_eq!(
        p.updates[0].description,
        "[failure] build failed (BuildFailed) at aaaaaaa on default: line one"
    );
}
