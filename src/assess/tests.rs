//! The truth table, row by row.

use super::*;
use crate::flux::revision::CommitSha;
use crate::flux::{
    Artifact, ArtifactMetadata, GitRepositorySpec, HelmChartSpec, HelmChartStatus,
    HelmChartTemplate, HelmChartTemplateSpec, HelmReleaseSnapshot, HelmReleaseSpec,
    HelmReleaseStatus, KustomizationSpec, KustomizationStatus, ObjectMeta, OciRepositorySpec,
    OwnerLabels, SourceStatus,
};

pub(crate) const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(crate) const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub(crate) const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

fn sha(hex: &str) -> CommitSha {
    CommitSha::from_hex(hex).unwrap()
}

fn rev(hex: &str) -> String {
    format!("main@sha1:{hex}")
}

fn meta(ns: &str, name: &str, generation: i64) -> ObjectMeta {
    ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        generation: Some(generation),
        labels: OwnerLabels::default(),
    }
}

fn cond(type_: &str, status: ConditionStatus, reason: &str, message: &str) -> Condition {
    Condition::new(type_, status, reason, message)
}

use ConditionStatus::{False, True, Unknown};

pub(crate) fn git(ns: &str, name: &str, url: &str, revision: Option<&str>) -> GitRepository {
    GitRepository {
        metadata: meta(ns, name, 1),
        spec: GitRepositorySpec {
            url: url.into(),
            suspend: false,
        },
        status: SourceStatus {
            observed_generation: Some(1),
            conditions: Conditions(vec![cond("Ready", True, "Succeeded", "stored artifact")]),
            artifact: revision.map(|r| Artifact {
                revision: r.into(),
                last_update_time: Some("2026-11-22T10:00:00Z".parse().unwrap()),
                metadata: ArtifactMetadata::default(),
            }),
        },
    }
}

/// A Kustomization in `ns` reading GitRepository `repo`, with the given status.
pub(crate) struct K(pub Kustomization);

impl K {
    pub(crate) fn new(ns: &str, name: &str) -> K {
        K(Kustomization {
            metadata: meta(ns, name, 1),
            spec: KustomizationSpec {
                source_ref: SourceReference {
                    kind: SourceKind::GitRepository,
                    name: "repo".into(),
                    namespace: None,
                },
                suspend: false,
            },
            status: KustomizationStatus {
                observed_generation: Some(1),
                ..Default::default()
            },
        })
    }
    pub(crate) fn revs(mut self, attempted: Option<&str>, applied: Option<&str>) -> K {
        self.0.status.last_attempted_revision = attempted.map(rev);
        self.0.status.last_applied_revision = applied.map(rev);
        self
    }
    pub(crate) fn cond(
        mut self,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: &str,
    ) -> K {
        self.0
            .status
            .conditions
            .0
            .push(cond(type_, status, reason, message));
        self
    }
    pub(crate) fn ready(self) -> K {
        self.cond(
            "Ready",
            True,
            "ReconciliationSucceeded",
            "Applied revision: main@sha1:...",
        )
    }
    fn generation(mut self, generation: i64, observed: i64) -> K {
        self.0.metadata.generation = Some(generation);
        self.0.status.observed_generation = Some(observed);
        self
    }
    fn suspended(mut self) -> K {
        self.0.spec.suspend = true;
        self
    }
    fn source(mut self, kind: SourceKind, name: &str) -> K {
        self.0.spec.source_ref = SourceReference {
            kind,
            name: name.into(),
            namespace: None,
        };
        self
    }
}

fn snapshot_with(source_rev: Option<&str>, ks: Vec<K>) -> Snapshot {
    let mut s = Snapshot {
        git_repositories: vec![git(
            "apps",
            "repo",
            "https://github.com/acme/app.git",
            source_rev.map(rev).as_deref(),
        )],
        kustomizations: ks.into_iter().map(|k| k.0).collect(),
        ..Default::default()
    };
    s.sort();
    s
}

fn observations_of(snapshot: &Snapshot) -> Vec<(String, CommitState, String)> {
    let assessment = assess(snapshot, &Config::built_in());
    assessment
        .observations()
        .map(|(_, o)| (o.target.sha.short(), o.state, o.reason.clone()))
        .collect()
}

fn one(source: Option<&str>, k: K) -> Vec<(String, CommitState, String)> {
    observations_of(&snapshot_with(source, vec![k]))
}

fn expect(pairs: &[(&str, CommitState, &str)]) -> Vec<(String, CommitState, String)> {
    pairs
        .iter()
        .map(|(s, st, r)| (s[..7].to_string(), *st, r.to_string()))
        .collect()
}

