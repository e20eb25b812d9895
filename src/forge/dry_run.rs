//! Dry runs (`--dry-run`): a transport that logs what would be sent and sends nothing, and a
//! neutral dialect for when no configuration names the forges.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::answer::{Failure, ForgeResponse, ReadAnswer};
use super::dialect::{Dialect, Pages};
use super::read_back::ReadBack;
use super::request::{Prepared, StatusRequest};
use super::transport::Transport;
use crate::model::StatusUpdate;

/// The neutral update as JSON; a dry run reads nothing back.
pub const NEUTRAL: Dialect = Dialect::new(
    |update, _| Ok(Prepared::Send(neutral_request(update))),
    |_, _| Err(Failure::Invalid("a dry run reads nothing back".into())),
    |_, _, _| Ok(ReadBack::Nothing),
)
.pages(Pages::None);

fn neutral_request(update: &StatusUpdate) -> StatusRequest {
    StatusRequest::post(
        String::new(),
        json!({
            "state": update.state.as_str(),
            "context": update.key.context,
            "description": update.description,
            "target_url": update.target_url,
        }),
    )
}

/// Logs each request instead of sending it, and answers that it was accepted.
#[derive(Debug)]
pub struct DryRun {
    api_url: String,
}

impl DryRun {
    /// Logs requests as sent to `api_url` (empty for neutral updates).
    pub fn new(api_url: impl Into<String>) -> DryRun {
        DryRun {
            api_url: api_url.into(),
        }
    }
}

impl Transport for DryRun {
    fn send<'a>(
        &'a self,
        update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>> {
        tracing::info!(
            host = %update.key.host,
            repository = %update.key.repository,
            sha = %update.key.sha,
            method = %request.method,
            url = %format!("{}{}", self.api_url, request.path),
            body = %request.body,
            "dry run: would post this status",
        );
        Box::pin(async {
            Ok(ReadAnswer::without_body(ForgeResponse {
                status: 200,
                rate: Default::default(),
                message: String::new(),
            }))
        })
    }
}
