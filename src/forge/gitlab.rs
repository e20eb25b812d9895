//! GitLab (gitlab.com and self-managed).
//!
//! The project is named by its numeric id or its URL-encoded full path (nested groups
//! included). States: `Progressing` → running, other pending → pending, success, failure →
//! failed, canceled. GitLab answers 400 to re-posting an unchanged in-progress state, so an
//! update from pending to pending is not sent (nothing would change), and such a 400 (after a
//! lost ledger) counts as delivered. Name, description and target URL are limited to 255
//! characters.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::http::{Failure, ForgeResponse};
use super::text::{encode_segment, fit_context, truncate_chars};
use super::token_auth::TokenTransport;
use super::{Prepared, Publisher, StatusRequest, repository_segments_min};
use crate::assess::{CommitState, reasons};
use crate::plan::StatusUpdate;

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
    let repository = &update.key.repository;
    let project = if !repository.is_empty() && repository.bytes().all(|b| b.is_ascii_digit()) {
        repository.clone()
    } else {
        let parts = repository_segments_min(repository, 2, "group[/subgroup...]/project")?;
        encode_segment(&parts.join("/"))
    };
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
    Ok(Prepared::Send(StatusRequest {
        method: http::Method::POST,
        path: format!("/api/v4/projects/{project}/statuses/{}", update.key.sha),
        headers: Vec::new(),
        body,
    }))
}

/// Whether a refusal says the status is already in progress and `update` is in progress too.
pub fn is_already_in_progress(update: &StatusUpdate, response: &ForgeResponse) -> bool {
    response.status == 400
        && matches!(state(update), "pending" | "running")
        && response.message.contains("Cannot transition status via")
        && (response.message.contains("from :pending")
            || response.message.contains("from :running"))
}

/// The GitLab publisher.
#[derive(Debug)]
pub struct GitLab {
    transport: TokenTransport,
}

impl GitLab {
    pub(crate) fn new(transport: TokenTransport) -> GitLab {
        GitLab { transport }
    }
}

impl Publisher for GitLab {
    fn prepare(&self, update: &StatusUpdate) -> Result<Prepared, Failure> {
        prepare(update)
    }

    fn send<'a>(
        &'a self,
        _update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ForgeResponse, Failure>> {
        Box::pin(self.transport.send(request))
    }

    fn already_current(&self, update: &StatusUpdate, response: &ForgeResponse) -> bool {
        is_already_in_progress(update, response)
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
