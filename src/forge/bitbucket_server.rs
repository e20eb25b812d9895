//! Bitbucket Server and Data Center (`/rest/api/latest/.../builds`).
//!
//! States: INPROGRESS, SUCCESSFUL, FAILED, CANCELLED. Keys follow the Bitbucket Cloud rule
//! (the context up to 40 characters, else its SHA-1 hex) so statuses keep their identity if a
//! team moves between the two. Every request carries `X-Atlassian-Token: no-check`. A `url` is
//! required; without a configured target URL (or one over the server's 450 characters) the
//! commit's page on the server is linked.

use super::answer::Failure;
use super::bitbucket_cloud;
use super::dialect::{Dialect, Pages, repository_pair};
use super::read_back;
use super::request::{Prepared, StatusRequest};
use super::text::{bitbucket_key, encode_query_value, encode_segment};
use crate::model::CommitState;
use crate::model::ForgeKind;
use crate::model::StatusUpdate;

/// Longest name and description the server accepts (Bitbucket Cloud's limit too).
pub const TEXT_LIMIT: usize = bitbucket_cloud::TEXT_LIMIT;
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
    let [project, slug] = repository_pair(ForgeKind::BitbucketServer, &update.key.repository)?;
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
        body: bitbucket_cloud::build_status(update, state(update.state), url),
    }))
}

/// The request reading the build status keyed as `update`'s context (pure).
pub fn read_request(update: &StatusUpdate) -> Result<StatusRequest, Failure> {
    let [project, slug] = repository_pair(ForgeKind::BitbucketServer, &update.key.repository)?;
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

/// The Bitbucket Server dialect: one status per key, read as Bitbucket Cloud's.
pub const DIALECT: Dialect = Dialect::new(
    prepare,
    |update, _| read_request(update),
    |_, _, answer| bitbucket_cloud::read_back(answer),
)
.pages(Pages::One);

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
