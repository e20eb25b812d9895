//! Git forges: which forge hosts a repository, and the publishers that post statuses to them.
//!
//! Each forge has one file holding its dialect (pure: the request for an update, the parse of
//! a read-back, its state vocabulary); requests go out through one transport per auth family
//! (a token over the shared HTTP client, or GitHub through octocrab). What each forge kind is
//! lives in [`profile`]; [`factory`] pairs each configured forge's dialect and transport.
//! [`Publishers`] routes each update to its forge and owns everything that makes us a good API
//! citizen (pacing, concurrency, retries, rate-limit pauses, time-outs and a circuit breaker),
//! deciding on each answer through the pure [`verdict`].

pub mod answer;
pub mod azure_devops;
pub mod bitbucket_cloud;
pub mod bitbucket_server;
pub mod circuit;
pub mod credentials;
mod delivery;
pub mod dialect;
pub mod dry_run;
pub mod factory;
pub mod gitea;
pub mod github;
mod github_app;
pub mod github_transport;
pub mod gitlab;
pub mod http;
mod lane;

pub mod pacing;
mod policy;
mod publishers;
pub mod read_back;
pub mod request;
mod shutdown;
pub mod text;
mod token_auth;
pub mod transport;
pub mod verdict;

pub use crate::clock::{Clock, TokioClock};
pub use crate::model::{DeliveryOutcome, DeliveryResult};
pub use answer::{Failure, ForgeResponse, RateLimitInfo, ReadAnswer};
pub use credentials::{CredentialError, CredentialSources, SecretSource};
pub use factory::ForgeSetupError;
pub use github_app::check_private_key;
pub use policy::DeliveryPolicy;
pub use publishers::Publishers;
pub use read_back::{ReadBack, ShownStatus, UnreadableAnswer};
pub use request::{Prepared, StatusRequest};

#[cfg(test)]
pub(crate) mod tests {
    use crate::flux::revision::CommitSha;
    use crate::flux::{FluxKind, ResourceRef};
    use crate::model::CommitState;
    use crate::model::Delivery;
    use crate::model::StatusKey;
    use crate::model::StatusUpdate;

    /// An update as the planner makes it, for `host`/`repository`.
    pub(crate) fn update(host: &str, repository: &str, state: CommitState) -> StatusUpdate {
        StatusUpdate {
            key: StatusKey {
                host: host.into(),
                repository: repository.into(),
                sha: CommitSha::from_hex("0123456789abcdef0123456789abcdef01234567")
                    .unwrap_or_else(|| unreachable!()),
                context: "flux/prod/Kustomization/flux-system/apps".into(),
            },
            delivery: Delivery::Forge { forge: "f".into() },
            state,
            reason: "ReconciliationSucceeded".into(),
            description: "applied revision".into(),
            target_url: None,
            resource: ResourceRef {
                kind: FluxKind::Kustomization,
                namespace: "flux-system".into(),
                name: "apps".into(),
            },
            previous: None,
        }
    }
}