use CommitState::{Failure, Pending, Success};

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
        let assessment = assess(&snapshot, &Config::built_in());
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
    let assessment = assess(&snapshot, &Config::built_in());
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
    let assessment = assess(&snapshot, &Config::built_in());
    assert!(assessment.resources[0].observations.is_empty());
    assert_eq!(assessment.resources[0].state, ResourceState::Suspended);
}

#[test]
fn drift_is_the_source_revision_differing_from_the_applied_one_since_the_artifact_changed() {
    let snapshot = snapshot_with(
        Some(B),
        vec![K::new("apps", "app").revs(Some(A), Some(A)).ready()],
    );
    let assessment = assess(&snapshot, &Config::built_in());
    let r = &assessment.resources[0];
    assert_eq!(r.drift, Some(Some("2026-11-22T10:00:00Z".parse().unwrap())));
    assert_eq!(r.source_revision.as_deref(), Some(rev(B).as_str()));
    assert_eq!(r.applied_revision.as_deref(), Some(rev(A).as_str()));
    let settled = snapshot_with(
        Some(A),
        vec![K::new("apps", "app").revs(Some(A), Some(A)).ready()],
    );
    assert_eq!(
        assess(&settled, &Config::built_in()).resources[0].drift,
        None
    );
}

#[test]
fn a_missing_source_or_a_bucket_names_no_commit_and_says_why() {
    let missing = snapshot_with(
        None,
        vec![
            K::new("apps", "app")
                .source(SourceKind::GitRepository, "nope")
                .revs(Some(A), Some(A))
                .ready(),
        ],
    );
    let r = &assess(&missing, &Config::built_in()).resources[0];
    assert!(r.observations.is_empty());
    assert_eq!(
        r.unattributed.as_deref(),
        Some("source GitRepository/apps/nope not found")
    );
    assert_eq!(
        r.state,
        ResourceState::Success,
        "the object is still assessed for metrics"
    );

    let mut bucket = snapshot_with(
        None,
        vec![
            K::new("apps", "app")
                .source(SourceKind::Bucket, "b")
                .ready(),
        ],
    );
    bucket.buckets.push(crate::flux::Bucket {
        metadata: meta("apps", "b", 1),
        spec: crate::flux::BucketSpec {
            bucket_name: "b".into(),
            suspend: false,
        },
        status: SourceStatus::default(),
    });
    let r = &assess(&bucket, &Config::built_in()).resources[0];
    assert_eq!(
        r.unattributed.as_deref(),
        Some("Bucket apps/b: bucket revisions name no git commit")
    );
}

#[test]
fn a_repository_url_that_names_no_repository_is_explained_without_credentials() {
    let mut snapshot = snapshot_with(
        Some(A),
        vec![K::new("apps", "app").revs(Some(A), Some(A)).ready()],
    );
    snapshot.git_repositories[0].spec.url = "https://user:hunter2@github.com/acme".into();
    let r = &assess(&snapshot, &Config::built_in()).resources[0];
    assert_eq!(
        r.unattributed.as_deref(),
        Some(
            "GitRepository apps/repo: `github.com/acme`: the path does not name a github repository (owner/repository)"
        )
    );
}

fn oci(
    ns: &str,
    name: &str,
    revision: &str,
    origin: Option<&str>,
    url: Option<&str>,
) -> OciRepository {
    OciRepository {
        metadata: meta(ns, name, 1),
        spec: OciRepositorySpec {
            url: "oci://ghcr.io/acme/manifests".into(),
            suspend: false,
        },
        status: SourceStatus {
            observed_generation: Some(1),
            conditions: Conditions::default(),
            artifact: Some(Artifact {
                revision: revision.into(),
                last_update_time: None,
                metadata: ArtifactMetadata {
                    revision: origin.map(rev),
                    source: url.map(String::from),
                },
            }),
        },
    }
}

#[test]
fn an_oci_source_maps_to_a_commit_through_its_annotations() {
    let digest = format!("latest@sha256:{}", "d".repeat(64));
    let old_digest = format!("latest@sha256:{}", "e".repeat(64));
    let mut k = K::new("apps", "app")
        .source(SourceKind::OciRepository, "manifests")
        .ready();
    k.0.status.last_attempted_revision = Some(old_digest.clone());
    k.0.status.last_applied_revision = Some(old_digest);
    k.0.status.last_applied_origin_revision = Some(rev(A));
    let snapshot = Snapshot {
        kustomizations: vec![k.0.clone()],
        oci_repositories: vec![oci(
            "apps",
            "manifests",
            &digest,
            Some(B),
            Some("https://github.com/acme/app"),
        )],
        ..Default::default()
    };
    assert_eq!(
        observations_of(&snapshot),
        expect(&[
            (B, Pending, "Queued"),
            (A, Success, "ReconciliationSucceeded")
        ])
    );

    let unannotated = Snapshot {
        kustomizations: vec![k.0],
        oci_repositories: vec![oci("apps", "manifests", &digest, None, None)],
        ..Default::default()
    };
    let r = &assess(&unannotated, &Config::built_in()).resources[0];
    assert_eq!(r.observations.len(), 0);
    assert_eq!(
        r.unattributed.as_deref(),
        Some(
            "OCIRepository apps/manifests: the artifact has no org.opencontainers.image.source annotation"
        )
    );
}

