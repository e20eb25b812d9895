//! Bitbucket Server and Data Center (`/rest/api/latest/.../builds`).
//!
//! States: INPROGRESS, SUCCESSFUL, FAILED, CANCELLED. Keys follow the Bitbucket Cloud rule
//! (the context up to 40 characters, else its SHA-1 hex) so statuses keep their identity if a
//! team moves between the two. Every request carries `X-Atlassian-Token: no-check`. A `url` is
//! required; without a configured target URL (or one over the server's 450 characters) the
//! commit's page on the server is linked.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::http::{Failure, ForgeResponse};
use super::read_back::{self, ReadAnswer, ReadBack, UnreadableAnswer};
use super::text::{bitbucket_key, encode_query_value, encode_segment, truncate_chars};
use super::token_auth::TokenTransport;
use super::{Prepared, Publisher, StatusRequest, bitbucket_cloud, repository_segments};
use crate::model::CommitState;
use crate::model::StatusUpdate;

/// Longest name and description the server accepts.
pub const TEXT_LIMIT: usize = 255;
/// Longest URL the server accepts.
pub const URL_LIMIT: usize = 450;

/// The server's state for a neutral state.
pub fn state(state: CommitState) -> &'static str {
    match state {
        CommitState::Canceled => "CANCELLED",
        other => bitbucket_cloud::state(other),
    }
}

/// The request creating `update`'s status (pure); `web_url` is the server's base URL.
pub fn prepare(update: &StatusUpdate, web_url: &str) -> Result<Prepared, Failure> {
    let [project, slug] = repository_segments::<2>(&update.key.repository, "PROJECT/repository")?;
    let (project, slug) = (encode_segment(project), encode_segment(slug));
    let url = update
        .target_url
        .clone()
        .filter(|u| u.chars().count() <= URL_LIMIT)
        .unwrap_or_else(|| {
            format!(
                "{web_url}/projects/{project}/repos/{slug}/commits/{}",
                update.key.sha
            )
        });
    Ok(Prepared::Send(StatusRequest {
        method: http::Method::POST,
        path: format!(
            "/rest/api/latest/projects/{project}/repos/{slug}/commits/{}/builds",
            update.key.sha
        ),
        headers: vec![("x-atlassian-token", "no-check")],
        body: json!({
            "key": bitbucket_key(&update.key.context, bitbucket_cloud::KEY_LIMIT),
            "state": state(update.state),
            "name": truncate_chars(&update.key.context, TEXT_LIMIT),
            "description": truncate_chars(update.description.trim(), TEXT_LIMIT),
            "url": url,
        }),
    }))
}

/// The request reading the build status keyed as `update`'s context (pure).
pub fn read_request(update: &StatusUpdate) -> Result<StatusRequest, Failure> {
    let [project, slug] = repository_segments::<2>(&update.key.repository, "PROJECT/repository")?;
    Ok(read_back::get(format!(
        "/rest/api/latest/projects/{}/repos/{}/commits/{}/builds?key={}",
        encode_segment(project),
        encode_segment(slug),
        update.key.sha,
        encode_query_value(&bitbucket_key(
            &update.key.context,
            bitbucket_cloud::KEY_LIMIT
        )),
    )))
}

/// The Bitbucket Server publisher.
#[derive(Debug)]
pub struct BitbucketServer {
    transport: TokenTransport,
}

impl BitbucketServer {
    pub(crate) fn new(transport: TokenTransport) -> BitbucketServer {
        BitbucketServer { transport }
    }
}

impl Publisher for BitbucketServer {
    fn prepare(&self, update: &StatusUpdate) -> Result<Prepared, Failure> {
        prepare(update, self.transport.api_url())
    }

    fn send<'a>(
        &'a self,
        _update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ForgeResponse, Failure>> {
        Box::pin(self.transport.send(request))
    }

    fn prepare_read(
        &self,
        update: &StatusUpdate,
        page: u32,
    ) -> Result<Option<StatusRequest>, Failure> {
        // One status per key: there is only one page.
        if page > 1 {
            return Ok(None);
        }
        read_request(update).map(Some)
    }

    fn read<'a>(
        &'a self,
        _update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>> {
        Box::pin(self.transport.read(request))
    }

    fn read_back(
        &self,
        _update: &StatusUpdate,
        _page: u32,
        answer: &ReadAnswer,
    ) -> Result<ReadBack, UnreadableAnswer> {
        bitbucket_cloud::read_back(answer)
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
    fn read_back_gets_the_build_by_its_key() {
        let u = update("bitbucket.example.com", "OPS/app", CommitState::Success);
        let request = read_request(&u).unwrap();
        assert_eq!(request.method, http::Method::GET);
        assert_eq!(
            request.path,
            "/rest/api/latest/projects/OPS/repos/app/commits/0123456789abcdef0123456789abcdef01234567/builds?key=flux%2Fprod%2FKustomization%2Fflux-system%2Fapps"
        );
        assert!(request.headers.is_empty());
    }
}
