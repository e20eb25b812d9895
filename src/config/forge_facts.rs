//! What configuration needs to know about each forge kind, answered from the forge profile
//! table ([`crate::model::profile`]) so each fact is written once.

use super::RateLimit;
use crate::model::ForgeKind;
use crate::model::profile::CredentialKind;

/// The host of the public service of `kind`, used when `forges[].host` is not given; `None`
/// for kinds that are only self-hosted.
pub(super) fn default_host(kind: ForgeKind) -> Option<&'static str> {
    kind.profile().default_host
}

/// The API base URL when `forges[].apiUrl` is not given: known only for public services.
pub(super) fn default_api_url(kind: ForgeKind, host: &str) -> Option<&'static str> {
    kind.public_api_url(host)
}

/// The path after the host of a self-hosted instance's API, for the example in an error.
pub(super) fn api_path_example(kind: ForgeKind) -> &'static str {
    kind.profile().self_hosted_api_path
}

/// Whether `credentials.basic` (username and password) is accepted by `kind`.
pub(super) fn accepts_basic(kind: ForgeKind) -> bool {
    kind.accepts(CredentialKind::Basic)
}

/// Whether `credentials.githubApp` is accepted by `kind`.
pub(super) fn accepts_github_app(kind: ForgeKind) -> bool {
    kind.accepts(CredentialKind::GitHubApp)
}

/// The public service's forge kind for a well-known host, for hosts no forge is configured for.
pub(super) fn kind_for_public_host(host: &str) -> Option<ForgeKind> {
    ForgeKind::for_public_host(host)
}

/// Pacing defaults when `forges[].rateLimit` leaves a field out.
pub fn default_rate_limit(kind: ForgeKind) -> RateLimit {
    let limit = kind.profile().rate_limit;
    RateLimit {
        per_minute: limit.per_minute,
        per_hour: limit.per_hour,
        concurrency: limit.concurrency,
    }
}