fn helm_release(ns: &str, name: &str, conditions: Vec<Condition>) -> HelmRelease {
    HelmRelease {
        metadata: meta(ns, name, 1),
        spec: HelmReleaseSpec {
            chart: Some(HelmChartTemplate {
                spec: HelmChartTemplateSpec {
                    chart: "./charts/app".into(),
                    version: None,
                    source_ref: SourceReference {
                        kind: SourceKind::GitRepository,
                        name: "charts".into(),
                        namespace: None,
                    },
                },
            }),
            chart_ref: None,
            suspend: false,
        },
        status: HelmReleaseStatus {
            observed_generation: Some(1),
            conditions: Conditions(conditions),
            helm_chart: Some(format!("{ns}/{ns}-{name}")),
            last_attempted_revision: Some("1.2.0".into()),
            history: vec![HelmReleaseSnapshot {
                chart_name: "app".into(),
                chart_version: "1.2.0".into(),
                app_version: None,
                status: "deployed".into(),
                version: Some(3),
            }],
        },
    }
}

fn helm_chart(
    ns: &str,
    name: &str,
    source_kind: SourceKind,
    source: &str,
    observed: Option<&str>,
) -> HelmChart {
    HelmChart {
        metadata: meta(ns, name, 1),
        spec: HelmChartSpec {
            chart: "./charts/app".into(),
            source_ref: SourceReference {
                kind: source_kind,
                name: source.into(),
                namespace: None,
            },
            suspend: false,
        },
        status: HelmChartStatus {
            observed_generation: Some(1),
            conditions: Conditions::default(),
            observed_source_artifact_revision: observed.map(rev),
            artifact: Some(Artifact {
                revision: "1.2.0".into(),
                last_update_time: None,
                metadata: ArtifactMetadata::default(),
            }),
        },
    }
}

#[test]
fn a_helm_release_speaks_for_its_kustomization_commit_and_its_git_chart_commit() {
    let mut hr = helm_release(
        "team",
        "web",
        vec![cond(
            "Ready",
            True,
            "UpgradeSucceeded",
            "Helm upgrade succeeded",
        )],
    );
    hr.metadata.labels = OwnerLabels {
        kustomization_name: Some("apps".into()),
        kustomization_namespace: Some("flux-system".into()),
    };
    let mut fleet = K::new("flux-system", "apps").revs(Some(B), Some(A)).cond(
        "Ready",
        False,
        "HealthCheckFailed",
        "timeout",
    );
    fleet.0.spec.source_ref.name = "fleet".into();
    let snapshot = Snapshot {
        kustomizations: vec![fleet.0],
        helm_releases: vec![hr],
        git_repositories: vec![
            git(
                "flux-system",
                "fleet",
                "ssh://git@github.com/acme/fleet.git",
                Some(&rev(B)),
            ),
            git(
                "team",
                "charts",
                "https://gitlab.com/acme/platform/charts.git",
                Some(&rev(C)),
            ),
        ],
        helm_charts: vec![helm_chart(
            "team",
            "team-web",
            SourceKind::GitRepository,
            "charts",
            Some(C),
        )],
        ..Default::default()
    };
    let assessment = assess(&snapshot, &Config::built_in());
    let hr = assessment
        .resources
        .iter()
        .find(|r| r.resource.kind == FluxKind::HelmRelease)
        .unwrap();
    let targets: Vec<(String, String, CommitState)> = hr
        .observations
        .iter()
        .map(|o| (o.target.location.to_string(), o.target.sha.short(), o.state))
        .collect();
    assert_eq!(
        targets,
        vec![
            (
                "github.com/acme/fleet".to_string(),
                B[..7].to_string(),
                Success
            ),
            (
                "gitlab.com/acme/platform/charts".to_string(),
                C[..7].to_string(),
                Success
            ),
        ],
        "the owner applied B (its health check failed after applying), and the chart was built from C"
    );
}

