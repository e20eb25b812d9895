//! What is true of each commit: a pure function from a [`Snapshot`] to observations.
//!
//! Follows the truth table in the README ("How statuses are decided"): each Kustomization and
//! HelmRelease speaks for one or more commits, and for each of them the object's conditions
//! say whether the commit is queued, reconciling, applied and healthy, or failed.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::cluster::Snapshot;
use crate::config::Config;
use crate::flux::repo_url::RepoUrl;
use crate::flux::revision::{CommitSha, commit_of};
use crate::flux::{
    Condition, ConditionStatus, Conditions, FluxKind, GitRepository, HelmChart, HelmRelease,
    Kustomization, OciRepository, ResourceRef, SourceKind, SourceReference,
};
use crate::model::RepoLocation;
use crate::model::{
    Assessment, CommitState, CommitTarget, Observation, Readiness, ResourceAssessment,
    ResourceState, reasons,
};

type Key<'a> = (&'a str, &'a str);

struct Index<'a> {
    git: HashMap<Key<'a>, &'a GitRepository>,
    oci: HashMap<Key<'a>, &'a OciRepository>,
    charts: HashMap<Key<'a>, &'a HelmChart>,
    buckets: HashMap<Key<'a>, ()>,
    kustomizations: HashMap<Key<'a>, &'a Kustomization>,
}

impl<'a> Index<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        fn key<'b>(m: &'b crate::flux::ObjectMeta) -> Key<'b> {
            (m.namespace.as_str(), m.name.as_str())
        }
        Index {
            git: snapshot
                .git_repositories
                .iter()
                .map(|o| (key(&o.metadata), o))
                .collect(),
            oci: snapshot
                .oci_repositories
                .iter()
                .map(|o| (key(&o.metadata), o))
                .collect(),
            charts: snapshot
                .helm_charts
                .iter()
                .map(|o| (key(&o.metadata), o))
                .collect(),
            buckets: snapshot
                .buckets
                .iter()
                .map(|o| (key(&o.metadata), ()))
                .collect(),
            kustomizations: snapshot
                .kustomizations
                .iter()
                .map(|o| (key(&o.metadata), o))
                .collect(),
        }
    }
}

/// Assesses every Kustomization and HelmRelease of the configured kinds.
pub fn assess(snapshot: &Snapshot, config: &Config) -> Assessment {
    let index = Index::new(snapshot);
    let mut resources =
        Vec::with_capacity(snapshot.kustomizations.len() + snapshot.helm_releases.len());
    if config.kinds.contains(&FluxKind::Kustomization) {
        for k in &snapshot.kustomizations {
            resources.push(assess_kustomization(k, &index, config));
        }
    }
    if config.kinds.contains(&FluxKind::HelmRelease) {
        for h in &snapshot.helm_releases {
            resources.push(assess_helm_release(h, &index, config));
        }
    }
    Assessment { resources }
}

/// The object-level verdict from conditions alone.
struct Verdict {
    state: ResourceState,
    ready: Readiness,
    reason: String,
    message: String,
    /// Ready=Unknown or Reconciling=True without a terminal condition.
    in_progress: bool,
}

fn verdict(
    conditions: &Conditions,
    generation: Option<i64>,
    observed: Option<i64>,
    suspended: bool,
) -> Verdict {
    let ready_condition = conditions.get("Ready");
    let ready = match ready_condition.map(|c| c.status) {
        Some(ConditionStatus::True) => Readiness::True,
        Some(ConditionStatus::False) => Readiness::False,
        _ => Readiness::Unknown,
    };
    let from = |state, c: &Condition| Verdict {
        state,
        ready,
        reason: c.reason.clone(),
        message: c.message.clone(),
        in_progress: false,
    };
    if suspended {
        return Verdict {
            state: ResourceState::Suspended,
            ready,
            reason: reasons::SUSPENDED.to_string(),
            message: "reconciliation is suspended".to_string(),
            in_progress: false,
        };
    }
    if let Some(stalled) = conditions
        .get("Stalled")
        .filter(|c| c.status == ConditionStatus::True)
    {
        return from(ResourceState::Failure, stalled);
    }
    let reconciling = conditions
        .get("Reconciling")
        .filter(|c| c.status == ConditionStatus::True);
    let generation_pending = matches!(generation, Some(g) if observed != Some(g));
    match ready_condition {
        None => Verdict {
            state: ResourceState::Pending,
            ready,
            reason: reasons::QUEUED.to_string(),
            message: "waiting for the first reconciliation".to_string(),
            in_progress: false,
        },
        Some(c) if c.status == ConditionStatus::False => {
            if c.reason == reasons::DEPENDENCY_NOT_READY {
                from(ResourceState::Pending, c)
            } else {
                from(ResourceState::Failure, c)
            }
        }
        Some(c)
            if c.status == ConditionStatus::True
                && !generation_pending
                && reconciling.is_none() =>
        {
            from(ResourceState::Success, c)
        }
        Some(c) if c.status == ConditionStatus::True && generation_pending => Verdict {
            state: ResourceState::Pending,
            ready,
            reason: reasons::SPEC_CHANGE_PENDING.to_string(),
            message: format!(
                "generation {} not yet reconciled (observed {})",
                generation.unwrap_or_default(),
                observed.map_or_else(|| "none".to_string(), |o| o.to_string())
            ),
            in_progress: false,
        },
        Some(c) => {
            let shown = reconciling.unwrap_or(c);
            let mut v = from(ResourceState::Pending, shown);
            if v.reason.is_empty() {
                v.reason = reasons::PROGRESSING.to_string();
            }
            v.in_progress = true;
            v
        }
    }
}

