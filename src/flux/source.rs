use jiff::Timestamp;
use serde::Deserialize;

use super::meta::null_as_default;
use super::{Conditions, ObjectMeta, SourceReference};

/// The artifact a source controller last produced.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub revision: String,
    #[serde(default)]
    pub last_update_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: ArtifactMetadata,
}

/// The OCI annotations that tie an artifact to the git commit it was built from; other
/// metadata keys are dropped while decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ArtifactMetadata {
    #[serde(rename = "org.opencontainers.image.revision", default)]
    pub revision: Option<String>,
    #[serde(rename = "org.opencontainers.image.source", default)]
    pub source: Option<String>,
}

/// Status fields shared by every source kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    #[serde(default)]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub artifact: Option<Artifact>,
}

/// A `source.toolkit.fluxcd.io/v1` GitRepository (partial).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitRepository {
    pub metadata: ObjectMeta,
    pub spec: GitRepositorySpec,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: SourceStatus,
}

/// The parts of a GitRepository's spec the exporter reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitRepositorySpec {
    pub url: String,
    #[serde(default)]
    pub suspend: bool,
}

/// A `source.toolkit.fluxcd.io/v1` OCIRepository (partial).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OciRepository {
    pub metadata: ObjectMeta,
    pub spec: OciRepositorySpec,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: SourceStatus,
}

/// The parts of an OCIRepository's spec the exporter reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OciRepositorySpec {
    pub url: String,
    #[serde(default)]
    pub suspend: bool,
}

/// A `source.toolkit.fluxcd.io/v1` Bucket (partial). Bucket revisions are content digests and
/// never name a commit; buckets are read so that Kustomizations pointing at them resolve.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Bucket {
    pub metadata: ObjectMeta,
    pub spec: BucketSpec,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: SourceStatus,
}

/// The parts of a Bucket's spec the exporter reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketSpec {
    pub bucket_name: String,
    #[serde(default)]
    pub suspend: bool,
}

/// A `source.toolkit.fluxcd.io/v1` HelmChart (partial).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HelmChart {
    pub metadata: ObjectMeta,
    pub spec: HelmChartSpec,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: HelmChartStatus,
}

/// The parts of a HelmChart's spec the exporter reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartSpec {
    pub chart: String,
    /// A `LocalHelmChartSourceReference`: always in the chart's own namespace.
    pub source_ref: SourceReference,
    #[serde(default)]
    pub suspend: bool,
}

/// The parts of a HelmChart's status the exporter reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartStatus {
    #[serde(default)]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Conditions,
    /// The source revision the chart was last built from (a git revision for Git-built charts).
    #[serde(default)]
    pub observed_source_artifact_revision: Option<String>,
    #[serde(default)]
    pub artifact: Option<Artifact>,
}
