use serde::Deserialize;

use super::meta::null_as_default;
use super::{Conditions, ObjectMeta, SourceReference};

/// A `helm.toolkit.fluxcd.io/v2` HelmRelease (partial).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HelmRelease {
    pub metadata: ObjectMeta,
    pub spec: HelmReleaseSpec,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: HelmReleaseStatus,
}

/// The parts of a HelmRelease's spec the exporter reads. Exactly one of `chart` and
/// `chart_ref` is set on a valid object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseSpec {
    #[serde(default)]
    pub chart: Option<HelmChartTemplate>,
    #[serde(default)]
    pub chart_ref: Option<SourceReference>,
    #[serde(default)]
    pub suspend: bool,
}

/// `spec.chart`: the template from which helm-controller creates a HelmChart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HelmChartTemplate {
    pub spec: HelmChartTemplateSpec,
}

/// `spec.chart.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateSpec {
    pub chart: String,
    #[serde(default)]
    pub version: Option<String>,
    pub source_ref: SourceReference,
}

/// The parts of a HelmRelease's status the exporter reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseStatus {
    #[serde(default)]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Conditions,
    /// `namespace/name` of the HelmChart helm-controller created for `spec.chart`.
    #[serde(default)]
    pub helm_chart: Option<String>,
    /// Chart version (or OCI digest) last attempted.
    #[serde(default)]
    pub last_attempted_revision: Option<String>,
    /// Release history, newest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub history: Vec<HelmReleaseSnapshot>,
}

impl HelmReleaseStatus {
    /// The newest release snapshot, if helm-controller has released anything.
    pub fn latest_snapshot(&self) -> Option<&HelmReleaseSnapshot> {
        self.history.first()
    }
}

/// One entry of `status.history`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseSnapshot {
    pub chart_name: String,
    pub chart_version: String,
    #[serde(default)]
    pub app_version: Option<String>,
    pub status: String,
    #[serde(default)]
    pub version: Option<i64>,
}