/// The commits a Kustomization's source and status name, and where they live.
#[derive(Default)]
struct KustomizationCommits {
    location: Option<RepoLocation>,
    source: Option<CommitSha>,
    attempted: Option<CommitSha>,
    applied: Option<CommitSha>,
    source_revision: Option<String>,
    source_updated: Option<Timestamp>,
    problem: Option<String>,
}

fn locate(url: &str, config: &Config) -> Result<RepoLocation, String> {
    let parsed = RepoUrl::parse(url).map_err(|e| e.to_string())?;
    parsed
        .locate(config.forge_kind_for_host(&parsed.host))
        .map_err(|e| e.to_string())
}

fn kustomization_commits(
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

fn assess_kustomization(
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

/// The HelmChart a HelmRelease uses: `status.helmChart`, or the chart helm-controller names
/// `<namespace>-<name>` in the chart source's namespace, or `spec.chartRef` to a HelmChart.
fn chart_of<'a>(h: &'a HelmRelease, index: &Index<'a>) -> Option<&'a HelmChart> {
    if let Some(chart_ref) = h
        .spec
        .chart_ref
        .as_ref()
        .filter(|r| r.kind == SourceKind::HelmChart)
    {
        return index
            .charts
            .get(&(
                chart_ref.namespace_or(&h.metadata.namespace),
                chart_ref.name.as_str(),
            ))
            .copied();
    }
    if let Some((ns, name)) = h
        .status
        .helm_chart
        .as_deref()
        .and_then(|c| c.split_once('/'))
        && let Some(chart) = index.charts.get(&(ns, name))
    {
        return Some(chart);
    }
    let template = h.spec.chart.as_ref()?;
    let ns = template.spec.source_ref.namespace_or(&h.metadata.namespace);
    let name = format!("{}-{}", h.metadata.namespace, h.metadata.name);
    index.charts.get(&(ns, name.as_str())).copied()
}

/// A HelmRelease's chart: its source, the chart artifact revision, and the commit it was
/// built from (or why none is known).
struct ChartCommit {
    source: Option<(SourceKind, String, String)>,
    revision: Option<String>,
    target: Result<CommitTarget, String>,
}

/// The commit a HelmRelease's chart was built from, and its repository.
fn chart_commit(h: &HelmRelease, index: &Index<'_>, config: &Config) -> ChartCommit {
    let hr_ns = h.metadata.namespace.as_str();
    if let Some(chart_ref) = h
        .spec
        .chart_ref
        .as_ref()
        .filter(|r| r.kind == SourceKind::OciRepository)
    {
        return oci_chart_commit(chart_ref, hr_ns, index, config);
    }
    let Some(chart) = chart_of(h, index) else {
        let source = h.spec.chart.as_ref().map(|t| {
            let r = &t.spec.source_ref;
            (r.kind, r.namespace_or(hr_ns).to_string(), r.name.clone())
        });
        return ChartCommit {
            source,
            revision: None,
            target: Err("its HelmChart was not found".to_string()),
        };
    };
    let chart_ns = chart.metadata.namespace.as_str();
    let r = &chart.spec.source_ref;
    let source = Some((r.kind, chart_ns.to_string(), r.name.clone()));
    let revision = chart.status.artifact.as_ref().map(|a| a.revision.clone());
    let target = if r.kind != SourceKind::GitRepository {
        Err(format!(
            "its chart comes from {} {chart_ns}/{}, which names no git commit",
            r.kind, r.name
        ))
    } else if let Some(git) = index.git.get(&(chart_ns, r.name.as_str())) {
        locate(&git.spec.url, config).and_then(|location| {
            let sha = chart
                .status
                .observed_source_artifact_revision
                .as_deref()
                .and_then(commit_of)
                .ok_or_else(|| {
                    format!(
                        "HelmChart {chart_ns}/{} has no observed source revision naming a commit",
                        chart.metadata.name
                    )
                })?;
            Ok(CommitTarget { location, sha })
        })
    } else {
        Err(format!("GitRepository {chart_ns}/{} not found", r.name))
    };
    ChartCommit {
        source,
        revision,
        target,
    }
}

fn oci_chart_commit(
    chart_ref: &SourceReference,
    hr_ns: &str,
    index: &Index<'_>,
    config: &Config,
) -> ChartCommit {
    let ns = chart_ref.namespace_or(hr_ns);
    let source = Some((
        SourceKind::OciRepository,
        ns.to_string(),
        chart_ref.name.clone(),
    ));
    let Some(oci) = index.oci.get(&(ns, chart_ref.name.as_str())) else {
        return ChartCommit {
            source,
            revision: None,
            target: Err(format!("OCIRepository {ns}/{} not found", chart_ref.name)),
        };
    };
    let artifact = oci.status.artifact.as_ref();
    let revision = artifact.map(|a| a.revision.clone());
    let target = (|| {
        let artifact = artifact.ok_or("the OCIRepository has no artifact yet")?;
        let url = artifact
            .metadata
            .source
            .as_deref()
            .ok_or("the chart artifact has no org.opencontainers.image.source annotation")?;
        let sha = artifact
            .metadata
            .revision
            .as_deref()
            .and_then(commit_of)
            .ok_or(
                "the chart artifact has no org.opencontainers.image.revision naming a git commit",
            )?;
        let location =
            locate(url, config).map_err(|e| format!("org.opencontainers.image.source {e}"))?;
        Ok::<_, String>(CommitTarget { location, sha })
    })();
    ChartCommit {
        source,
        revision,
        target,
    }
}

/// The commit at which the owning Kustomization last applied this object: its attempted
/// commit once it got as far as applying, else its applied commit.
fn owner_commit(h: &HelmRelease, index: &Index<'_>, config: &Config) -> Option<CommitTarget> {
    let labels = &h.metadata.labels;
    let key = (
        labels.kustomization_namespace.as_deref()?,
        labels.kustomization_name.as_deref()?,
    );
    let owner = index.kustomizations.get(&key)?;
    let commits = kustomization_commits(owner, index, config);
    let location = commits.location?;
    let failed_before_apply = owner.status.conditions.get("Ready").is_some_and(|c| {
        c.status == ConditionStatus::False
            && matches!(
                c.reason.as_str(),
                "BuildFailed" | "ArtifactFailed" | reasons::DEPENDENCY_NOT_READY
            )
    });
    let sha = if failed_before_apply {
        commits.applied
    } else {
        commits.attempted.or(commits.applied)
    }?;
    Some(CommitTarget { location, sha })
}

fn assess_helm_release(h: &HelmRelease, index: &Index<'_>, config: &Config) -> ResourceAssessment {
    let status = &h.status;
    let v = verdict(
        &status.conditions,
        h.metadata.generation,
        status.observed_generation,
        h.spec.suspend,
    );
    let ChartCommit {
        source,
        revision: chart_revision,
        target: chart_target,
    } = chart_commit(h, index, config);
    let mut targets: Vec<CommitTarget> = Vec::new();
    targets.extend(owner_commit(h, index, config));
    let chart_problem = match chart_target {
        Ok(t) => {
            if !targets.contains(&t) {
                targets.push(t);
            }
            None
        }
        Err(problem) => Some(problem),
    };
    let observations = if v.state == ResourceState::Suspended {
        Vec::new()
    } else {
        let state = match v.state {
            ResourceState::Success => CommitState::Success,
            ResourceState::Failure => CommitState::Failure,
            _ => CommitState::Pending,
        };
        targets
            .iter()
            .map(|t| Observation {
                target: t.clone(),
                state,
                reason: v.reason.clone(),
                message: v.message.clone(),
            })
            .collect()
    };
    let deployed = status.latest_snapshot().map(|s| s.chart_version.clone());
    let drift = match (&chart_revision, &deployed) {
        (Some(source), Some(applied)) if source != applied => Some(None),
        _ => None,
    };
    ResourceAssessment {
        resource: ResourceRef::new(
            FluxKind::HelmRelease,
            &h.metadata.namespace,
            &h.metadata.name,
        ),
        state: v.state,
        ready: v.ready,
        reason: v.reason,
        message: v.message,
        source,
        repository: targets.first().map(|t| t.location.clone()),
        applied_revision: deployed,
        attempted_revision: status.last_attempted_revision.clone(),
        source_revision: chart_revision,
        drift,
        ready_since: status
            .conditions
            .get("Ready")
            .and_then(|c| c.last_transition_time),
        unattributed: if targets.is_empty() {
            Some(chart_problem.map_or_else(
                || "not applied by a Kustomization and no chart source names a commit".to_string(),
                |p| format!("not applied by a Kustomization, and {p}"),
            ))
        } else {
            None
        },
        observations,
    }
}

/// `HealthCheckFailed` → `health check failed`: a Flux reason in words.
pub fn reason_in_words(reason: &str) -> String {
    let mut words = String::with_capacity(reason.len() + 4);
    let chars: Vec<char> = reason.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                words.push(' ');
            }
        }
        words.extend(c.to_lowercase());
    }
    words
}

/// `reason in words: message`, the default status description; just the message when it
/// already starts with those words.
pub fn summary(reason: &str, message: &str) -> String {
    let words = reason_in_words(reason);
    let repeats = message
        .get(..words.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(&words));
    match (words.is_empty(), message.is_empty()) {
        (_, true) => words,
        (true, false) => message.to_string(),
        (false, false) if repeats => message.to_string(),
        (false, false) => format!("{words}: {message}"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
