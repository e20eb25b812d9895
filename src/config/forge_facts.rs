//! What configuration needs to know about each forge kind. Each fact is one small lookup so
//! that it can be answered from the forge profile table instead.

use super::{RateLimit, defaults};
use crate::model::ForgeKind;

/// The host of the public service of `kind`, used when `forges[].host` is not given; `None`
/// for kinds that are only self-hosted.
pub(super) fn default_host(kind: ForgeKind) -> Option<&'static str> {
    match kind {
        ForgeKind::GitHub => Some("github.com"),
        ForgeKind::GitLab => Some("gitlab.com"),
        ForgeKind::BitbucketCloud => Some("bitbucket.org"),
        ForgeKind::AzureDevOps => Some("dev.azure.com"),
        _ => None,
    }
}

/// The API base URL when `forges[].apiUrl` is not given: known only for public services.
pub(super) fn default_api_url(kind: ForgeKind, host: &str) -> Option<&'static str> {
    kind.public_api_url(host)
}

/// The path after the host of a self-hosted instance's API, for the example in an error.
pub(super) fn api_path_example(kind: ForgeKind) -> &'static str {
    match kind {
        ForgeKind::GitHub => "/api/v3",
        _ => "",
    }
}

/// Whether `credentials.basic` (username and password) is accepted by `kind`.
pub(super) fn accepts_basic(kind: ForgeKind) -> bool {
    matches!(
        kind,
        ForgeKind::BitbucketCloud | ForgeKind::BitbucketServer | ForgeKind::Gitea
    )
}

/// Whether `credentials.githubApp` is accepted by `kind`.
pub(super) fn accepts_github_app(kind: ForgeKind) -> bool {
    kind == ForgeKind::GitHub
}

/// The public service's forge kind for a well-known host, for hosts no forge is configured for.
pub(super) fn kind_for_public_host(host: &str) -> Option<ForgeKind> {
    ForgeKind::for_public_host(host)
}

/// Pacing defaults when `forges[].rateLimit` leaves a field out.
pub fn default_rate_limit(kind: ForgeKind) -> RateLimit {
    match kind {
        ForgeKind::GitHub => defaults::GITHUB_RATE_LIMIT,
        ForgeKind::BitbucketCloud => defaults::BITBUCKET_CLOUD_RATE_LIMIT,
        _ => defaults::OTHER_FORGE_RATE_LIMIT,
    }
}
