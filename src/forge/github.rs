//! GitHub and GitHub Enterprise Server: the dialect (sent through octocrab, see
//! [`super::github_transport`]).
//!
//! States: pending, success, failure; canceled becomes `error` with a description that says
//! the commit was superseded (GitHub has no canceled state). Descriptions are cut to 140
//! characters and contexts fitted to 255.

use serde::Deserialize;

use super::answer::{Failure, ReadAnswer};
use super::dialect::{Dialect, context_status_body, repository_pair};
use super::read_back::{self, ReadBack, ShownStatus, UnreadableAnswer};
use super::request::{Prepared, StatusRequest};
use super::text::{encode_segment, fit_context};
use crate::model::CommitState;
use crate::model::ForgeKind;
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
    let [owner, repo] = repository_pair(ForgeKind::GitHub, &update.key.repository)?;
    let path = format!(
        "/repos/{}/{}/statuses/{}",
        encode_segment(owner),
        encode_segment(repo),
        update.key.sha
    );
    let body = context_status_body(
        update,
        state(update.state),
        (CONTEXT_LIMIT, DESCRIPTION_LIMIT),
    );
    Ok(Prepared::Send(StatusRequest::post(path, body)))
}

/// Statuses per page of a read-back (GitHub's most).
pub const READ_PAGE_SIZE: usize = 100;

/// The request reading page `page` of the commit's combined status: the latest status of each
/// context (pure).
pub fn read_request(update: &StatusUpdate, page: u32) -> Result<StatusRequest, Failure> {
    let [owner, repo] = repository_pair(ForgeKind::GitHub, &update.key.repository)?;
    Ok(read_back::get(format!(
        "/repos/{}/{}/commits/{}/status?per_page={READ_PAGE_SIZE}&page={page}",
        encode_segment(owner),
        encode_segment(repo),
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

/// The GitHub dialect.
pub const DIALECT: Dialect = Dialect::new(|update, _| prepare(update), read_request, read_back);

#[cfg(test)]
mod tests {
    use serde_json::json;

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
