//! The commits a Kustomization speaks for.

use jiff::Timestamp;

use super::conditions::verdict;
use super::index::{Index, locate};
use crate::config::Config;
use crate::flux::revision::{CommitSha, commit_of};
use crate::flux::{FluxKind, Kustomization, ResourceRef, SourceKind};
use crate::model::{
    CommitState, CommitTarget, Observation, RepoLocation, ResourceAssessment, ResourceState,
    reasons,
};

/// The commits a Kustomization's source and status name, and where they live.
#[derive(Default)]
pub(super) struct KustomizationCommits {
    pub(super) location: Option<RepoLocation>,
    pub(super) source: Option<CommitSha>,
    pub(super) attempted: Option<CommitSha>,
    pub(super) applied: Option<CommitSha>,
    pub(super) source_revision: Option<String>,
    pub(super) source_updated: Option<Timestamp>,
    pub(super) problem: Option<String>,
}

pub(super) fn kustomization_commits(
    k: &Kustomization,
    index: &Index<'_>,
    config: &Config,
) -> KustomizationCommits {
    let source_ref = &k.spec.source_ref;
    let key = (
        source_ref.namespace_or(&k.metadata.namespace),
        source_ref.name.as_str(),
    );
    let status = &k.status;
    let attempted_rev = status.last_attempted_revision.as_deref();
    let applied_rev = status.last_applied_revision.as_deref();
    let missing = || KustomizationCommits {
        problem: Some(format!(
            "source {}/{}/{} not found",
            source_ref.kind, key.0, key.1
        )),
        ..Default::default()
    };
    match source_ref.kind {
        SourceKind::GitRepository => {
            let Some(git) = index.git.get(&key) else {
                return missing();
            };
            let artifact = git.status.artifact.as_ref();
            let location = locate(&git.spec.url, config);
            KustomizationCommits {
                source: artifact.and_then(|a| commit_of(&a.revision)),
                attempted: attempted_rev.and_then(commit_of),
                applied: applied_rev.and_then(commit_of),
                source_revision: artifact.map(|a| a.revision.clone()),
                source_updated: artifact.and_then(|a| a.last_update_time),
                problem: location
                    .as_ref()
                    .err()
                    .map(|e| format!("GitRepository {}/{}: {e}", key.0, key.1)),
                location: location.ok(),
            }
        }
        SourceKind::OciRepository => {
            let Some(oci) = index.oci.get(&key) else {
                return missing();
            };
            let artifact = oci.status.artifact.as_ref();
            let origin = artifact
                .and_then(|a| a.metadata.revision.as_deref())
                .and_then(commit_of);
            let origin_url = artifact.and_then(|a| a.metadata.source.as_deref());
            let artifact_rev = artifact.map(|a| a.revision.as_str());
            let applied = status
                .last_applied_origin_revision
                .as_deref()
                .and_then(commit_of)
                .or_else(|| {
                    if applied_rev.is_some() && applied_rev == artifact_rev {
                        origin
                    } else {
                        None
                    }
                });
            let attempted = if attempted_rev.is_some() && attempted_rev == artifact_rev {
                origin
            } else if attempted_rev.is_some() && attempted_rev == applied_rev {
                applied
            } else {
                None
            };
            let (location, problem) = match origin_url {
                None => (
                    None,
                    Some(format!(
                        "OCIRepository {}/{}: the artifact has no org.opencontainers.image.source annotation",
                        key.0, key.1
                    )),
                ),
                Some(url) => match locate(url, config) {
                    Ok(l) => (Some(l), None),
                    Err(e) => (
                        None,
                        Some(format!(
                            "OCIRepository {}/{}: org.opencontainers.image.source {e}",
                            key.0, key.1
                        )),
                    ),
                },
            };
            let problem = problem.or_else(|| {
                origin.is_none().then(|| format!("OCIRepository {}/{}: the artifact has no org.opencontainers.image.revision naming a git commit", key.0, key.1))
            });
            KustomizationCommits {
                location,
                source: origin,
                attempted,
                applied,
                source_revision: artifact.map(|a| a.revision.clone()),
                source_updated: artifact.and_then(|a| a.last_update_time),
                problem,
            }
        }
        SourceKind::Bucket if index.buckets.contains_key(&key) => KustomizationCommits {
            problem: Some(format!(
                "Bucket {}/{}: bucket revisions name no git commit",
                key.0, key.1
            )),
            ..Default::default()
        },
        SourceKind::Bucket => missing(),
        other => KustomizationCommits {
            problem: Some(format!(
                "{other} {}/{}: this source kind names no git commit",
                key.0, key.1
            )),
            ..Default::default()
        },
    }
}

