//! Gitea and Forgejo.
//!
//! States: pending, success, failure; canceled becomes `error` saying the commit was
//! superseded. Token credentials go as `Authorization: token <token>`.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::http::{Failure, ForgeResponse};
use super::text::{encode_segment, fit_context, truncate_chars};
use super::token_auth::TokenTransport;
use super::{Prepared, Publisher, StatusRequest, repository_segments, state_description};
use crate::assess::CommitState;
use crate::plan::StatusUpdate;

/// Longest context and description sent (255 is what Gitea's forms and most databases allow).
pub const TEXT_LIMIT: usize = 255;

/// Gitea's state for a neutral state.
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
    let mut body = json!({
        "state": state(update.state),
        "context": fit_context(&update.key.context, TEXT_LIMIT),
        "description": truncate_chars(&state_description(update), TEXT_LIMIT),
    });
    if let Some(url) = &update.target_url {
        body["target_url"] = json!(url);
    }
    Ok(Prepared::Send(StatusRequest {
        method: http::Method::POST,
        path: format!(
            "/api/v1/repos/{}/{}/statuses/{}",
            encode_segment(owner),
            encode_segment(repo),
            update.key.sha
        ),
        headers: Vec::new(),
        body,
    }))
}

/// The Gitea publisher.
#[derive(Debug)]
pub struct Gitea {
    transport: TokenTransport,
}

impl Gitea {
    pub(crate) fn new(transport: TokenTransport) -> Gitea {
        Gitea { transport }
    }
}

impl Publisher for Gitea {
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

    fn credential_refused(&self) {
        self.transport.invalidate();
    }
}
