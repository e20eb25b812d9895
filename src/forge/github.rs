//! GitHub and GitHub Enterprise Server, through octocrab.
//!
//! States: pending, success, failure; canceled becomes `error` with a description that says
//! the commit was superseded (GitHub has no canceled state). Descriptions are cut to 140
//! characters and contexts fitted to 255. Authentication is a token or a GitHub App
//! installation token; octocrab's own auth and retry layers are not used, so that pacing,
//! retries and credential refresh stay ours.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use octocrab::Octocrab;
use serde_json::json;

use super::clock::Clock;
use super::credentials::{CredentialSources, SecretSource};
use super::github_app::{AppToken, GitHubApp};
use super::http::{Failure, ForgeResponse, error_chain, reduce, sensitive};
use super::text::{fit_context, truncate_chars};
use super::{Prepared, Publisher, StatusRequest, repository_segments, state_description};
use crate::assess::CommitState;
use crate::config::{Credentials, ForgeConfig};
use crate::plan::StatusUpdate;

/// Longest description GitHub accepts.
pub const DESCRIPTION_LIMIT: usize = 140;
/// Longest context GitHub accepts.
pub const CONTEXT_LIMIT: usize = 255;
/// The REST API version requested.
pub const API_VERSION: &str = "2022-11-28";

/// GitHub's state for a neutral state.
pub fn state(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending => "pending",
        CommitState::Success => "success",
        CommitState::Failure => "failure",
        CommitState::Canceled => "error",
    }
}

/// The request creating `update`'s status (pure).
pub fn prepare(update: &StatusUpdate) -> Result<Prepared, Failure> {
    let [owner, repo] = repository_segments::<2>(&update.key.repository, "owner/repository")?;
    let path = format!(
        "/repos/{}/{}/statuses/{}",
        super::text::encode_segment(owner),
        super::text::encode_segment(repo),
        update.key.sha
    );
    let mut body = json!({
        "state": state(update.state),
        "context": fit_context(&update.key.context, CONTEXT_LIMIT),
        "description": truncate_chars(&state_description(update), DESCRIPTION_LIMIT),
    });
    if let Some(url) = &update.target_url {
        body["target_url"] = json!(url);
    }
    Ok(Prepared::Send(StatusRequest {
        method: http::Method::POST,
        path,
        headers: Vec::new(),
        body,
    }))
}

enum GitHubAuth {
    Token(SecretSource),
    App(GitHubApp),
}

/// The GitHub publisher.
pub struct GitHub {
    crab: Octocrab,
    auth: GitHubAuth,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").finish_non_exhaustive()
    }
}

impl GitHub {
    /// A publisher for `forge`, whose credential is read from `sources` when first needed.
    pub fn new(
        forge: &ForgeConfig,
        sources: &CredentialSources,
        clock: Arc<dyn Clock>,
    ) -> Result<GitHub, String> {
        let crab = octocrab::Octocrab::builder()
            .base_uri(forge.api_url.as_str())
            .map_err(|e| format!("apiUrl `{}`: {e}", forge.api_url))?
            .build()
            .map_err(|e| format!("cannot build the GitHub client: {}", error_chain(&e)))?;
        let auth = match &forge.credentials {
            Credentials::Token(r) => GitHubAuth::Token(sources.source(r)),
            Credentials::GitHubApp {
                app_id,
                installation_id,
                private_key,
            } => GitHubAuth::App(GitHubApp::new(
                *app_id,
                *installation_id,
                sources.source(private_key),
            )),
            Credentials::Basic { .. } => {
                return Err("basic credentials do not work with GitHub (use token)".into());
            }
        };
        Ok(GitHub { crab, auth, clock })
    }
}

impl Publisher for GitHub {
    fn prepare(&self, update: &StatusUpdate) -> Result<Prepared, Failure> {
        prepare(update)
    }

    fn send<'a>(
        &'a self,
        update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ForgeResponse, Failure>> {
        Box::pin(async move {
            let token = match &self.auth {
                GitHubAuth::Token(source) => source.get().await?,
                GitHubAuth::App(app) => {
                    let [owner, repo] =
                        repository_segments::<2>(&update.key.repository, "owner/repository")?;
                    match app
                        .installation_token(&self.crab, self.clock.as_ref(), owner, repo)
                        .await?
                    {
                        AppToken::Token(token) => token,
                        AppToken::Refused(response) => return Ok(response),
                    }
                }
            };
            let value = format!("Bearer {}", token.expose());
            let secrets = vec![value.clone(), token.expose().to_string()];
            let body = serde_json::to_string(&request.body)
                .map_err(|e| Failure::Invalid(e.to_string()))?;
            let http_request = http::Request::builder()
                .method(request.method.clone())
                .uri(request.path.as_str())
                .header(http::header::AUTHORIZATION, sensitive(&value)?)
                .header(http::header::ACCEPT, "application/vnd.github+json")
                .header("x-github-api-version", API_VERSION)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
                .map_err(|e| Failure::Invalid(format!("cannot build the request: {e}")))?;
            execute(&self.crab, http_request, &secrets, self.clock.as_ref()).await
        })
    }

    fn credential_refused(&self) {
        match &self.auth {
            GitHubAuth::Token(source) => source.invalidate(),
            GitHubAuth::App(app) => app.invalidate(),
        }
    }
}

/// Sends one request through octocrab, reducing the answer; `secrets` stay out of messages.
pub(super) async fn execute(
    crab: &Octocrab,
    request: http::Request<String>,
    secrets: &[String],
    clock: &dyn Clock,
) -> Result<ForgeResponse, Failure> {
    let (answer, _) = reduce(crab.execute(request).await, secrets, || clock.wall()).await?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::tests::update;

    #[test]
    fn canceled_becomes_error_saying_superseded() {
        let mut u = update("github.com", "acme/app", CommitState::Canceled);
        u.description = "replaced by a newer commit".into();
        let Prepared::Send(request) = prepare(&u).unwrap() else {
            panic!("expected a request");
        };
        assert_eq!(request.body["state"], "error");
        assert_eq!(
            request.body["description"],
            "superseded: replaced by a newer commit"
        );
    }

    #[test]
    fn a_repository_that_is_not_owner_and_name_is_refused() {
        let u = update("github.com", "acme/sub/app", CommitState::Success);
        assert_eq!(
            prepare(&u).unwrap_err().to_string(),
            "repository `acme/sub/app` is not owner/repository"
        );
    }
}
