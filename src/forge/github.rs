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
use serde::Deserialize;
use serde_json::json;

use super::clock::Clock;
use super::credentials::{CredentialSources, SecretSource};
use super::github_app::{AppToken, GitHubApp};
use super::http::{Failure, ForgeResponse, error_chain, reduce, sensitive};
use super::read_back::{self, ReadAnswer, ReadBack, ShownStatus, UnreadableAnswer};
use super::text::{fit_context, truncate_chars};
use super::{Prepared, Publisher, StatusRequest, repository_segments, state_description};
use crate::config::{Credentials, ForgeConfig};
use crate::model::CommitState;
use crate::model::StatusUpdate;

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

/// Statuses per page of a read-back (GitHub's most).
pub const READ_PAGE_SIZE: usize = 100;

/// The request reading page `page` of the commit's combined status: the latest status of each
/// context (pure).
pub fn read_request(update: &StatusUpdate, page: u32) -> Result<StatusRequest, Failure> {
    let [owner, repo] = repository_segments::<2>(&update.key.repository, "owner/repository")?;
    Ok(read_back::get(format!(
        "/repos/{}/{}/commits/{}/status?per_page={READ_PAGE_SIZE}&page={page}",
        super::text::encode_segment(owner),
        super::text::encode_segment(repo),
        update.key.sha
    )))
}

#[derive(Deserialize)]
struct Combined {
    statuses: Vec<CombinedStatus>,
    total_count: Option<usize>,
}

#[derive(Deserialize)]
struct CombinedStatus {
    state: String,
    description: Option<String>,
    context: String,
}

/// What page `page` of the combined status shows for `update`'s context, which GitHub
/// compares case-insensitively (pure).
pub fn read_back(
    update: &StatusUpdate,
    page: u32,
    answer: &ReadAnswer,
) -> Result<ReadBack, UnreadableAnswer> {
    let combined: Combined = read_back::parse_success(answer)?;
    let context = fit_context(&update.key.context, CONTEXT_LIMIT).to_lowercase();
    if let Some(found) = combined
        .statuses
        .iter()
        .find(|s| s.context.to_lowercase() == context)
    {
        return Ok(ReadBack::Shows(ShownStatus {
            state: found.state.clone(),
            description: found.description.clone(),
        }));
    }
    let seen = usize::try_from(page)
        .unwrap_or(usize::MAX)
        .saturating_mul(READ_PAGE_SIZE);
    Ok(match combined.total_count {
        Some(total) if seen < total => ReadBack::NextPage,
        Some(_) => ReadBack::Nothing,
        None => read_back::not_on_page(combined.statuses.len(), READ_PAGE_SIZE),
    })
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

impl GitHub {
    /// Sends `request` once with the credential; the answer and its body.
    async fn call(
        &self,
        update: &StatusUpdate,
        request: &StatusRequest,
    ) -> Result<ReadAnswer, Failure> {
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
        execute(&self.crab, http_request, &secrets, self.clock.as_ref()).await
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
        Box::pin(async move { Ok(self.call(update, request).await?.response) })
    }

    fn prepare_read(
        &self,
        update: &StatusUpdate,
        page: u32,
    ) -> Result<Option<StatusRequest>, Failure> {
        read_request(update, page).map(Some)
    }

    fn read<'a>(
        &'a self,
        update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>> {
        Box::pin(self.call(update, request))
    }

    fn read_back(
        &self,
        update: &StatusUpdate,
        page: u32,
        answer: &ReadAnswer,
    ) -> Result<ReadBack, UnreadableAnswer> {
        read_back(update, page, answer)
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
) -> Result<ReadAnswer, Failure> {
    let (response, body) = reduce(crab.execute(request).await, secrets, || clock.wall()).await?;
    Ok(ReadAnswer { response, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::read_back::tests::answer;
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
    fn read_back_asks_for_one_page_of_the_combined_status() {
        let u = update("github.com", "acme/app", CommitState::Success);
        let request = read_request(&u, 2).unwrap();
        assert_eq!(request.method, http::Method::GET);
        assert_eq!(
            request.path,
            "/repos/acme/app/commits/0123456789abcdef0123456789abcdef01234567/status?per_page=100&page=2"
        );
        assert!(request.body.is_null());
    }

    #[test]
    fn read_back_finds_the_context_whatever_its_case() {
        let u = update("github.com", "acme/app", CommitState::Success);
        let body = json!({
            "state": "success",
            "total_count": 2,
            "statuses": [
                {"state": "failure", "description": null, "context": "ci/other"},
                {"state": "success", "description": "applied revision",
                 "context": "FLUX/prod/Kustomization/flux-system/apps"},
            ],
        });
        assert_eq!(
            read_back(&u, 1, &answer(200, &body)).unwrap(),
            ReadBack::Shows(ShownStatus {
                state: "success".into(),
                description: Some("applied revision".into()),
            })
        );
    }

    #[test]
    fn read_back_pages_on_while_the_total_says_there_are_more() {
        let u = update("github.com", "acme/app", CommitState::Success);
        let other = json!({"state": "success", "description": null, "context": "ci/x"});
        let page =
            |total: usize| json!({"total_count": total, "statuses": vec![other.clone(); 100]});
        assert_eq!(
            read_back(&u, 1, &answer(200, &page(150))).unwrap(),
            ReadBack::NextPage
        );
        assert_eq!(
            read_back(&u, 2, &answer(200, &page(150))).unwrap(),
            ReadBack::Nothing
        );
        let none = json!({"total_count": 0, "statuses": []});
        assert_eq!(
            read_back(&u, 1, &answer(200, &none)).unwrap(),
            ReadBack::Nothing
        );
        assert!(read_back(&u, 1, &answer(404, &json!({"message": "Not Found"}))).is_err());
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
