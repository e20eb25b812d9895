//! Kustomizations: queued, reconciling, applied, failed, suspended, drifting.

use super::*;

#[test]
fn a_source_commit_not_yet_attempted_is_queued() {
    let k = K::new("apps", "app").revs(Some(A), Some(A)).ready();
    assert_eq!(
        one(Some(B), k),
        expect(&[
            (B, Pending, "Queued"),
            (A, Success, "ReconciliationSucceeded")
        ])
    );
}

#[test]
fn an_object_that_never_reconciled_queues_the_source_commit() {
    let k = K::new("apps", "app");
    assert_eq!(one(Some(A), k), expect(&[(A, Pending, "Queued")]));
}

#[test]
fn a_commit_being_reconciled_is_pending() {
    let k = K::new("apps", "app")
        .revs(Some(B), Some(A))
        .cond(
            "Reconciling",
            True,
            "Progressing",
            "Health check in progress",
        )
        .cond(
            "Ready",
            Unknown,
            "Progressing",
            "Reconciliation in progress",
        );
    assert_eq!(one(Some(B), k), expect(&[(B, Pending, "Progressing")]));
}

#[test]
fn ready_unknown_without_reconciling_is_pending_too() {
    let k = K::new("apps", "app").revs(Some(B), Some(A)).cond(
        "Ready",
        Unknown,
        "Progressing",
        "Health check in progress",
    );
    assert_eq!(one(Some(B), k), expect(&[(B, Pending, "Progressing")]));
}

#[test]
fn a_routine_re_reconcile_of_the_applied_commit_posts_nothing_new() {
    let k = K::new("apps", "app")
        .revs(Some(A), Some(A))
        .cond(
            "Reconciling",
            True,
            "Progressing",
            "Reconciliation in progress",
        )
        .cond("Ready", Unknown, "Progressing", "");
    assert_eq!(one(Some(A), k), vec![]);
}

#[test]
fn ready_and_applied_equal_to_attempted_is_success() {
    let k = K::new("apps", "app").revs(Some(A), Some(A)).ready();
    assert_eq!(
        one(Some(A), k),
        expect(&[(A, Success, "ReconciliationSucceeded")])
    );
}

#[test]
fn ready_but_applied_behind_attempted_is_not_yet_success() {
    let k = K::new("apps", "app").revs(Some(B), Some(A)).ready();
    assert_eq!(one(Some(B), k), expect(&[(B, Pending, "Progressing")]));
}

#[test]
fn every_failure_reason_fails_the_attempted_commit_with_its_message() {
    for reason in [
        "BuildFailed",
        "HealthCheckFailed",
        "ReconciliationFailed",
        "ArtifactFailed",
        "PruneFailed",
    ] {
        let k = K::new("apps", "app").revs(Some(B), Some(A)).cond(
            "Ready",
            False,
            reason,
            "it broke\nsecond line",
        );
        let snapshot = snapshot_with(Some(B), vec![k]);
        let assessment = assess(&snapshot, &Config::built_in().unwrap());
        let observations: Vec<&Observation> = assessment.observations().map(|(_, o)| o).collect();
        assert_eq!(observations.len(), 1, "{reason}");
        assert_eq!(
            (observations[0].target.sha, observations[0].state),
            (sha(B), Failure),
            "{reason}"
        );
        assert_eq!(observations[0].reason, reason);
        assert_eq!(observations[0].message, "it broke");
    }
}

#[test]
fn a_failed_commit_and_a_newer_source_commit_are_both_reported() {
    let k = K::new("apps", "app").revs(Some(B), Some(A)).cond(
        "Ready",
        False,
        "BuildFailed",
        "kustomize build failed",
    );
    assert_eq!(
        one(Some(C), k),
        expect(&[(C, Pending, "Queued"), (B, Failure, "BuildFailed")])
    );
}