#[test]
fn a_helm_release_applied_before_its_kustomization_failed_to_build_speaks_for_the_applied_commit() {
    let mut hr = helm_release(
        "team",
        "web",
        vec![cond("Ready", True, "UpgradeSucceeded", "")],
    );
    hr.spec.chart.as_mut().unwrap().spec.source_ref.kind = SourceKind::HelmRepository;
    hr.metadata.labels = OwnerLabels {
        kustomization_name: Some("app".into()),
        kustomization_namespace: Some("apps".into()),
    };
    let owner =
        K::new("apps", "app")
            .revs(Some(B), Some(A))
            .cond("Ready", False, "BuildFailed", "bad");
    let mut snapshot = snapshot_with(Some(B), vec![owner]);
    snapshot.helm_releases.push(hr);
    snapshot.helm_charts.push(helm_chart(
        "team",
        "team-web",
        SourceKind::HelmRepository,
        "bitnami",
        None,
    ));
    let assessment = assess(&snapshot, &Config::built_in());
    let hr = assessment
        .resources
        .iter()
        .find(|r| r.resource.kind == FluxKind::HelmRelease)
        .unwrap();
    assert_eq!(hr.observations.len(), 1);
    assert_eq!(hr.observations[0].target.sha, sha(A));
}

#[test]
fn helm_release_conditions_decide_its_state() {
    let cases: Vec<(Vec<Condition>, CommitState, &str)> = vec![
        (
            vec![cond("Ready", True, "InstallSucceeded", "")],
            Success,
            "InstallSucceeded",
        ),
        (
            vec![cond("Ready", False, "UpgradeFailed", "upgrade failed")],
            Failure,
            "UpgradeFailed",
        ),
        (
            vec![
                cond(
                    "Stalled",
                    True,
                    "RetriesExceeded",
                    "Failed to upgrade after 3 attempts",
                ),
                cond("Ready", False, "UpgradeFailed", ""),
            ],
            Failure,
            "RetriesExceeded",
        ),
        (
            vec![cond(
                "Ready",
                Unknown,
                "Progressing",
                "Running 'upgrade' action",
            )],
            Pending,
            "Progressing",
        ),
        (
            vec![
                cond(
                    "Reconciling",
                    True,
                    "Progressing",
                    "Running 'install' action",
                ),
                cond("Ready", True, "InstallSucceeded", ""),
            ],
            Pending,
            "Progressing",
        ),
        (
            vec![cond(
                "Ready",
                False,
                "DependencyNotReady",
                "dependency 'db' is not ready",
            )],
            Pending,
            "DependencyNotReady",
        ),
        (vec![], Pending, "Queued"),
    ];
    for (conditions, state, reason) in cases {
        let snapshot = Snapshot {
            helm_releases: vec![helm_release("team", "web", conditions.clone())],
            git_repositories: vec![git(
                "team",
                "charts",
                "https://github.com/acme/charts",
                Some(&rev(C)),
            )],
            helm_charts: vec![helm_chart(
                "team",
                "team-web",
                SourceKind::GitRepository,
                "charts",
                Some(C),
            )],
            ..Default::default()
        };
        let assessment = assess(&snapshot, &Config::built_in());
        let o = &assessment.resources[0].observations;
        assert_eq!(o.len(), 1, "{conditions:?}");
        assert_eq!(
            (o[0].state, o[0].reason.as_str()),
            (state, reason),
            "{conditions:?}"
        );
    }
}

#[test]
fn a_helm_release_from_a_helm_repository_without_an_owner_names_no_commit() {
    let mut hr = helm_release(
        "team",
        "redis",
        vec![cond("Ready", True, "InstallSucceeded", "")],
    );
    hr.spec.chart.as_mut().unwrap().spec.source_ref = SourceReference {
        kind: SourceKind::HelmRepository,
        name: "bitnami".into(),
        namespace: None,
    };
    let snapshot = Snapshot {
        helm_releases: vec![hr],
        helm_charts: vec![helm_chart(
            "team",
            "team-redis",
            SourceKind::HelmRepository,
            "bitnami",
            None,
        )],
        ..Default::default()
    };
    let r = &assess(&snapshot, &Config::built_in()).resources[0];
    assert!(r.observations.is_empty());
    assert_eq!(
        r.unattributed.as_deref(),
        Some(
            "not applied by a Kustomization, and its chart comes from HelmRepository team/bitnami, which names no git commit"
        )
    );
}

#[test]
fn only_configured_kinds_are_assessed() {
    let config = Config::from_yaml("kinds: [HelmRelease]\n", "t").unwrap();
    let snapshot = snapshot_with(Some(A), vec![K::new("apps", "app")]);
    assert!(assess(&snapshot, &config).resources.is_empty());
}

#[test]
fn reasons_read_as_words() {
    assert_eq!(reason_in_words("HealthCheckFailed"), "health check failed");
    assert_eq!(
        reason_in_words("DependencyNotReady"),
        "dependency not ready"
    );
    assert_eq!(
        reason_in_words("OCIArtifactPullFailed"),
        "oci artifact pull failed"
    );
    assert_eq!(
        summary("BuildFailed", "kustomize build failed"),
        "build failed: kustomize build failed"
    );
    assert_eq!(summary("Queued", ""), "queued");
}
