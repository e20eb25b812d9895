//! Sending a prepared request with a forge's credential: one transport per auth family (a
//! token over the shared HTTP client, GitHub through octocrab), and the [`Publisher`] that
//! pairs a forge's dialect with its transport.

use std::fmt;

use futures_util::future::BoxFuture;

use super::answer::{Failure, ReadAnswer};
use super::dialect::ForgeDialect;
use super::request::StatusRequest;
use crate::model::StatusUpdate;

/// Sends requests with one forge's credential.
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request` (made for `update`) once and returns the answer with its body. No
    /// retries: the caller decides what an answer means.
    fn send<'a>(
        &'a self,
        update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>>;

    /// The forge refused the credential (401): forget cached values so that the next attempt
    /// reads a rotated one.
    fn credential_refused(&self) {}
}

/// One forge: its dialect and its transport.
#[derive(Debug)]
pub struct Publisher {
    dialect: ForgeDialect,
    transport: Box<dyn Transport>,
}

impl Publisher {
    /// Pairs `dialect` with `transport`.
    pub fn new(dialect: ForgeDialect, transport: Box<dyn Transport>) -> Publisher {
        Publisher { dialect, transport }
    }

    /// The forge's dialect.
    pub fn dialect(&self) -> &ForgeDialect {
        &self.dialect
    }

    /// The same dialect with another transport (a dry run's).
    pub fn with_transport(self, transport: Box<dyn Transport>) -> Publisher {
        Publisher {
            dialect: self.dialect,
            transport,
        }
    }

    /// Sends `request` once; the answer as the dialect reads it.
    pub async fn send(
        &self,
        update: &StatusUpdate,
        request: &StatusRequest,
    ) -> Result<ReadAnswer, Failure> {
        let answer = self.transport.send(update, request).await?;
        Ok(ReadAnswer {
            response: self.dialect.interpret(answer.response),
            body: answer.body,
        })
    }

    /// Forgets the cached credential after a refusal.
    pub fn credential_refused(&self) {
        self.transport.credential_refused();
    }
}
