use serde::Deserialize;

use super::meta::null_as_default;
use super::{Conditions, ObjectMeta, SourceReference};

/// A `kustomize.toolkit.fluxcd.io/v1` Kustomization (partial).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Kustomization {
    pub metadata: ObjectMeta,
    pub spec: KustomizationSpec,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: KustomizationStatus,
}

/// The parts of a Kustomization's spec the exporter reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizationSpec {
    pub source_ref: SourceReference,
    #[serde(default)]
    pub suspend: bool,
}

/// The parts of a Kustomization's status the exporter reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizationStatus {
    #[serde(default)]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub last_applied_revision: Option<String>,
    #[serde(default)]
    pub last_attempted_revision: Option<String>,
    #[serde(default)]
    pub last_applied_origin_revision: Option<String>,
}
