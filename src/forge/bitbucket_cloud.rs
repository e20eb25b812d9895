//! Bitbucket Cloud.
//!
//! States: INPROGRESS, SUCCESSFUL, FAILED, STOPPED. The build `key` is at most 40 characters:
//! the context when it fits, else its SHA-1 hex (as Flux keys them), with the full context as
//! the readable `name`. A `url` is required in practice; without a configured target URL the
//! commit's page is linked.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::http::{Failure, ForgeResponse};
use super::text::{bitbucket_key, encode_segment, truncate_chars};
use super::token_auth::TokenTransport;
use super::{Prepared, Publisher, StatusRequest, repository_segments};
use crate::assess::CommitState;
use crate::plan::StatusUpdate;

/// Longest build key Bitbucket accepts.
pub const KEY_LIMIT: usize = 40;
/// Longest name and description sent (Bitbucket documents none; 255 is what its server
/// edition allows).
pub const TEXT_LIMIT: usize = 255;

/// Bitbucket's state for a neutral state.
pub fn state(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending => "INPROGRESS",
        CommitState::Success => "SUCCESSFUL",
        CommitState::Failure => "FAILED",
        CommitState::Canceled => "STOPPED",
    }
}

/// The request creating `update`'s status (pure).
pub fn prepare(update: &StatusUpdate) -> Result<Prepared, Failure> {
    let [workspace, slug] =
        repository_segments::<2>(&update.key.repository, "workspace/repository")?;
    let (workspace, slug) = (encode_segment(workspace), encode_segment(slug));
    let url = update.target_url.clone().unwrap_or_else(|| {
        format!(
            "https://{}/{workspace}/{slug}/commits/{}",
            update.key.host, update.key.sha
        )
    });
    Ok(Prepared::Send(StatusRequest {
        method: http::Method::POST,
        path: format!(
            "/2.0/repositories/{workspace}/{slug}/commit/{}/statuses/build",
            update.key.sha
        ),
        headers: Vec::new(),
        body: json!({
            "key": bitbucket_key(&update.key.context, KEY_LIMIT),
            "state": state(update.state),
            "name": truncate_chars(&update.key.context, TEXT_LIMIT),
            "description": truncate_chars(update.description.trim(), TEXT_LIMIT),
            "url": url,
        }),
    }))
}

/// The Bitbucket Cloud publisher.
#[derive(Debug)]
pub struct BitbucketCloud {
    transport: TokenTransport,
}

impl BitbucketCloud {
    pub(crate) fn new(transport: TokenTransport) -> BitbucketCloud {
        BitbucketCloud { transport }
    }
}

impl Publisher for BitbucketCloud {
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
