//! The request a forge's dialect makes of an update: pure data for a transport to send.

/// A request that creates (`POST`) or reads back (`GET`) a status, relative to the forge's
/// API base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRequest {
    /// `POST` to create a status, `GET` to read one back.
    pub method: ::http::Method,
    /// Path and query, appended to the forge's API URL (`/repos/acme/app/statuses/…`).
    pub path: String,
    /// Headers the forge requires besides the credential (e.g. `X-Atlassian-Token`).
    pub headers: Vec<(&'static str, &'static str)>,
    /// The JSON body, already fitted to the forge's limits; `Null` for a read.
    pub body: serde_json::Value,
}

impl StatusRequest {
    /// A `POST` of `body` to `path`.
    pub fn post(path: String, body: serde_json::Value) -> StatusRequest {
        StatusRequest {
            method: ::http::Method::POST,
            path,
            headers: Vec::new(),
            body,
        }
    }

    /// A `GET` of `path`, without a body.
    pub fn get(path: String) -> StatusRequest {
        StatusRequest {
            method: ::http::Method::GET,
            path,
            headers: Vec::new(),
            body: serde_json::Value::Null,
        }
    }
}

/// What a forge needs for one update.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// Send this request.
    Send(StatusRequest),
    /// Nothing: the forge already shows what the update says (GitLab cannot re-post an
    /// unchanged in-progress state). Counts as delivered.
    Unnecessary(&'static str),
}
