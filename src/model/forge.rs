//! The forge kinds and their configuration names; what each kind is lives in
//! [`super::profile`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The git forges the exporter can post commit statuses to. Names follow Flux's notification
/// Provider types so that Flux users recognise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// github.com and GitHub Enterprise Server.
    #[serde(rename = "github")]
    GitHub,
    /// gitlab.com and self-managed GitLab.
    #[serde(rename = "gitlab")]
    GitLab,
    /// Bitbucket Cloud (bitbucket.org).
    #[serde(rename = "bitbucket")]
    BitbucketCloud,
    /// Bitbucket Server / Data Center.
    #[serde(rename = "bitbucketserver")]
    BitbucketServer,
    /// Azure DevOps Services and Server.
    #[serde(rename = "azuredevops")]
    AzureDevOps,
    /// Gitea and Forgejo (same status API).
    #[serde(rename = "gitea", alias = "forgejo")]
    Gitea,
}

impl ForgeKind {
    /// Every kind, in documentation order.
    pub const ALL: [ForgeKind; 6] = [
        ForgeKind::GitHub,
        ForgeKind::GitLab,
        ForgeKind::BitbucketCloud,
        ForgeKind::BitbucketServer,
        ForgeKind::AzureDevOps,
        ForgeKind::Gitea,
    ];

    /// The configuration name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "github",
            ForgeKind::GitLab => "gitlab",
            ForgeKind::BitbucketCloud => "bitbucket",
            ForgeKind::BitbucketServer => "bitbucketserver",
            ForgeKind::AzureDevOps => "azuredevops",
            ForgeKind::Gitea => "gitea",
        }
    }
}

impl fmt::Display for ForgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A forge type name that is not supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown forge type `{0}` (expected one of github, gitlab, bitbucket, bitbucketserver, azuredevops, gitea, forgejo)"
)]
pub struct UnknownForgeKind(pub String);

impl FromStr for ForgeKind {
    type Err = UnknownForgeKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "forgejo" => Ok(ForgeKind::Gitea),
            _ => ForgeKind::ALL
                .into_iter()
                .find(|k| k.as_str() == s)
                .ok_or_else(|| UnknownForgeKind(s.to_string())),
        }
    }
}
