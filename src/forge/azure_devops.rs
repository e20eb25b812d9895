//! Azure DevOps Services and Server.
//!
//! Repositories are `org/project/repo` (or `collection-path.../project/repo` on a server).
//! States: pending, succeeded, failed; canceled becomes `error` saying the commit was
//! superseded. The context splits at its last `/` into `genre` and `name` (genre `flux` when
//! it has none). API version 7.1; the PAT goes as HTTP Basic with an empty user.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::http::{Failure, ForgeResponse};
use super::text::{encode_segment, fit_context, truncate_chars};
use super::token_auth::TokenTransport;
use super::{Prepared, Publisher, StatusRequest, repository_segments_min, state_description};
use crate::assess::CommitState;
use crate::plan::StatusUpdate;

/// The REST API version requested.
pub const API_VERSION: &str = "7.1";
/// Longest description, genre and name sent (Azure documents none; 255 is conservative).
pub const TEXT_LIMIT: usize = 255;

/// Azure DevOps' state for a neutral state.
pub fn state(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending => "pending",
        CommitState::Success => "succeeded",
        CommitState::Failure => "failed",
        CommitState::Canceled => "error",
    }
}

/// `(genre, name)` of a context: split at the last `/`.
pub fn genre_and_name(context: &str) -> (String, String) {
    match context.rsplit_once('/') {
        Some((genre, name)) if !genre.is_empty() && !name.is_empty() => {
            (genre.to_string(), name.to_string())
        }
        _ => ("flux".to_string(), context.to_string()),
    }
}

/// The request creating `update`'s status (pure).
pub fn prepare(update: &StatusUpdate) -> Result<Prepared, Failure> {
    let parts = repository_segments_min(&update.key.repository, 3, "org/project/repository")?;
    let (repo, scope) = parts
        .split_last()
        .ok_or_else(|| Failure::Invalid("empty repository".into()))?;
    let scope: Vec<String> = scope.iter().map(|s| encode_segment(s)).collect();
    let (genre, name) = genre_and_name(&update.key.context);
    let mut body = json!({
        "state": state(update.state),
        "description": truncate_chars(&state_description(update), TEXT_LIMIT),
        "context": {
            "genre": fit_context(&genre, TEXT_LIMIT),
            "name": fit_context(&name, TEXT_LIMIT),
        },
    });
    if let Some(url) = &update.target_url {
        body["targetUrl"] = json!(url);
    }
    Ok(Prepared::Send(StatusRequest {
        method: http::Method::POST,
        path: format!(
            "/{}/_apis/git/repositories/{}/commits/{}/statuses?api-version={API_VERSION}",
            scope.join("/"),
            encode_segment(repo),
            update.key.sha
        ),
        headers: Vec::new(),
        body,
    }))
}

/// Azure DevOps answers a PAT it does not accept with `203` and its sign-in page rather than
/// `401`; that is a refused credential, not a created status.
pub fn sign_in_page_is_unauthorized(response: ForgeResponse) -> ForgeResponse {
    if response.status != 203 {
        return response;
    }
    ForgeResponse {
        status: 401,
        message: "the sign-in page came back (203): the PAT was not accepted".into(),
        ..response
    }
}

/// The Azure DevOps publisher.
#[derive(Debug)]
pub struct AzureDevOps {
    transport: TokenTransport,
}

impl AzureDevOps {
    pub(crate) fn new(transport: TokenTransport) -> AzureDevOps {
        AzureDevOps { transport }
    }
}

impl Publisher for AzureDevOps {
    fn prepare(&self, update: &StatusUpdate) -> Result<Prepared, Failure> {
        prepare(update)
    }

    fn send<'a>(
        &'a self,
        _update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ForgeResponse, Failure>> {
        Box::pin(async move {
            let response = self.transport.send(request).await?;
            Ok(sign_in_page_is_unauthorized(response))
        })
    }

    fn credential_refused(&self) {
        self.transport.invalidate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::tests::update;

    #[test]
    fn contexts_split_into_genre_and_name() {
        assert_eq!(
            genre_and_name("flux/prod/Kustomization/flux-system/apps"),
            ("flux/prod/Kustomization/flux-system".into(), "apps".into())
        );
        assert_eq!(genre_and_name("apps"), ("flux".into(), "apps".into()));
        assert_eq!(genre_and_name("apps/"), ("flux".into(), "apps/".into()));
    }

    #[test]
    fn server_collections_stay_in_front_of_the_api_path() {
        let u = update(
            "tfs.example.com",
            "tfs/DefaultCollection/Proj/repo",
            CommitState::Success,
        );
        let Prepared::Send(r) = prepare(&u).unwrap() else {
            panic!()
        };
        assert_eq!(
            r.path,
            "/tfs/DefaultCollection/Proj/_apis/git/repositories/repo/commits/0123456789abcdef0123456789abcdef01234567/statuses?api-version=7.1"
        );
        let two = update("dev.azure.com", "org/repo", CommitState::Success);
        assert!(prepare(&two).is_err());
    }
}
