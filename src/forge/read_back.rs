//! Read-back (`statuses.readBack`): before the first post of a status the ledger has no record
//! of (first run, lost ledger), the forge is asked what it shows for that exact (repository,
//! commit, context); when it already shows what the post would say, nothing is posted.
//!
//! Each forge's dialect builds its read request and reads its answer (pure functions in the
//! forge's file); [`ShownStatus::matches`] compares the answer with the prepared post, in the
//! forge's own vocabulary, so a forge-level state such as GitLab's `running` is compared as
//! GitLab stores it.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::answer::ReadAnswer;
use super::request::StatusRequest;

/// Most pages read for one status before giving up and posting (GitHub: 1,000 contexts).
pub const MAX_READ_PAGES: u32 = 10;

/// What a forge shows for one status context, in the forge's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownStatus {
    /// The forge's state (`success`, `running`, `SUCCESSFUL`, `succeeded`, ...).
    pub state: String,
    /// The description, when the forge has one.
    pub description: Option<String>,
}

impl ShownStatus {
    /// Whether posting `request` would change nothing the forge shows: the same state and the
    /// same description (a missing description and an empty one are the same; surrounding
    /// spaces are ignored). Target URLs and names are not compared.
    pub fn matches(&self, request: &StatusRequest) -> bool {
        let field = |name: &str| request.body.get(name).and_then(Value::as_str);
        if field("state") != Some(self.state.as_str()) {
            return false;
        }
        let ours = field("description").unwrap_or("").trim();
        let theirs = self.description.as_deref().unwrap_or("").trim();
        ours == theirs
    }
}

/// What one page of a read-back says about the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    /// The forge shows this for the context.
    Shows(ShownStatus),
    /// The forge shows nothing for the context.
    Nothing,
    /// Not on this page, and the forge has more: read the next one.
    NextPage,
}

/// A read-back answer that says nothing usable; the status is then posted as usual.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableAnswer {
    /// The forge refused the read.
    #[error("answered {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Refused { status: u16, message: String },
    /// The body is not what the forge documents.
    #[error("unexpected answer: {0}")]
    Malformed(String),
}

impl UnreadableAnswer {
    /// The refusal of a non-success `answer`.
    pub fn refused(answer: &ReadAnswer) -> UnreadableAnswer {
        UnreadableAnswer::Refused {
            status: answer.response.status,
            message: answer.response.message.clone(),
        }
    }
}

/// The body of a successful answer as `T`; a refusal otherwise.
pub fn parse_success<T: DeserializeOwned>(answer: &ReadAnswer) -> Result<T, UnreadableAnswer> {
    if !answer.response.is_success() {
        return Err(UnreadableAnswer::refused(answer));
    }
    serde_json::from_slice(&answer.body).map_err(|e| UnreadableAnswer::Malformed(e.to_string()))
}

/// The read request for `path` (relative to the forge's API URL).
pub fn get(path: String) -> StatusRequest {
    StatusRequest::get(path)
}

/// The verdict of a list page that did not contain the context: more pages, or nothing.
pub fn not_on_page(items_on_page: usize, page_size: usize) -> ReadBack {
    if items_on_page >= page_size {
        ReadBack::NextPage
    } else {
        ReadBack::Nothing
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::forge::answer::ForgeResponse;

    /// An answer with `status` and a JSON `body`.
    pub(crate) fn answer(status: u16, body: &Value) -> ReadAnswer {
        ReadAnswer {
            response: ForgeResponse {
                status,
                rate: Default::default(),
                message: if (200..300).contains(&status) {
                    String::new()
                } else {
                    "refused".into()
                },
            },
            body: Bytes::from(body.to_string()),
        }
    }

    fn post(body: Value) -> StatusRequest {
        StatusRequest::post("/x".into(), body)
    }

    #[test]
    fn the_same_state_and_description_match_and_anything_else_does_not() {
        let shown = ShownStatus {
            state: "success".into(),
            description: Some("applied ".into()),
        };
        assert!(shown.matches(&post(
            json!({"state": "success", "description": "applied", "context": "c"})
        )));
        assert!(!shown.matches(&post(json!({"state": "failure", "description": "applied"}))));
        assert!(!shown.matches(&post(json!({"state": "success", "description": "other"}))));
        let bare = ShownStatus {
            state: "success".into(),
            description: None,
        };
        assert!(bare.matches(&post(json!({"state": "success", "description": ""}))));
        assert!(bare.matches(&post(json!({"state": "success"}))));
        assert!(!bare.matches(&post(json!({"description": ""}))));
    }

    #[test]
    fn a_refusal_or_a_strange_body_is_unreadable() {
        let refused = parse_success::<Value>(&answer(403, &json!({}))).unwrap_err();
        assert_eq!(refused.to_string(), "answered 403: refused");
        let strange = parse_success::<Vec<u8>>(&answer(200, &json!({"a": 1}))).unwrap_err();
        assert!(
            matches!(strange, UnreadableAnswer::Malformed(_)),
            "{strange}"
        );
    }

    #[test]
    fn a_full_page_without_the_context_asks_for_the_next() {
        assert_eq!(not_on_page(100, 100), ReadBack::NextPage);
        assert_eq!(not_on_page(99, 100), ReadBack::Nothing);
    }
}
