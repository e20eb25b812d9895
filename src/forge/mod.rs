//! Git forges: which forge hosts a repository, and the publishers that post statuses to them.
//!
//! Each forge has one file implementing [`Publisher`]: how a neutral [`StatusUpdate`] becomes
//! that forge's request (pure), and how the request is sent with the forge's credential.
//! [`Publishers`] routes each update to its forge and owns everything that makes us a good API
//! citizen: pacing, concurrency, retries, rate-limit pauses, time-outs and a circuit breaker.

pub mod azure_devops;
pub mod bitbucket_cloud;
pub mod bitbucket_server;
pub mod circuit;
pub mod clock;
pub mod credentials;
pub mod dry_run;
pub mod gitea;
pub mod github;
mod github_app;
pub mod gitlab;
pub mod http;
mod outcome;
pub mod pacing;
mod publishers;
pub mod read_back;
pub mod text;
mod token_auth;

use std::fmt;

use futures_util::future::BoxFuture;

pub use clock::{Clock, TokioClock};
pub use credentials::{CredentialError, CredentialSources, SecretSource};
pub use http::{Failure, ForgeResponse, RateLimitInfo};
pub use outcome::{DeliveryOutcome, DeliveryResult};
pub use publishers::{DeliveryPolicy, Publishers};
pub use read_back::{ReadAnswer, ReadBack, ShownStatus, UnreadableAnswer};

use crate::model::StatusUpdate;

/// A request that creates (`POST`) or reads back (`GET`) a status, relative to the forge's
/// API base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRequest {
    /// `POST` to create a status, `GET` to read one back.
    pub method: ::http::Method,
    /// Path and query, appended to the forge's API URL (`/repos/acme/app/statuses/…`).
    pub path: String,
    /// Headers the forge requires besides the credential (e.g. `X-Atlassian-Token`).
    pub headers: Vec<(&'static str, &'static str)>,
    /// The JSON body, already fitted to the forge's limits; `Null` for a read.
    pub body: serde_json::Value,
}

/// What a forge needs for one update.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// Send this request.
    Send(StatusRequest),
    /// Nothing: the forge already shows what the update says (GitLab cannot re-post an
    /// unchanged in-progress state). Counts as delivered.
    Unnecessary(&'static str),
}

/// One forge's commit-status API.
pub trait Publisher: Send + Sync + fmt::Debug {
    /// The forge's request for `update`, with its states, limits and link (pure). Fails with
    /// [`Failure::Invalid`] when the repository cannot be named on this forge.
    fn prepare(&self, update: &StatusUpdate) -> Result<Prepared, Failure>;

    /// Sends a prepared request once, with the forge's credential. No retries: the caller
    /// decides what an answer means.
    fn send<'a>(
        &'a self,
        update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ForgeResponse, Failure>>;

    /// The request reading page `page` (from 1) of what the forge shows for `update`'s status
    /// (pure); `None` when this publisher does not read statuses back (dry runs).
    fn prepare_read(
        &self,
        update: &StatusUpdate,
        page: u32,
    ) -> Result<Option<StatusRequest>, Failure>;

    /// Sends a read request once, with the forge's credential, and returns the answer with its
    /// body. No retries.
    fn read<'a>(
        &'a self,
        update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>>;

    /// What page `page` of a read's answer says about `update`'s status (pure).
    fn read_back(
        &self,
        update: &StatusUpdate,
        page: u32,
        answer: &ReadAnswer,
    ) -> Result<ReadBack, UnreadableAnswer>;

    /// Whether a refusal means the forge already shows the update's state (GitLab's "Cannot
    /// transition status" between in-progress states).
    fn already_current(&self, _update: &StatusUpdate, _response: &ForgeResponse) -> bool {
        false
    }

    /// The forge refused the credential (401): forget cached values so that the next attempt
    /// reads a rotated one.
    fn credential_refused(&self) {}
}

/// The publishers could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ForgeSetupError {
    #[error("forge `{forge}`: credentials: {source}")]
    Credential {
        forge: String,
        source: CredentialError,
    },
    #[error("forge `{forge}`: {problem}")]
    Client { forge: String, problem: String },
}

/// The path segments of a repository, checked to be exactly `N` non-empty names that cannot
/// change a URL's shape.
pub(crate) fn repository_segments<'a, const N: usize>(
    repository: &'a str,
    expected: &str,
) -> Result<[&'a str; N], Failure> {
    let parts = checked_segments(repository, expected)?;
    parts
        .try_into()
        .map_err(|_| invalid_repository(repository, expected))
}

/// The path segments of a repository, at least `min` of them.
pub(crate) fn repository_segments_min<'a>(
    repository: &'a str,
    min: usize,
    expected: &str,
) -> Result<Vec<&'a str>, Failure> {
    let parts = checked_segments(repository, expected)?;
    if parts.len() < min {
        return Err(invalid_repository(repository, expected));
    }
    Ok(parts)
}

fn checked_segments<'a>(repository: &'a str, expected: &str) -> Result<Vec<&'a str>, Failure> {
    let parts: Vec<&str> = repository.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == ".." || p.chars().any(char::is_control))
    {
        return Err(invalid_repository(repository, expected));
    }
    Ok(parts)
}

fn invalid_repository(repository: &str, expected: &str) -> Failure {
    Failure::Invalid(format!("repository `{repository}` is not {expected}"))
}

/// The update's description; for a canceled update on a forge without a canceled state, one
/// that says the commit was superseded.
pub(crate) fn state_description(update: &StatusUpdate) -> String {
    let text = update.description.trim();
    if update.state != crate::model::CommitState::Canceled
        || text.to_lowercase().contains("superseded")
    {
        return text.to_string();
    }
    if text.is_empty() {
        "superseded".to_string()
    } else {
        format!("superseded: {text}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::flux::revision::CommitSha;
    use crate::flux::{FluxKind, ResourceRef};
    use crate::model::CommitState;
    use crate::model::Delivery;
    use crate::model::StatusKey;

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

    #[test]
    fn segments_must_be_plain_names() {
        assert_eq!(
            repository_segments::<2>("acme/app", "owner/repository").unwrap(),
            ["acme", "app"]
        );
        for bad in [
            "acme/../x",
            "acme//x",
            "acme/app/",
            "acme",
            "a/b/c",
            "acme/\u{7}",
        ] {
            assert!(
                repository_segments::<2>(bad, "owner/repository").is_err(),
                "{bad:?} accepted"
            );
        }
        assert_eq!(
            repository_segments_min("g/s/p", 2, "group/project").unwrap(),
            vec!["g", "s", "p"]
        );
    }

    #[test]
    fn superseded_is_said_once() {
        let mut u = update("h", "a/b", CommitState::Canceled);
        u.description = "Superseded by abc1234".into();
        assert_eq!(state_description(&u), "Superseded by abc1234");
        u.description = String::new();
        assert_eq!(state_description(&u), "superseded");
        u.state = CommitState::Failure;
        assert_eq!(state_description(&u), "");
    }
}
