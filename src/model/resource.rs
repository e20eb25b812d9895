//! What the exporter concludes about Flux objects: their state as a whole and what each one says
//! about the commits it speaks for.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::flux::{ResourceRef, SourceKind};
use crate::model::commit::{CommitState, CommitTarget, RepoLocation};

/// The state of a Flux object as a whole (the `state` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceState {
    Pending,
    Success,
    Failure,
    Suspended,
}

impl ResourceState {
    /// Every state, in metric order.
    pub const ALL: [ResourceState; 4] = [
        ResourceState::Pending,
        ResourceState::Success,
        ResourceState::Failure,
        ResourceState::Suspended,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Pending => "pending",
            ResourceState::Success => "success",
            ResourceState::Failure => "failure",
            ResourceState::Suspended => "suspended",
        }
    }
}

/// The `Ready` condition's status, `Unknown` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    True,
    False,
    Unknown,
}

/// Reasons the exporter gives itself (the others are Flux's condition reasons).
pub mod reasons {
    /// The source moved to a commit the object has not attempted yet, or it never reconciled.
    pub const QUEUED: &str = "Queued";
    /// `metadata.generation` is ahead of `status.observedGeneration`.
    pub const SPEC_CHANGE_PENDING: &str = "SpecChangePending";
    /// The object is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// A commit we posted as pending is no longer the one the object is working on.
    pub const SUPERSEDED: &str = "Superseded";
    /// A commit we posted as pending whose object left the cluster (or the watched scope).
    pub const DELETED: &str = "Deleted";
    /// Flux's reason for waiting on `dependsOn`.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// Flux's in-progress reason.
    pub const PROGRESSING: &str = "Progressing";
}

/// What one object says about one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub target: CommitTarget,
    pub state: CommitState,
    /// Flux condition reason (e.g. `HealthCheckFailed`) or one of [`reasons`].
    pub reason: String,
    /// First line of the condition message, or the exporter's own explanation.
    pub message: String,
}

/// Everything the exporter concluded about one Flux object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAssessment {
    pub resource: ResourceRef,
    pub state: ResourceState,
    pub ready: Readiness,
    pub reason: String,
    pub message: String,
    /// The source the object reads (`sourceRef`, or the chart's source for a HelmRelease).
    pub source: Option<(SourceKind, String, String)>,
    /// The repository the object's commits live in (the first, when there are several).
    pub repository: Option<RepoLocation>,
    /// `lastAppliedRevision` (Kustomization) or the deployed chart version (HelmRelease).
    pub applied_revision: Option<String>,
    /// `lastAttemptedRevision`.
    pub attempted_revision: Option<String>,
    /// The source artifact's current revision.
    pub source_revision: Option<String>,
    /// When the source's revision differs from the applied one: since when, as far as the
    /// cluster says (the source artifact's last update), if it says.
    pub drift: Option<Option<Timestamp>>,
    /// `lastTransitionTime` of the Ready condition.
    pub ready_since: Option<Timestamp>,
    /// Commits this object speaks for, newest first.
    pub observations: Vec<Observation>,
    /// Why no commit could be named, when none could.
    pub unattributed: Option<String>,
}

/// The assessment of a whole snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    pub resources: Vec<ResourceAssessment>,
}

impl Assessment {
    /// Every observation with the object it came from.
    pub fn observations(&self) -> impl Iterator<Item = (&ResourceAssessment, &Observation)> {
        self.resources
            .iter()
            .flat_map(|r| r.observations.iter().map(move |o| (r, o)))
    }
}
