//! Gitea and Forgejo.
//!
//! States: pending, success, failure; canceled becomes `error` saying the commit was
//! superseded. Token credentials go as `Authorization: token <token>`.

use serde::Deserialize;

use super::answer::{Failure, ReadAnswer};
use super::dialect::{Dialect, context_status_body, repository_pair};
use super::read_back::{self, ReadBack, ShownStatus, UnreadableAnswer};
use super::request::{Prepared, StatusRequest};
use super::text::{encode_segment, fit_context};
use crate::model::CommitState;
use crate::model::ForgeKind;
use crate::model::StatusUpdate;

/// Longest context and description sent (255 is what Gitea's forms and most databases allow).
pub const TEXT_LIMIT: usize = 255;

/// Gitea's state for a neutral state: GitHub's vocabulary.
pub fn state(state: CommitState) -> &'static str {
    super::github::state(state)
}

/// The request creating `update`'s status (pure).
pub fn prepare(update: &StatusUpdate) -> Result<Prepared, Failure> {
    let [owner, repo] = repository_pair(ForgeKind::Gitea, &update.key.repository)?;
    let body = context_status_body(update, state(update.state), (TEXT_LIMIT, TEXT_LIMIT));
    Ok(Prepared::Send(StatusRequest::post(
        format!(
            "/api/v1/repos/{}/{}/statuses/{}",
            encode_segment(owner),
            encode_segment(repo),
            update.key.sha
        ),
        body,
    )))
}

/// Statuses per page of a read-back (Gitea's default maximum).
pub const READ_PAGE_SIZE: usize = 50;

/// The request reading page `page` of the commit's combined status: the latest status of each
/// context (pure).
pub fn read_request(update: &StatusUpdate, page: u32) -> Result<StatusRequest, Failure> {
    let [owner, repo] = repository_pair(ForgeKind::Gitea, &update.key.repository)?;
    Ok(read_back::get(format!(
        "/api/v1/repos/{}/{}/commits/{}/status?page={page}&limit={READ_PAGE_SIZE}",
        encode_segment(owner),
        encode_segment(repo),
        update.key.sha
    )))
}

#[derive(Deserialize)]
struct Combined {
    #[serde(default)]
    statuses: Option<Vec<Listed>>,
}

#[derive(Deserialize)]
struct Listed {
    /// Gitea names a status's state `status`.
    #[serde(alias = "state")]
    status: String,
    description: Option<String>,
    context: String,
}

/// What page `page` of the combined status shows for `update`'s context (pure).
pub fn read_back(
    update: &StatusUpdate,
    _page: u32,
    answer: &ReadAnswer,
) -> Result<ReadBack, UnreadableAnswer> {
    let combined: Combined = read_back::parse_success(answer)?;
    let statuses = combined.statuses.unwrap_or_default();
    let context = fit_context(&update.key.context, TEXT_LIMIT);
    Ok(match statuses.iter().find(|s| s.context == context) {
        Some(found) => ReadBack::Shows(ShownStatus {
            state: found.status.clone(),
            description: found.description.clone(),
        }),
        None => read_back::not_on_page(statuses.len(), READ_PAGE_SIZE),
    })
}

/// The Gitea (and Forgejo) dialect.
pub const DIALECT: Dialect = Dialect::new(|update, _| prepare(update), read_request, read_back);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::forge::read_back::tests::answer;
    use crate::forge::tests::update;

    #[test]
    fn read_back_asks_for_one_page_of_the_combined_status() {
        let u = update("gitea.example.com", "ops/tools", CommitState::Success);
        let request = read_request(&u, 1).unwrap();
        assert_eq!(request.method, http::Method::GET);
        assert_eq!(
            request.path,
            "/api/v1/repos/ops/tools/commits/0123456789abcdef0123456789abcdef01234567/status?page=1&limit=50"
        );
    }

    #[test]
    fn read_back_reads_giteas_status_field_for_the_exact_context() {
        let u = update("gitea.example.com", "ops/tools", CommitState::Success);
        let status = |context: &str, state: &str| json!({"id": 1, "status": state, "description": "d", "context": context, "target_url": ""});
        let body = json!({"state": "failure", "total_count": 2, "statuses": [
            status("FLUX/prod/Kustomization/flux-system/apps", "failure"),
            status("flux/prod/Kustomization/flux-system/apps", "success"),
        ]});
        assert_eq!(
            read_back(&u, 1, &answer(200, &body)).unwrap(),
            ReadBack::Shows(ShownStatus {
                state: "success".into(),
                description: Some("d".into()),
            })
        );
        let full = json!({"statuses": vec![status("other", "success"); 50]});
        assert_eq!(
            read_back(&u, 1, &answer(200, &full)).unwrap(),
            ReadBack::NextPage
        );
        let none = json!({"state": "", "statuses": null});
        assert_eq!(
            read_back(&u, 1, &answer(200, &none)).unwrap(),
            ReadBack::Nothing
        );
    }
}
