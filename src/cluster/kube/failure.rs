//! Why a read failed, in terms an operator can act on: the list, the HTTP answer and, for
//! RBAC refusals, the rule that would allow it.

use std::fmt;
use std::time::Duration;

use http_body_util::BodyExt;
use serde::Deserialize;

use crate::flux::FluxKind;

/// One list call: which resource, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTarget {
    pub kind: FluxKind,
    /// `None`: all namespaces.
    pub namespace: Option<String>,
}

impl fmt::Display for ListTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.plural(), self.kind.group())?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => f.write_str(" in all namespaces"),
        }
    }
}

impl ListTarget {
    /// The RBAC rule that would allow this list, for error messages.
    fn rbac_hint(&self) -> String {
        let rule = format!(
            "{{apiGroups: [\"{}\"], resources: [\"{}\"], verbs: [\"list\"]}}",
            self.kind.group(),
            self.kind.plural()
        );
        match &self.namespace {
            Some(ns) => format!(
                "add the rule {rule} to the exporter's ClusterRole or Role, bound in namespace {ns}"
            ),
            None => format!(
                "add the rule {rule} to the exporter's ClusterRole and bind it with a ClusterRoleBinding"
            ),
        }
    }

    /// The collection's API path, namespaced when the target is.
    pub(super) fn path(&self) -> String {
        let kind = self.kind;
        match &self.namespace {
            Some(ns) => format!(
                "/apis/{}/namespaces/{ns}/{}",
                kind.api_version(),
                kind.plural()
            ),
            None => format!("/apis/{}/{}", kind.api_version(), kind.plural()),
        }
    }
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadFailure {
    #[error(
        "cannot list {target}: the API server did not accept the credentials (401 Unauthorized); check the kubeconfig user or the service-account token: {message}"
    )]
    Unauthorized { target: ListTarget, message: String },
    #[error(
        "cannot list {target}: RBAC refused verb `list` on resource `{resource}` in API group `{group}` (403 Forbidden); {hint}: {message}",
        resource = target.kind.plural(),
        group = target.kind.group(),
        hint = target.rbac_hint()
    )]
    Forbidden { target: ListTarget, message: String },
    #[error(
        "cannot list {target}: no answer within {timeout:?}, {attempts} attempt(s)",
        timeout = timeout
    )]
    Timeout {
        target: ListTarget,
        attempts: u32,
        timeout: Duration,
    },
    #[error(
        "cannot list {target}: the API server kept failing ({code}) after {attempts} attempt(s): {message}"
    )]
    ServerError {
        target: ListTarget,
        code: u16,
        attempts: u32,
        message: String,
    },
    #[error(
        "cannot list {target}: the API server kept throttling (429 Too Many Requests) after {attempts} attempt(s): {message}"
    )]
    TooManyRequests {
        target: ListTarget,
        attempts: u32,
        message: String,
    },
    #[error("cannot list {target}: connection failed after {attempts} attempt(s): {message}")]
    Transport {
        target: ListTarget,
        attempts: u32,
        message: String,
    },
    #[error(
        "cannot list {target}: the continue token expired again after restarting the list (410 Gone): {message}"
    )]
    Gone { target: ListTarget, message: String },
    #[error(
        "cannot list {target}: still not finished after kube.maxPages = {max_pages} pages; the API server keeps returning a continue token"
    )]
    TooManyPages { target: ListTarget, max_pages: u32 },
    #[error("cannot list {target}: the API server refused the request ({code}): {message}")]
    Rejected {
        target: ListTarget,
        code: u16,
        message: String,
    },
    #[error("cannot list {target}: the answer is not a Kubernetes list: {problem}")]
    InvalidResponse { target: ListTarget, problem: String },
    #[error(
        "cannot watch {target}: RBAC refused verb `watch` on resource `{resource}` in API group `{group}` (403 Forbidden); `kube.read: watch` needs `watch` beside `get` and `list` in the exporter's ClusterRole (deploy/components/read-watch), or set `kube.read: list`: {message}",
        resource = target.kind.plural(),
        group = target.kind.group()
    )]
    WatchForbidden { target: ListTarget, message: String },
    /// `kube.read: watch` and the watch's store is not complete: its first list has not
    /// finished, or its watch broke and is not re-established yet.
    #[error("the watch of {target} is not in sync: {why}")]
    NotSynced { target: ListTarget, why: String },
}

