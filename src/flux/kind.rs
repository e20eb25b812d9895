use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The Flux kinds the exporter reads, with the API group and version it reads them at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FluxKind {
    Kustomization,
    HelmRelease,
    GitRepository,
    #[serde(rename = "OCIRepository")]
    OciRepository,
    HelmChart,
    Bucket,
}

impl FluxKind {
    /// Every kind, in the order a tick reads them (sources first).
    pub const ALL: [FluxKind; 6] = [
        FluxKind::GitRepository,
        FluxKind::OciRepository,
        FluxKind::HelmChart,
        FluxKind::Bucket,
        FluxKind::Kustomization,
        FluxKind::HelmRelease,
    ];

    /// The kind name as it appears in `kind:` and in status contexts.
    pub fn as_str(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "Kustomization",
            FluxKind::HelmRelease => "HelmRelease",
            FluxKind::GitRepository => "GitRepository",
            FluxKind::OciRepository => "OCIRepository",
            FluxKind::HelmChart => "HelmChart",
            FluxKind::Bucket => "Bucket",
        }
    }

    /// API group of the kind.
    pub fn group(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "kustomize.toolkit.fluxcd.io",
            FluxKind::HelmRelease => "helm.toolkit.fluxcd.io",
            _ => "source.toolkit.fluxcd.io",
        }
    }

    /// The API version the exporter reads (the only one the current CRDs serve).
    pub fn version(self) -> &'static str {
        match self {
            FluxKind::HelmRelease => "v2",
            _ => "v1",
        }
    }

    /// `group/version`, as in an object's `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "kustomize.toolkit.fluxcd.io/v1",
            FluxKind::HelmRelease => "helm.toolkit.fluxcd.io/v2",
            _ => "source.toolkit.fluxcd.io/v1",
        }
    }

    /// Lower-case plural resource name used in API paths and RBAC rules.
    pub fn plural(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "kustomizations",
            FluxKind::HelmRelease => "helmreleases",
            FluxKind::GitRepository => "gitrepositories",
            FluxKind::OciRepository => "ocirepositories",
            FluxKind::HelmChart => "helmcharts",
            FluxKind::Bucket => "buckets",
        }
    }

    /// Whether objects of this kind are reported as commit statuses (the others are sources).
    pub fn is_reconciler(self) -> bool {
        matches!(self, FluxKind::Kustomization | FluxKind::HelmRelease)
    }
}

impl fmt::Display for FluxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that is not one of the Flux kinds the exporter knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown Flux kind `{0}` (expected one of Kustomization, HelmRelease, GitRepository, OCIRepository, HelmChart, Bucket)"
)]
pub struct UnknownKind(pub String);

impl FromStr for FluxKind {
    type Err = UnknownKind;

    /// Accepts the kind name (case-insensitive) or its plural resource name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FluxKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s) || k.plural().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// Kinds a `sourceRef` or `chartRef` may point at (the CRDs' enums, all versions combined).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceKind {
    GitRepository,
    #[serde(rename = "OCIRepository")]
    OciRepository,
    Bucket,
    HelmRepository,
    HelmChart,
    ExternalArtifact,
}

impl SourceKind {
    /// The kind name as written in `sourceRef.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::GitRepository => "GitRepository",
            SourceKind::OciRepository => "OCIRepository",
            SourceKind::Bucket => "Bucket",
            SourceKind::HelmRepository => "HelmRepository",
            SourceKind::HelmChart => "HelmChart",
            SourceKind::ExternalArtifact => "ExternalArtifact",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of one Flux object in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    pub kind: FluxKind,
    pub namespace: String,
    pub name: String,
}

impl ResourceRef {
    /// Builds a reference from its parts.
    pub fn new(kind: FluxKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ResourceRef {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}
