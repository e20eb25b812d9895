//! Sources that name no commit, unusable URLs, and OCI sources.

use super::*;

#[test]
pub(super) fn a_missing_source_or_a_bucket_names_no_commit_and_says_why() {
    let missing = snapshot_with(
        None,
        vec![
            K::new("apps", "app")
                .source(SourceKind::GitRepository, "nope")
                .revs(Some(A), Some(A))
                .ready(),
        ],
    );
    let r = &assess(&missing, &Config::built_in().unwrap()).resources[0];
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
    let r = &assess(&bucket, &Config::built_in().unwrap()).resources[0];
    assert_eq!(
        r.unattributed.as_deref(),
        Some("Bucket apps/b: bucket revisions name no git commit")
    );
}

#[test]
pub(super) fn a_repository_url_that_names_no_repository_is_explained_without_credentials() {
    let mut snapshot = snapshot_with(
        Some(A),
        vec![K::new("apps", "app").revs(Some(A), Some(A)).ready()],
    );
    snapshot.git_repositories[0].spec.url = "https://user:hunter2@github.com/acme".into();
    let r = &assess(&snapshot, &Config::built_in().unwrap()).resources[0];
    assert_eq!(
        r.unattributed.as_deref(),
        Some(
            "GitRepository apps/repo: `github.com/acme`: the path does not name a github repository (owner/repository)"
        )
    );
}

pub(super) fn oci(
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
pub(super) fn an_oci_source_maps_to_a_commit_through_its_annotations() {
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
    let r = &assess(&unannotated, &Config::built_in().unwrap()).resources[0];
    assert_eq!(r.observations.len(), 0);
    assert_eq!(
        r.unattributed.as_deref(),
        Some(
            "OCIRepository apps/manifests: the artifact has no org.opencontainers.image.source annotation"
        )
    );
}
