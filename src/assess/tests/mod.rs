//! The truth table, row by row.

mod helm_release;
mod kustomization;
mod sources;

use super::*;
use crate::flux::revision::CommitSha;
use crate::flux::{
    Artifact, ArtifactMetadata, Condition, ConditionStatus, Conditions, GitRepository,
    GitRepositorySpec, HelmChart, HelmChartSpec, HelmChartStatus, HelmChartTemplate,
    HelmChartTemplateSpec, HelmRelease, HelmReleaseSnapshot, HelmReleaseSpec, HelmReleaseStatus,
    Kustomization, KustomizationSpec, KustomizationStatus, ObjectMeta, OciRepository,
    OciRepositorySpec, OwnerLabels, SourceKind, SourceReference, SourceStatus,
};
use crate::model::{CommitState, Observation, ResourceState};

pub(crate) const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(crate) const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub(crate) const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

pub(super) fn sha(hex: &str) -> CommitSha {
    CommitSha::from_hex(hex).unwrap()
}

pub(super) fn rev(hex: &str) -> String {
    format!("main@sha1:{hex}")
}

pub(super) fn meta(ns: &str, name: &str, generation: i64) -> ObjectMeta {
    ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        generation: Some(generation),
        labels: OwnerLabels::default(),
    }
}

pub(super) fn cond(type_: &str, status: ConditionStatus, reason: &str, message: &str) -> Condition {
    Condition::new(type_, status, reason, message)
}

pub(super) use ConditionStatus::{False, True, Unknown};

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

pub(super) fn snapshot_with(source_rev: Option<&str>, ks: Vec<K>) -> Snapshot {
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

pub(super) fn observations_of(snapshot: &Snapshot) -> Vec<(String, CommitState, String)> {
    let assessment = assess(snapshot, &Config::built_in().unwrap());
    assessment
        .observations()
        .map(|(_, o)| (o.target.sha.short(), o.state, o.reason.clone()))
        .collect()
}

pub(super) fn one(source: Option<&str>, k: K) -> Vec<(String, CommitState, String)> {
    observations_of(&snapshot_with(source, vec![k]))
}

pub(super) fn expect(pairs: &[(&str, CommitState, &str)]) -> Vec<(String, CommitState, String)> {
    pairs
        .iter()
        .map(|(s, st, r)| (s[..7].to_string(), *st, r.to_string()))
        .collect()
}

pub(super) use CommitState::{Failure, Pending, Success};
