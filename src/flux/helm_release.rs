use serde::Deserialize;

use super::meta::{first_only, null_as_default};
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
    /// The newest entry of the release history (helm-controller lists it first and keeps up
    /// to `maxHistory`, 5 by default); older entries are skipped while decoding.
    #[serde(default, deserialize_with = "first_only")]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn history_of(status: &str) -> Vec<String> {
        let status: HelmReleaseStatus = serde_json::from_str(status).unwrap();
        status
            .history
            .iter()
            .map(|s| s.chart_version.clone())
            .collect()
    }

    #[test]
    fn only_the_newest_history_entry_is_kept_and_the_others_are_skipped_unread() {
        let entry = |v: &str| {
            format!(r#"{{"chartName":"app","chartVersion":"{v}","status":"deployed","version":3}}"#)
        };
        // Older entries are skipped without being decoded, even when they lack fields.
        let status = format!(
            r#"{{"history":[{},{},{{"unexpected":true}}]}}"#,
            entry("1.2.0"),
            entry("1.1.0")
        );
        assert_eq!(history_of(&status), ["1.2.0"]);
        assert_eq!(history_of(r#"{"history":null}"#), Vec::<String>::new());
        assert_eq!(history_of(r#"{"history":[]}"#), Vec::<String>::new());
        assert_eq!(history_of("{}"), Vec::<String>::new());
    }

    #[test]
    fn a_malformed_newest_history_entry_is_an_error() {
        let result: Result<HelmReleaseStatus, _> =
            serde_json::from_str(r#"{"history":[{"chartName":"app"}]}"#);
        assert!(result.is_err());
    }
}
