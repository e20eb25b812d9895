//! Partial models of the Flux custom resources: only the fields the exporter reads.
//!
//! Unknown fields are ignored so that newer Flux releases keep working; an object that does not
//! fit these types is skipped by the reader with a warning rather than failing the whole tick.

mod condition;
mod helm_release;
mod kind;
mod kustomization;
mod meta;
pub mod repo_url;
pub mod revision;
pub mod scrub;
mod source;

pub use condition::{Condition, ConditionStatus, Conditions};
pub use helm_release::{
    HelmChartTemplate, HelmChartTemplateSpec, HelmRelease, HelmReleaseSnapshot, HelmReleaseSpec,
    HelmReleaseStatus,
};
pub use kind::{FluxKind, ResourceRef, SourceKind, UnknownKind};
pub use kustomization::{Kustomization, KustomizationSpec, KustomizationStatus};
pub use meta::{ObjectMeta, OwnerLabels, SourceReference};
pub use source::{
    Artifact, ArtifactMetadata, Bucket, BucketSpec, GitRepository, GitRepositorySpec, HelmChart,
    HelmChartSpec, HelmChartStatus, OciRepository, OciRepositorySpec, SourceStatus,
};
