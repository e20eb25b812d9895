//! The dry-run publisher: logs what would be sent and sends nothing (`--dry-run`).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::json;

use super::http::{Failure, ForgeResponse};
use super::read_back::{ReadAnswer, ReadBack, UnreadableAnswer};
use super::{Prepared, Publisher, StatusRequest};
use crate::model::StatusUpdate;

/// Logs each request instead of sending it. With a forge's publisher it logs that forge's
/// exact request; without one, the neutral update.
#[derive(Debug)]
pub struct DryRun {
    forge: Option<Arc<dyn Publisher>>,
    api_url: String,
}

impl DryRun {
    /// Logs `forge`'s requests to `api_url`.
    pub fn new(forge: Arc<dyn Publisher>, api_url: impl Into<String>) -> DryRun {
        DryRun {
            forge: Some(forge),
            api_url: api_url.into(),
        }
    }

    /// Logs neutral updates, for when no configuration names the forges.
    pub fn neutral() -> DryRun {
        DryRun {
            forge: None,
            api_url: String::new(),
        }
    }
}

impl Publisher for DryRun {
    fn prepare(&self, update: &StatusUpdate) -> Result<Prepared, Failure> {
        match &self.forge {
            Some(forge) => forge.prepare(update),
            None => Ok(Prepared::Send(StatusRequest {
                method: http::Method::POST,
                path: String::new(),
                headers: Vec::new(),
                body: json!({
                    "state": update.state.as_str(),
                    "context": update.key.context,
                    "description": update.description,
                    "target_url": update.target_url,
                }),
            })),
        }
    }

    /// A dry run reads nothing back: every update is logged as it would be posted.
    fn prepare_read(
        &self,
        _update: &StatusUpdate,
        _page: u32,
    ) -> Result<Option<StatusRequest>, Failure> {
        Ok(None)
    }

    fn read<'a>(
        &'a self,
        _update: &'a StatusUpdate,
        _request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>> {
        Box::pin(async { Err(Failure::Invalid("a dry run reads nothing back".into())) })
    }

    fn read_back(
        &self,
        _update: &StatusUpdate,
        _page: u32,
        _answer: &ReadAnswer,
    ) -> Result<ReadBack, UnreadableAnswer> {
        Ok(ReadBack::Nothing)
    }

    fn send<'a>(
        &'a self,
        update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ForgeResponse, Failure>> {
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
            Ok(ForgeResponse {
                status: 200,
                rate: Default::default(),
                message: String::new(),
            })
        })
    }
}
