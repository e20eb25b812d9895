//! Bitbucket Cloud.
//!
//! States: INPROGRESS, SUCCESSFUL, FAILED, STOPPED. The build `key` is at most 40 characters:
//! the context when it fits, else its SHA-1 hex (as Flux keys them), with the full context as
//! the readable `name`. A `url` is required in practice; without a configured target URL the
//! commit's page is linked.

use serde::Deserialize;
use serde_json::json;

use super::answer::{Failure, ReadAnswer};
use super::dialect::{Dialect, Pages, repository_pair};
use super::read_back::{self, ReadBack, ShownStatus, UnreadableAnswer};
use super::request::{Prepared, StatusRequest};
use super::text::{bitbucket_key, encode_segment, truncate_chars};
use crate::model::CommitState;
use crate::model::ForgeKind;
use crate::model::StatusUpdate;

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
    let [workspace, slug] = repository_pair(ForgeKind::BitbucketCloud, &update.key.repository)?;
    let (workspace, slug) = (encode_segment(workspace), encode_segment(slug));
    let url = update.target_url.clone().unwrap_or_else(|| {
        format!(
            "https://{}/{workspace}/{slug}/commits/{}",
            update.key.host, update.key.sha
        )
    });
    Ok(Prepared::Send(StatusRequest::post(
        format!(
            "/2.0/repositories/{workspace}/{slug}/commit/{}/statuses/build",
            update.key.sha
        ),
        build_status(update, state(update.state), url),
    )))
}

/// A build status as Bitbucket Cloud and Server both take it: the key, the state, the context
/// as the readable name, the description and the link.
pub(crate) fn build_status(update: &StatusUpdate, state: &str, url: String) -> serde_json::Value {
    json!({
        "key": bitbucket_key(&update.key.context, KEY_LIMIT),
        "state": state,
        "name": truncate_chars(&update.key.context, TEXT_LIMIT),
        "description": truncate_chars(update.description.trim(), TEXT_LIMIT),
        "url": url,
    })
}

/// The request reading the build status keyed as `update`'s context (pure). The key goes as
/// one encoded path segment (a context of up to 40 characters may contain `/`).
pub fn read_request(update: &StatusUpdate) -> Result<StatusRequest, Failure> {
    let [workspace, slug] = repository_pair(ForgeKind::BitbucketCloud, &update.key.repository)?;
    Ok(read_back::get(format!(
        "/2.0/repositories/{}/{}/commit/{}/statuses/build/{}",
        encode_segment(workspace),
        encode_segment(slug),
        update.key.sha,
        encode_segment(&bitbucket_key(&update.key.context, KEY_LIMIT)),
    )))
}

/// One Bitbucket build status, as Cloud and Server both return it.
#[derive(Deserialize)]
struct BuildStatus {
    state: String,
    description: Option<String>,
}

/// What a read of one build status says: 404 is no status under that key (pure; Bitbucket
/// Server answers the same way).
pub fn read_back(answer: &ReadAnswer) -> Result<ReadBack, UnreadableAnswer> {
    if answer.response.status == 404 || answer.response.status == 204 {
        return Ok(ReadBack::Nothing);
    }
    let status: BuildStatus = read_back::parse_success(answer)?;
    Ok(ReadBack::Shows(ShownStatus {
        state: status.state,
        description: status.description,
    }))
}

/// The Bitbucket Cloud dialect: one status per key.
pub const DIALECT: Dialect = Dialect::new(
    |update, _| prepare(update),
    |update, _| read_request(update),
    |_, _, answer| read_back(answer),
)
.pages(Pages::One);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::read_back::tests::answer;
    use crate::forge::tests::update;

    #[test]
    fn read_back_gets_the_status_under_its_encoded_key() {
        let u = update("bitbucket.org", "acme/app", CommitState::Success);
        let request = read_request(&u).unwrap();
        assert_eq!(request.method, http::Method::GET);
        assert_eq!(
            request.path,
            "/2.0/repositories/acme/app/commit/0123456789abcdef0123456789abcdef01234567/statuses/build/flux%2Fprod%2FKustomization%2Fflux-system%2Fapps"
        );
        let mut long = u.clone();
        long.key.context = "flux/production/Kustomization/flux-system/apps".into();
        assert!(read_request(&long).unwrap().path.ends_with(&format!(
            "/statuses/build/{}",
            super::super::text::sha1_hex(&long.key.context)
        )));
    }

    #[test]
    fn read_back_reads_the_status_and_a_404_as_none() {
        let body = serde_json::json!({"key": "k", "state": "SUCCESSFUL", "description": "applied", "url": "u"});
        assert_eq!(
            read_back(&answer(200, &body)).unwrap(),
            ReadBack::Shows(ShownStatus {
                state: "SUCCESSFUL".into(),
                description: Some("applied".into()),
            })
        );
        let missing = serde_json::json!({"type": "error", "error": {"message": "No such status"}});
        assert_eq!(
            read_back(&answer(404, &missing)).unwrap(),
            ReadBack::Nothing
        );
        assert!(read_back(&answer(403, &missing)).is_err());
    }
}
