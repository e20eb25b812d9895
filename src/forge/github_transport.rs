//! Sending GitHub requests through octocrab, with a token or a GitHub App installation token.
//! Octocrab's own auth and retry layers are not used, so that pacing, retries and credential
//! refresh stay ours.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use octocrab::Octocrab;

use super::answer::{Failure, ReadAnswer};
use super::credentials::{CredentialSources, SecretSource};
use super::dialect::repository_pair;
use super::github::API_VERSION;
use super::github_app::{AppToken, GitHubApp};
use super::http::{reduce, sensitive};
use super::request::StatusRequest;
use super::text::error_chain;
use super::token_auth::{UnsupportedCredential, credential_kind};
use super::transport::Transport;
use crate::clock::Clock;
use crate::config::{Credentials, ForgeConfig};
use crate::model::ForgeKind;
use crate::model::StatusUpdate;

/// The GitHub client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GitHubSetupError {
    /// The API URL is not one octocrab can use.
    #[error("apiUrl `{url}`: {problem}")]
    ApiUrl { url: String, problem: String },
    /// Octocrab refused to build.
    #[error("cannot build the GitHub client: {0}")]
    Client(String),
    /// The credential is not one GitHub takes.
    #[error(transparent)]
    Credential(#[from] UnsupportedCredential),
}

enum GitHubAuth {
    Token(SecretSource),
    App(GitHubApp),
}

/// The GitHub transport.
pub struct GitHubTransport {
    crab: Octocrab,
    auth: GitHubAuth,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for GitHubTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubTransport").finish_non_exhaustive()
    }
}

impl GitHubTransport {
    /// A transport for `forge`, whose credential (a token, or a GitHub App's key) is read from
    /// `sources` when first needed.
    pub fn new(
        forge: &ForgeConfig,
        sources: &CredentialSources,
        clock: Arc<dyn Clock>,
    ) -> Result<GitHubTransport, GitHubSetupError> {
        let crab = octocrab::Octocrab::builder()
            .base_uri(forge.api_url.as_str())
            .map_err(|e| GitHubSetupError::ApiUrl {
                url: forge.api_url.clone(),
                problem: e.to_string(),
            })?
            .build()
            .map_err(|e| GitHubSetupError::Client(error_chain(&e)))?;
        let accepted = ForgeKind::GitHub.accepts(credential_kind(&forge.credentials));
        let auth = match &forge.credentials {
            Credentials::Token(r) if accepted => GitHubAuth::Token(sources.source(r)),
            Credentials::GitHubApp {
                app_id,
                installation_id,
                private_key,
            } if accepted => GitHubAuth::App(GitHubApp::new(
                *app_id,
                *installation_id,
                sources.source(private_key),
            )),
            other => {
                return Err(UnsupportedCredential {
                    credential: credential_kind(other).as_str(),
                    kind: ForgeKind::GitHub,
                }
                .into());
            }
        };
        Ok(GitHubTransport { crab, auth, clock })
    }

    /// Sends `request` once with the credential; the answer and its body.
    async fn call(
        &self,
        update: &StatusUpdate,
        request: &StatusRequest,
    ) -> Result<ReadAnswer, Failure> {
        let token = match &self.auth {
            GitHubAuth::Token(source) => source.get().await?,
            GitHubAuth::App(app) => {
                let [owner, repo] = repository_pair(ForgeKind::GitHub, &update.key.repository)?;
                match app
                    .installation_token(&self.crab, self.clock.as_ref(), owner, repo)
                    .await?
                {
                    AppToken::Token(token) => token,
                    AppToken::Refused(response) => return Ok(ReadAnswer::without_body(response)),
                }
            }
        };
        let value = format!("Bearer {}", token.expose());
        let secrets = vec![value.clone(), token.expose().to_string()];
        let builder = http::Request::builder()
            .method(request.method.clone())
            .uri(request.path.as_str())
            .header(http::header::AUTHORIZATION, sensitive(&value)?)
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION);
        let http_request = if request.body.is_null() {
            builder.body(String::new())
        } else {
            let body = serde_json::to_string(&request.body)
                .map_err(|e| Failure::Invalid(e.to_string()))?;
            builder
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
        }
        .map_err(|e| Failure::Invalid(format!("cannot build the request: {e}")))?;
        let clock = self.clock.as_ref();
        let (response, body) = reduce(self.crab.execute(http_request).await, &secrets, || {
            clock.wall()
        })
        .await?;
        Ok(ReadAnswer { response, body })
    }
}

impl Transport for GitHubTransport {
    fn send<'a>(
        &'a self,
        update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>> {
        Box::pin(self.call(update, request))
    }

    fn credential_refused(&self) {
        match &self.auth {
            GitHubAuth::Token(source) => source.invalidate(),
            GitHubAuth::App(app) => app.invalidate(),
        }
    }
}
