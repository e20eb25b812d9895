//! GitLab (gitlab.com and self-managed).
//!
//! The project is named by its numeric id or its URL-encoded full path (nested groups
//! included). States: `Progressing` → running, other pending → pending, success, failure →
//! failed, canceled. GitLab answers 400 to re-posting an unchanged in-progress state, so an
//! update from pending to pending is not sent (nothing would change), and such a 400 (after a
//! lost ledger) counts as delivered. Name, description and target URL are limited to 255
//! characters.

use serde::Deserialize;
use serde_json::json;

use super::answer::{Failure, ForgeResponse, ReadAnswer};
use super::dialect::{Dialect, repository_segments};
use super::read_back::{self, ReadBack, ShownStatus, UnreadableAnswer};
use super::request::{Prepared, StatusRequest};
use super::text::{encode_query_value, encode_segment, fit_context, truncate_chars};
use crate::model::ForgeKind;
use crate::model::StatusUpdate;
use crate::model::{CommitState, reasons};

/// Longest name, description, ref and target URL GitLab accepts.
pub const TEXT_LIMIT: usize = 255;

/// GitLab's state for an update.
pub fn state(update: &StatusUpdate) -> &'static str {
    match update.state {
        CommitState::Pending if update.reason == reasons::PROGRESSING => "running",
        CommitState::Pending => "pending",
        CommitState::Success => "success",
        CommitState::Failure => "failed",
        CommitState::Canceled => "canceled",
    }
}

/// The request creating `update`'s status (pure); nothing when GitLab would refuse an
/// unchanged pending.
pub fn prepare(update: &StatusUpdate) -> Result<Prepared, Failure> {
    let target = state(update);
    if update.previous == Some(CommitState::Pending) && target == "pending" {
        return Ok(Prepared::Unnecessary(
            "GitLab already shows an in-progress status and refuses to re-post pending",
        ));
    }
    let project = project(update)?;
    let mut body = json!({
        "state": target,
        "name": fit_context(&update.key.context, TEXT_LIMIT),
        "description": truncate_chars(update.description.trim(), TEXT_LIMIT),
    });
    // A cut URL would be a broken link; a link too long for GitLab is left out instead.
    if let Some(url) = update
        .target_url
        .as_ref()
        .filter(|u| u.chars().count() <= TEXT_LIMIT)
    {
        body["target_url"] = json!(url);
    }
    Ok(Prepared::Send(StatusRequest::post(
        format!("/api/v4/projects/{project}/statuses/{}", update.key.sha),
        body,
    )))
}

/// The project as a path segment: its numeric id, or its URL-encoded full path.
fn project(update: &StatusUpdate) -> Result<String, Failure> {
    let repository = &update.key.repository;
    if !repository.is_empty() && repository.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(repository.clone());
    }
    let parts = repository_segments(ForgeKind::GitLab, repository)?;
    Ok(encode_segment(&parts.join("/")))
}

/// Statuses per page of a read-back (GitLab's most).
pub const READ_PAGE_SIZE: usize = 100;

/// The request reading page `page` of the commit's latest statuses named as `update`'s
/// context (pure).
pub fn read_request(update: &StatusUpdate, page: u32) -> Result<StatusRequest, Failure> {
    let project = project(update)?;
    Ok(read_back::get(format!(
        "/api/v4/projects/{project}/repository/commits/{}/statuses?name={}&per_page={READ_PAGE_SIZE}&page={page}",
        update.key.sha,
        encode_query_value(&fit_context(&update.key.context, TEXT_LIMIT)),
    )))
}

#[derive(Deserialize)]
struct Listed {
    id: u64,
    name: String,
    status: String,
    description: Option<String>,
}

/// What page `page` of the named statuses shows for `update`'s context: the newest (highest
/// id) status of that name (pure).
pub fn read_back(
    update: &StatusUpdate,
    _page: u32,
    answer: &ReadAnswer,
) -> Result<ReadBack, UnreadableAnswer> {
    let listed: Vec<Listed> = read_back::parse_success(answer)?;
    let name = fit_context(&update.key.context, TEXT_LIMIT);
    let newest = listed
        .iter()
        .filter(|s| s.name == name)
        .max_by_key(|s| s.id);
    Ok(match newest {
        Some(found) => ReadBack::Shows(ShownStatus {
            state: found.status.clone(),
            description: found.description.clone(),
        }),
        None => read_back::not_on_page(listed.len(), READ_PAGE_SIZE),
    })
}

