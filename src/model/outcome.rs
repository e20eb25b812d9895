//! What became of each update, as data for the ledger, metrics and `/status`.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::model::CommitState;
use crate::model::StatusKey;

/// What became of one update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeliveryResult {
    /// The forge shows the update (posted, or nothing needed posting).
    Delivered,
    /// Not delivered this time; planning offers it again next tick.
    RetryLater { error: String },
    /// The forge refused it for good (e.g. GitHub's 1000 statuses per context).
    PermanentError { error: String },
    /// No configured forge serves the repository's host; nothing was sent.
    SkippedUnmatched,
    /// The host's forge does not allow the repository; nothing was sent.
    SkippedNotAllowed,
}

impl DeliveryResult {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::RetryLater { .. } => "retry_later",
            DeliveryResult::PermanentError { .. } => "permanent_error",
            DeliveryResult::SkippedUnmatched => "skipped_unmatched",
            DeliveryResult::SkippedNotAllowed => "skipped_not_allowed",
        }
    }

    /// The error, for the two failed results.
    pub fn error(&self) -> Option<&str> {
        match self {
            DeliveryResult::RetryLater { error } | DeliveryResult::PermanentError { error } => {
                Some(error)
            }
            _ => None,
        }
    }
}

/// The outcome of one update. Error texts never contain a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryOutcome {
    /// The status the update was for.
    pub key: StatusKey,
    /// The configured forge it went to (or was refused by), if any.
    pub forge: Option<String>,
    /// The neutral state the update carried.
    pub state: CommitState,
    /// The update's reason, so the ledger can record it.
    pub reason: String,
    /// What became of it.
    #[serde(flatten)]
    pub result: DeliveryResult,
    /// The forge's last HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// From the first request to the result, retries and their waits included; zero when
    /// nothing was sent.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// Requests sent for this update.
    pub attempts: u32,
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::revision::CommitSha;

    #[test]
    fn outcomes_serialize_with_their_label_and_error() {
        let outcome = DeliveryOutcome {
            key: StatusKey {
                host: "github.com".into(),
                repository: "acme/app".into(),
                sha: CommitSha::from_hex(&"a".repeat(40)).unwrap(),
                context: "flux/c".into(),
            },
            forge: Some("github".into()),
            state: CommitState::Pending,
            reason: "Progressing".into(),
            result: DeliveryResult::RetryLater {
                error: "github answered 502: bad gateway".into(),
            },
            http_status: Some(502),
            duration: Duration::from_millis(1500),
            attempts: 4,
        };
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["result"], "retry_later");
        assert_eq!(json["error"], "github answered 502: bad gateway");
        assert_eq!(json["duration"], 1.5);
        assert_eq!(outcome.result.as_str(), "retry_later");
        assert_eq!(
            DeliveryResult::SkippedNotAllowed.as_str(),
            "skipped_not_allowed"
        );
    }
}