pub(super) fn assess_kustomization(
    k: &Kustomization,
    index: &Index<'_>,
    config: &Config,
) -> ResourceAssessment {
    let status = &k.status;
    let v = verdict(
        &status.conditions,
        k.metadata.generation,
        status.observed_generation,
        k.spec.suspend,
    );
    let commits = kustomization_commits(k, index, config);
    let mut observations = Vec::new();
    if let (Some(location), false) = (&commits.location, v.state == ResourceState::Suspended) {
        let observe = |sha: CommitSha, state, reason: &str, message: &str| Observation {
            target: CommitTarget {
                location: location.clone(),
                sha,
            },
            state,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        let attempted = commits.attempted;
        let waiting_on_dependency = v.reason == reasons::DEPENDENCY_NOT_READY;
        let current: Option<Observation> = match v.state {
            ResourceState::Success => match (attempted, commits.applied) {
                // Ready=True is only final once the attempted commit is the applied one.
                (Some(a), Some(p)) if a != p => Some(observe(
                    a,
                    CommitState::Pending,
                    reasons::PROGRESSING,
                    "applied revision not yet updated",
                )),
                (a, p) => a
                    .or(p)
                    .map(|sha| observe(sha, CommitState::Success, &v.reason, &v.message)),
            },
            ResourceState::Failure => attempted
                .or(commits.source)
                .map(|sha| observe(sha, CommitState::Failure, &v.reason, &v.message)),
            ResourceState::Pending if waiting_on_dependency => commits
                .source
                .filter(|s| Some(*s) != commits.applied)
                .map(|sha| observe(sha, CommitState::Pending, &v.reason, &v.message)),
            // A routine re-reconcile of the applied commit changes nothing about that commit.
            ResourceState::Pending if v.in_progress => attempted
                .filter(|a| Some(*a) != commits.applied)
                .map(|sha| observe(sha, CommitState::Pending, &v.reason, &v.message)),
            ResourceState::Pending if v.reason == reasons::QUEUED => None,
            ResourceState::Pending => attempted
                .or(commits.source)
                .map(|sha| observe(sha, CommitState::Pending, &v.reason, &v.message)),
            ResourceState::Suspended => None,
        };
        let current_sha = current.as_ref().map(|o| o.target.sha);
        if let Some(source) = commits.source
            && Some(source) != current_sha
            && Some(source) != attempted
            && !waiting_on_dependency
        {
            observations.push(observe(
                source,
                CommitState::Pending,
                reasons::QUEUED,
                "waiting to be reconciled",
            ));
        }
        observations.extend(current);
    }
    // Kept for the whole tick (and by the metrics until the next): no spare capacity.
    observations.shrink_to_fit();
    let drift = match (&commits.source_revision, &status.last_applied_revision) {
        (Some(source), Some(applied)) if source != applied => Some(commits.source_updated),
        (Some(_), None) => Some(commits.source_updated),
        _ => None,
    };
    let source_ref = &k.spec.source_ref;
    ResourceAssessment {
        resource: ResourceRef::new(
            FluxKind::Kustomization,
            &k.metadata.namespace,
            &k.metadata.name,
        ),
        state: v.state,
        ready: v.ready,
        reason: v.reason,
        message: v.message,
        source: Some((
            source_ref.kind,
            source_ref.namespace_or(&k.metadata.namespace).to_string(),
            source_ref.name.clone(),
        )),
        unattributed: if commits.location.is_some()
            && (commits.source.is_some()
                || commits.attempted.is_some()
                || commits.applied.is_some())
        {
            None
        } else {
            commits
                .problem
                .clone()
                .or_else(|| Some("no revision names a git commit yet".to_string()))
        },
        repository: commits.location,
        applied_revision: status.last_applied_revision.clone(),
        attempted_revision: status.last_attempted_revision.clone(),
        source_revision: commits.source_revision,
        drift,
        ready_since: status
            .conditions
            .get("Ready")
            .and_then(|c| c.last_transition_time),
        observations,
    }
}