/// Whether a refusal says the status is already in progress and `update` is in progress too.
pub fn is_already_in_progress(update: &StatusUpdate, response: &ForgeResponse) -> bool {
    response.status == 400
        && matches!(state(update), "pending" | "running")
        && response.message.contains("Cannot transition status via")
        && (response.message.contains("from :pending")
            || response.message.contains("from :running"))
}

/// The GitLab dialect.
pub const DIALECT: Dialect = Dialect::new(|update, _| prepare(update), read_request, read_back)
    .already_current(is_already_in_progress);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::read_back::tests::answer;
    use crate::forge::tests::update;

    #[test]
    fn progressing_is_running_and_other_pending_is_pending() {
        let mut u = update("gitlab.com", "g/p", CommitState::Pending);
        u.reason = "Progressing".into();
        assert_eq!(state(&u), "running");
        u.reason = "Queued".into();
        assert_eq!(state(&u), "pending");
    }

    #[test]
    fn an_unchanged_pending_is_not_sent_but_pending_to_running_is() {
        let mut u = update("gitlab.com", "g/p", CommitState::Pending);
        u.reason = "DependencyNotReady".into();
        u.previous = Some(CommitState::Pending);
        assert!(matches!(prepare(&u).unwrap(), Prepared::Unnecessary(_)));
        u.reason = "Progressing".into();
        assert!(matches!(prepare(&u).unwrap(), Prepared::Send(_)));
    }

    #[test]
    fn numeric_ids_and_nested_paths_name_the_project() {
        let u = update("gitlab.com", "1234", CommitState::Success);
        let Prepared::Send(r) = prepare(&u).unwrap() else {
            panic!()
        };
        assert_eq!(
            r.path,
            "/api/v4/projects/1234/statuses/0123456789abcdef0123456789abcdef01234567"
        );
        let u = update("gitlab.com", "group/sub/project", CommitState::Success);
        let Prepared::Send(r) = prepare(&u).unwrap() else {
            panic!()
        };
        assert!(
            r.path
                .starts_with("/api/v4/projects/group%2Fsub%2Fproject/statuses/")
        );
    }

    #[test]
    fn read_back_asks_for_the_statuses_of_that_name() {
        let u = update("gitlab.com", "group/sub/project", CommitState::Success);
        let request = read_request(&u, 1).unwrap();
        assert_eq!(request.method, http::Method::GET);
        assert_eq!(
            request.path,
            "/api/v4/projects/group%2Fsub%2Fproject/repository/commits/0123456789abcdef0123456789abcdef01234567/statuses?name=flux%2Fprod%2FKustomization%2Fflux-system%2Fapps&per_page=100&page=1"
        );
    }

    #[test]
    fn read_back_takes_the_newest_status_of_the_name() {
        let u = update("gitlab.com", "g/p", CommitState::Success);
        let name = "flux/prod/Kustomization/flux-system/apps";
        let body = json!([
            {"id": 7, "name": name, "status": "running", "description": "progressing"},
            {"id": 9, "name": name, "status": "success", "description": "applied"},
            {"id": 12, "name": "other", "status": "failed", "description": null},
        ]);
        assert_eq!(
            read_back(&u, 1, &answer(200, &body)).unwrap(),
            ReadBack::Shows(ShownStatus {
                state: "success".into(),
                description: Some("applied".into()),
            })
        );
        assert_eq!(
            read_back(&u, 1, &answer(200, &json!([]))).unwrap(),
            ReadBack::Nothing
        );
        assert!(read_back(&u, 1, &answer(200, &json!({"message": "x"}))).is_err());
    }

    #[test]
    fn only_in_progress_transition_refusals_count_as_current() {
        let mut u = update("gitlab.com", "g/p", CommitState::Pending);
        u.reason = "Progressing".into();
        let refusal = |message: &str| ForgeResponse {
            status: 400,
            rate: Default::default(),
            message: message.into(),
        };
        assert!(is_already_in_progress(
            &u,
            &refusal("Cannot transition status via :run from :running")
        ));
        assert!(!is_already_in_progress(&u, &refusal("name is too long")));
        let done = update("gitlab.com", "g/p", CommitState::Success);
        assert!(!is_already_in_progress(
            &done,
            &refusal("Cannot transition status via :run from :running")
        ));
    }
}