/// A small, stable classification of read failures, for metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadErrorKind {
    Unauthorized,
    Forbidden,
    Timeout,
    ServerError,
    TooManyRequests,
    Gone,
    TooManyPages,
    Transport,
    Rejected,
    InvalidResponse,
    NotSynced,
}

impl ReadErrorKind {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadErrorKind::Unauthorized => "unauthorized",
            ReadErrorKind::Forbidden => "forbidden",
            ReadErrorKind::Timeout => "timeout",
            ReadErrorKind::ServerError => "server_error",
            ReadErrorKind::TooManyRequests => "too_many_requests",
            ReadErrorKind::Gone => "gone",
            ReadErrorKind::TooManyPages => "too_many_pages",
            ReadErrorKind::Transport => "transport",
            ReadErrorKind::Rejected => "rejected",
            ReadErrorKind::InvalidResponse => "invalid_response",
            ReadErrorKind::NotSynced => "not_synced",
        }
    }
}

impl fmt::Display for ReadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ReadFailure {
    /// The failure's class, for metric labels.
    pub fn kind(&self) -> ReadErrorKind {
        match self {
            ReadFailure::Unauthorized { .. } => ReadErrorKind::Unauthorized,
            ReadFailure::Forbidden { .. } => ReadErrorKind::Forbidden,
            ReadFailure::Timeout { .. } => ReadErrorKind::Timeout,
            ReadFailure::ServerError { .. } => ReadErrorKind::ServerError,
            ReadFailure::TooManyRequests { .. } => ReadErrorKind::TooManyRequests,
            ReadFailure::Gone { .. } => ReadErrorKind::Gone,
            ReadFailure::TooManyPages { .. } => ReadErrorKind::TooManyPages,
            ReadFailure::Transport { .. } => ReadErrorKind::Transport,
            ReadFailure::Rejected { .. } => ReadErrorKind::Rejected,
            ReadFailure::InvalidResponse { .. } => ReadErrorKind::InvalidResponse,
            ReadFailure::WatchForbidden { .. } => ReadErrorKind::Forbidden,
            ReadFailure::NotSynced { .. } => ReadErrorKind::NotSynced,
        }
    }
}

pub(super) fn status_failure(target: &ListTarget, code: u16, message: String) -> ReadFailure {
    let target = target.clone();
    match code {
        401 => {
            // The body may echo a token rotated since it was last read.
            crate::cluster::client::register_token_files();
            ReadFailure::Unauthorized { target, message }
        }
        403 => ReadFailure::Forbidden { target, message },
        _ => ReadFailure::Rejected {
            target,
            code,
            message,
        },
    }
}

/// The status and `Status` message of a refusal, its body read whole (it is small).
pub(crate) async fn refusal(response: http::Response<kube::client::Body>) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, status_message(&body))
}

/// The `message` of a Kubernetes `Status` body, or the start of whatever else was sent.
pub(crate) fn status_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Status {
        message: String,
    }
    if let Ok(status) = serde_json::from_slice::<Status>(body)
        && !status.message.is_empty()
    {
        return status.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty response body)".to_string();
    }
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_errors_name_the_verb_resource_and_scope_to_grant() {
        let failure = status_failure(
            &ListTarget {
                kind: FluxKind::HelmRelease,
                namespace: Some("apps".to_string()),
            },
            403,
            "denied".to_string(),
        );
        assert_eq!(failure.kind(), ReadErrorKind::Forbidden);
        assert_eq!(
            failure.to_string(),
            "cannot list helmreleases.helm.toolkit.fluxcd.io in namespace apps: RBAC refused verb `list` on resource `helmreleases` in API group `helm.toolkit.fluxcd.io` (403 Forbidden); add the rule {apiGroups: [\"helm.toolkit.fluxcd.io\"], resources: [\"helmreleases\"], verbs: [\"list\"]} to the exporter's ClusterRole or Role, bound in namespace apps: denied"
        );
    }
}
