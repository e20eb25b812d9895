//! The commits a HelmRelease speaks for: its Kustomization's, and its chart's source's.

use super::conditions::verdict;
use super::index::{Index, locate};
use super::kustomization::kustomization_commits;
use crate::config::Config;
use crate::flux::revision::commit_of;
use crate::flux::{
    ConditionStatus, FluxKind, HelmChart, HelmRelease, ResourceRef, SourceKind, SourceReference,
};
use crate::model::{
    CommitState, CommitTarget, Observation, ResourceAssessment, ResourceState, reasons,
};

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
        locate(&git.spec.url, config)
            .map_err(|e| e.to_string())
            .and_then(|location| {
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

pub(super) fn assess_helm_release(
    h: &HelmRelease,
    index: &Index<'_>,
    config: &Config,
) -> ResourceAssessment {
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
