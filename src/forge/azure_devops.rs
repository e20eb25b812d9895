//! Azure DevOps Services and Server.
//!
//! Repositories are `org/project/repo` (or `collection-path.../project/repo` on a server).
//! States: pending, succeeded, failed; canceled becomes `error` saying the commit was
//! superseded. The context splits at its last `/` into `genre` and `name` (genre `flux` when
//! it has none). API version 7.1; the PAT goes as HTTP Basic with an empty user.

use serde::Deserialize;
use serde_json::json;

use super::answer::{Failure, ForgeResponse, ReadAnswer};
use super::dialect::{Dialect, repository_segments, state_description};
use super::read_back::{self, ReadBack, ShownStatus, UnreadableAnswer};
use super::request::{Prepared, StatusRequest};
use super::text::{encode_segment, fit_context, truncate_chars};
use crate::model::CommitState;
use crate::model::ForgeKind;
use crate::model::StatusUpdate;

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

/// The statuses collection of `update`'s commit, without a query.
fn statuses_path(update: &StatusUpdate) -> Result<String, Failure> {
    let parts = repository_segments(ForgeKind::AzureDevOps, &update.key.repository)?;
    let (repo, scope) = parts
        .split_last()
        .ok_or_else(|| Failure::Invalid("empty repository".into()))?;
    let scope: Vec<String> = scope.iter().map(|s| encode_segment(s)).collect();
    Ok(format!(
        "/{}/_apis/git/repositories/{}/commits/{}/statuses",
        scope.join("/"),
        encode_segment(repo),
        update.key.sha
    ))
}

/// The `(genre, name)` sent for `update`'s context, fitted to the limits.
fn fitted_context(update: &StatusUpdate) -> (String, String) {
    let (genre, name) = genre_and_name(&update.key.context);
    (
        fit_context(&genre, TEXT_LIMIT),
        fit_context(&name, TEXT_LIMIT),
    )
}

/// The request creating `update`'s status (pure).
pub fn prepare(update: &StatusUpdate) -> Result<Prepared, Failure> {
    let path = statuses_path(update)?;
    let (genre, name) = fitted_context(update);
    let mut body = json!({
        "state": state(update.state),
        "description": truncate_chars(&state_description(update), TEXT_LIMIT),
        "context": {"genre": genre, "name": name},
    });
    if let Some(url) = &update.target_url {
        body["targetUrl"] = json!(url);
    }
    Ok(Prepared::Send(StatusRequest::post(
        format!("{path}?api-version={API_VERSION}"),
        body,
    )))
}

/// Statuses per page of a read-back.
pub const READ_PAGE_SIZE: usize = 1000;

/// The request reading page `page` of the commit's latest status per context (pure).
pub fn read_request(update: &StatusUpdate, page: u32) -> Result<StatusRequest, Failure> {
    let path = statuses_path(update)?;
    let skip = usize::try_from(page.saturating_sub(1))
        .unwrap_or(usize::MAX)
        .saturating_mul(READ_PAGE_SIZE);
    Ok(read_back::get(format!(
        "{path}?api-version={API_VERSION}&latestOnly=true&top={READ_PAGE_SIZE}&skip={skip}"
    )))
}

#[derive(Deserialize)]
struct Listed {
    value: Vec<ListedStatus>,
}

#[derive(Deserialize)]
struct ListedStatus {
    state: String,
    description: Option<String>,
    context: ListedContext,
}

#[derive(Deserialize)]
struct ListedContext {
    name: String,
    genre: Option<String>,
}

/// What page `page` shows for `update`'s context: the status whose genre and name are the
/// ones posted (pure).
pub fn read_back(
    update: &StatusUpdate,
    _page: u32,
    answer: &ReadAnswer,
) -> Result<ReadBack, UnreadableAnswer> {
    let answer = ReadAnswer {
        response: sign_in_page_is_unauthorized(answer.response.clone()),
        body: answer.body.clone(),
    };
    let listed: Listed = read_back::parse_success(&answer)?;
    let (genre, name) = fitted_context(update);
    let found = listed
        .value
        .iter()
        .find(|s| s.context.name == name && s.context.genre.as_deref().unwrap_or("") == genre);
    Ok(match found {
        Some(found) => ReadBack::Shows(ShownStatus {
            state: found.state.clone(),
            description: found.description.clone(),
        }),
        None => read_back::not_on_page(listed.value.len(), READ_PAGE_SIZE),
    })
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

/// The Azure DevOps dialect.
pub const DIALECT: Dialect = Dialect::new(|update, _| prepare(update), read_request, read_back)
    .interpret(sign_in_page_is_unauthorized);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::read_back::tests::answer;
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
    fn read_back_asks_for_the_latest_status_per_context() {
        let u = update("dev.azure.com", "acme/platform/fleet", CommitState::Success);
        let request = read_request(&u, 1).unwrap();
        assert_eq!(request.method, http::Method::GET);
        assert_eq!(
            request.path,
            "/acme/platform/_apis/git/repositories/fleet/commits/0123456789abcdef0123456789abcdef01234567/statuses?api-version=7.1&latestOnly=true&top=1000&skip=0"
        );
        assert!(read_request(&u, 3).unwrap().path.ends_with("&skip=2000"));
    }

    #[test]
    fn read_back_matches_genre_and_name() {
        let u = update("dev.azure.com", "acme/platform/fleet", CommitState::Success);
        let status = |genre: &str, name: &str, state: &str| serde_json::json!({"state": state, "description": "d", "context": {"genre": genre, "name": name}});
        let body = serde_json::json!({"count": 3, "value": [
            status("flux/prod/Kustomization/other", "apps", "failed"),
            status("flux/prod/Kustomization/flux-system", "infra", "failed"),
            status("flux/prod/Kustomization/flux-system", "apps", "succeeded"),
        ]});
        assert_eq!(
            read_back(&u, 1, &answer(200, &body)).unwrap(),
            ReadBack::Shows(ShownStatus {
                state: "succeeded".into(),
                description: Some("d".into()),
            })
        );
        let empty = serde_json::json!({"count": 0, "value": []});
        assert_eq!(
            read_back(&u, 1, &answer(200, &empty)).unwrap(),
            ReadBack::Nothing
        );
        // The sign-in page is a refused credential, not an empty answer.
        assert_eq!(
            read_back(&u, 1, &answer(203, &empty)).unwrap_err(),
            UnreadableAnswer::Refused {
                status: 401,
                message: "the sign-in page came back (203): the PAT was not accepted".into()
            }
        );
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