#[test]
fn waiting_for_a_dependency_is_pending_on_the_source_commit() {
    let k = K::new("apps", "app").revs(Some(A), Some(A)).cond(
        "Ready",
        False,
        "DependencyNotReady",
        "dependency 'apps/db' is not ready",
    );
    assert_eq!(
        one(Some(B), k),
        expect(&[(B, Pending, "DependencyNotReady")])
    );
}

#[test]
fn waiting_for_a_dependency_leaves_an_already_applied_commit_alone() {
    let k = K::new("apps", "app").revs(Some(A), Some(A)).cond(
        "Ready",
        False,
        "DependencyNotReady",
        "dependency 'apps/db' is not ready",
    );
    assert_eq!(one(Some(A), k), vec![]);
}

#[test]
fn stalled_is_a_terminal_failure_of_the_attempted_commit() {
    let k = K::new("apps", "app")
        .revs(Some(B), Some(A))
        .cond("Stalled", True, "InvalidPathError", "path ./apps not found")
        .cond("Ready", Unknown, "Progressing", "");
    assert_eq!(one(Some(B), k), expect(&[(B, Failure, "InvalidPathError")]));
}

#[test]
fn a_health_check_regression_on_the_applied_commit_fails_it_and_recovery_succeeds_it() {
    let healthy = K::new("apps", "app").revs(Some(A), Some(A)).ready();
    let regressed = K::new("apps", "app").revs(Some(A), Some(A)).cond(
        "Ready",
        False,
        "HealthCheckFailed",
        "timeout",
    );
    assert_eq!(
        one(Some(A), healthy),
        expect(&[(A, Success, "ReconciliationSucceeded")])
    );
    assert_eq!(
        one(Some(A), regressed),
        expect(&[(A, Failure, "HealthCheckFailed")])
    );
}

#[test]
fn an_unobserved_generation_is_pending_not_success() {
    let k = K::new("apps", "app")
        .revs(Some(A), Some(A))
        .ready()
        .generation(4, 3);
    assert_eq!(
        one(Some(A), k),
        expect(&[(A, Pending, "SpecChangePending")])
    );
    let snapshot = snapshot_with(
        Some(A),
        vec![
            K::new("apps", "app")
                .revs(Some(A), Some(A))
                .ready()
                .generation(4, 3),
        ],
    );
    let assessment = assess(&snapshot, &Config::built_in().unwrap());
    assert_eq!(
        assessment.resources[0].message,
        "generation 4 not yet reconciled (observed 3)"
    );
}

#[test]
fn a_suspended_object_says_nothing_about_commits_and_reports_suspended() {
    let snapshot = snapshot_with(
        Some(B),
        vec![
            K::new("apps", "app")
                .revs(Some(A), Some(A))
                .ready()
                .suspended(),
        ],
    );
    let assessment = assess(&snapshot, &Config::built_in().unwrap());
    assert!(assessment.resources[0].observations.is_empty());
    assert_eq!(assessment.resources[0].state, ResourceState::Suspended);
}

#[test]
fn drift_is_the_source_revision_differing_from_the_applied_one_since_the_artifact_changed() {
    let snapshot = snapshot_with(
        Some(B),
        vec![K::new("apps", "app").revs(Some(A), Some(A)).ready()],
    );
    let assessment = assess(&snapshot, &Config::built_in().unwrap());
    let r = &assessment.resources[0];
    assert_eq!(r.drift, Some(Some("2026-11-22T10:00:00Z".parse().unwrap())));
    assert_eq!(r.source_revision.as_deref(), Some(rev(B).as_str()));
    assert_eq!(r.applied_revision.as_deref(), Some(rev(A).as_str()));
    let settled = snapshot_with(
        Some(A),
        vec![K::new("apps", "app").revs(Some(A), Some(A)).ready()],
    );
    assert_eq!(
        assess(&settled, &Config::built_in().unwrap()).resources[0].drift,
        None
    );
}
