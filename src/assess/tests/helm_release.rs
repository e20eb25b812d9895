//! HelmReleases: which commits they speak for and what their conditions say.

use super::*;

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
    let assessment = assess(&snapshot, &Config::built_in().unwrap());
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
    let assessment = assess(&snapshot, &Config::built_in().unwrap());
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
        let assessment = assess(&snapshot, &Config::built_in().unwrap());
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
    let r = &assess(&snapshot, &Config::built_in().unwrap()).resources[0];
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
