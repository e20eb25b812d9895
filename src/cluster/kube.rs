//! Reads the Flux objects from the Kubernetes API into a [`Snapshot`], as `kubectl get` would:
//! paged lists (`limit` and `continue`), cluster-wide or per configured namespace, with the
//! configured label selector.
//!
//! Each page is fetched as bytes and decoded by a streaming visitor that turns every item
//! straight into its partial type; the page's bytes are dropped before the next one is
//! fetched, so memory follows what the snapshot keeps, not the size of the JSON.
//!
//! A read either sees every list to its end or fails: a half-read cluster must never look like
//! objects were deleted. Missing CRDs are the exception: that kind is recorded in
//! [`Snapshot::missing_kinds`] and the others are read.

mod cached;
mod failure;
mod page;

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;

pub use failure::{ListTarget, ReadErrorKind, ReadFailure};

use super::Snapshot;
use crate::backoff::{Backoff, Grain, equal_jitter};
use crate::config::Config;
use crate::flux::FluxKind;
pub(crate) use failure::refusal;
use failure::{status_failure, status_message};
use page::decode_page;

/// Lists read at the same time; each holds at most one page in memory.
const CONCURRENT_LISTS: usize = 4;

/// Reads the Flux kinds from a live cluster.
#[derive(Clone)]
pub struct KubeReader {
    client: kube::Client,
    namespaces: Vec<String>,
    label_selector: String,
    page_size: u32,
    max_pages: u32,
    request_timeout: Duration,
    retry: RetryPolicy,
    /// `kube.listFromCache`: one unchunked list per collection from the watch cache.
    list_from_cache: bool,
}

impl fmt::Debug for KubeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeReader")
            .field("namespaces", &self.namespaces)
            .field("label_selector", &self.label_selector)
            .field("page_size", &self.page_size)
            .field("list_from_cache", &self.list_from_cache)
            .field("max_pages", &self.max_pages)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// How often and how patiently a failed request (429, 5xx, timeout, dropped connection) is
/// tried again before the read fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts, including a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), with jitter so that many exporters do
    /// not retry in step.
    fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = Backoff {
            base: self.initial_backoff,
            max: self.max_backoff,
        };
        let step = retry_after.map_or_else(|| backoff.step(retry), |r| r.min(self.max_backoff));
        equal_jitter(step, Grain::Nanos, fastrand::u64)
    }
}

/// One HTTP request made while reading, for request metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRequest {
    /// Plural resource name, e.g. `kustomizations`.
    pub resource: &'static str,
    /// Kubernetes verb: `list`.
    pub verb: &'static str,
    /// HTTP status, or `None` when no answer arrived (transport error or timeout).
    pub code: Option<u16>,
    pub duration: Duration,
}

impl KubeRequest {
    /// A list request of `target` started at `started` and answered with `code`.
    pub(crate) fn list(target: &ListTarget, code: Option<u16>, started: Instant) -> KubeRequest {
        KubeRequest {
            resource: target.kind.plural(),
            verb: "list",
            code,
            duration: started.elapsed(),
        }
    }
}

/// A complete read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    pub snapshot: Snapshot,
    pub requests: Vec<KubeRequest>,
}

/// A read that did not see the whole cluster; nothing derived from it may be posted.
#[derive(Debug, thiserror::Error)]
#[error("{failure}")]
pub struct ReadError {
    pub failure: ReadFailure,
    /// Every request made before the read gave up, for metrics.
    pub requests: Vec<KubeRequest>,
}

impl ReadError {
    /// The failure's class, for metric labels.
    pub fn kind(&self) -> ReadErrorKind {
        self.failure.kind()
    }
}

/// What one page request produced after retries.
enum Fetched {
    Body(Bytes),
    /// A final, non-retryable answer (or 404/410, which the caller interprets).
    Status {
        code: u16,
        message: String,
    },
}

/// What one list call produced.
pub(crate) enum Listed {
    /// Every object, and the list's resourceVersion (that of its first page).
    Objects {
        objects: Box<Snapshot>,
        resource_version: String,
    },
    /// 404 on the collection: the kind's CRD (or this version of it) is not installed.
    NotServed,
}

impl KubeReader {
    /// A reader for the configuration's namespaces, label selector and paging settings.
    pub fn new(client: kube::Client, config: &Config) -> Self {
        KubeReader {
            client,
            namespaces: config.namespaces.clone(),
            label_selector: config.label_selector.as_str().to_string(),
            page_size: config.kube.page_size,
            max_pages: config.kube.max_pages,
            request_timeout: config.kube.request_timeout,
            retry: RetryPolicy::default(),
            list_from_cache: config.kube.list_from_cache,
        }
    }

    /// Replaces the retry policy (tests use short backoffs).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Reads every Flux kind. Missing CRDs are recorded in the snapshot and logged once each;
    /// any other failure fails the whole read.
    pub async fn read(&self) -> Result<ReadOutcome, ReadError> {
        let targets = self.targets();
        let results: Vec<(ListTarget, Result<Listed, ReadFailure>, Vec<KubeRequest>)> =
            futures_util::stream::iter(targets)
                .map(|target| async move {
                    let mut requests = Vec::new();
                    let result = self.read_list(&target, &mut requests).await;
                    (target, result, requests)
                })
                .buffered(CONCURRENT_LISTS)
                .collect()
                .await;

        let mut snapshot = Snapshot::default();
        let mut requests = Vec::new();
        let mut failure = None;
        for (target, result, mut made) in results {
            requests.append(&mut made);
            match result {
                Ok(Listed::Objects { objects, .. }) => snapshot.append(*objects),
                Ok(Listed::NotServed) => snapshot.missing_kinds.push(target.kind),
                Err(f) => {
                    failure.get_or_insert(f);
                }
            }
        }
        if let Some(failure) = failure {
            return Err(ReadError { failure, requests });
        }
        snapshot.sort();
        for kind in &snapshot.missing_kinds {
            tracing::warn!(
                kind = %kind,
                "skipping {kind}: the API server does not serve {}.{} ({}); is the Flux CRD installed?",
                kind.plural(),
                kind.group(),
                kind.api_version()
            );
        }
        Ok(ReadOutcome { snapshot, requests })
    }

    /// What the reader lists: every Flux kind, cluster-wide or in each configured namespace.
    pub(crate) fn targets(&self) -> Vec<ListTarget> {
        FluxKind::ALL
            .into_iter()
            .flat_map(|kind| {
                let namespaces: Vec<Option<String>> = if self.namespaces.is_empty() {
                    vec![None]
                } else {
                    self.namespaces.iter().cloned().map(Some).collect()
                };
                namespaces
                    .into_iter()
                    .map(move |namespace| ListTarget { kind, namespace })
            })
            .collect()
    }

    /// The timeout of one request.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The URI of a watch of `target` from `resource_version`, with bookmarks, ended by the
    /// server after `timeout_seconds`.
    pub(crate) fn watch_uri(
        &self,
        target: &ListTarget,
        resource_version: &str,
        timeout_seconds: u64,
    ) -> String {
        let uri = format!(
            "{}?watch=true&allowWatchBookmarks=true&resourceVersion={}&timeoutSeconds={timeout_seconds}",
            target.path(),
            percent_encode(resource_version)
        );
        self.with_selector(uri)
    }

    /// The URI of a streaming list of `target`: a watch sending the current state first,
    /// ended by a bookmark, then the changes (Kubernetes' WatchList).
    pub(crate) fn streaming_list_uri(&self, target: &ListTarget, timeout_seconds: u64) -> String {
        let uri = format!(
            "{}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds={timeout_seconds}",
            target.path()
        );
        self.with_selector(uri)
    }

    /// Reads one list to its end, restarting it once when its continue token expires.
    pub(crate) async fn read_list(
        &self,
        target: &ListTarget,
        requests: &mut Vec<KubeRequest>,
    ) -> Result<Listed, ReadFailure> {
        if self.list_from_cache {
            return self.read_list_from_cache(target, requests).await;
        }
        let mut restarted = false;
        'list: loop {
            let mut part = Snapshot::default();
            let mut token: Option<String> = None;
            let mut pages = 0u32;
            let mut resource_version = String::new();
            loop {
                let fetched = self.fetch_page(target, token.as_deref(), requests).await?;
                let body = match fetched {
                    Fetched::Body(body) => body,
                    Fetched::Status { code: 404, .. } if token.is_none() => {
                        return Ok(Listed::NotServed);
                    }
                    Fetched::Status { code: 410, message } if token.is_some() => {
                        if restarted {
                            return Err(ReadFailure::Gone {
                                target: target.clone(),
                                message,
                            });
                        }
                        tracing::info!(
                            "the continue token for listing {target} expired (410 Gone); reading the list again from its start"
                        );
                        restarted = true;
                        continue 'list;
                    }
                    Fetched::Status { code, message } => {
                        return Err(status_failure(target, code, message));
                    }
                };
                pages += 1;
                let page = decode_page(&body, target.kind, &mut part).map_err(|e| {
                    ReadFailure::InvalidResponse {
                        target: target.clone(),
                        problem: e.to_string(),
                    }
                })?;
                // The page's bytes are no longer needed; free them before the next request.
                drop(body);
                if pages == 1 {
                    if let Some(remaining) = page.remaining_item_count {
                        part.reserve(target.kind, remaining);
                    }
                    resource_version = page.resource_version.unwrap_or_default();
                }
                match page.continue_token {
                    Some(next) if !next.is_empty() => {
                        if pages >= self.max_pages {
                            return Err(ReadFailure::TooManyPages {
                                target: target.clone(),
                                max_pages: self.max_pages,
                            });
                        }
                        token = Some(next);
                    }
                    _ => {
                        return Ok(Listed::Objects {
                            objects: Box::new(part),
                            resource_version,
                        });
                    }
                }
            }
        }
    }

    /// Fetches one page, retrying throttling, server errors, timeouts and transport failures.
    async fn fetch_page(
        &self,
        target: &ListTarget,
        continue_token: Option<&str>,
        requests: &mut Vec<KubeRequest>,
    ) -> Result<Fetched, ReadFailure> {
        let uri = self.page_uri(target, continue_token);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let started = Instant::now();
            let result = tokio::time::timeout(self.request_timeout, self.get(&uri)).await;
            let code = match &result {
                Ok(Ok((status, _, _))) => Some(*status),
                _ => None,
            };
            requests.push(KubeRequest::list(target, code, started));
            tracing::debug!(
                resource = target.kind.plural(),
                ?code,
                attempt = attempts,
                "list page"
            );
            let (failure, retry_after) = match result {
                Ok(Ok((200..=299, body, _))) => return Ok(Fetched::Body(body)),
                Ok(Ok((code, body, retry_after))) if code == 429 || code >= 500 => {
                    let message = status_message(&body);
                    let failure = if code == 429 {
                        ReadFailure::TooManyRequests {
                            target: target.clone(),
                            attempts,
                            message,
                        }
                    } else {
                        ReadFailure::ServerError {
                            target: target.clone(),
                            code,
                            attempts,
                            message,
                        }
                    };
                    (failure, retry_after)
                }
                Ok(Ok((code, body, _))) => {
                    return Ok(Fetched::Status {
                        code,
                        message: status_message(&body),
                    });
                }
                Ok(Err(error)) => (
                    ReadFailure::Transport {
                        target: target.clone(),
                        attempts,
                        message: error.to_string(),
                    },
                    None,
                ),
                Err(_elapsed) => (
                    ReadFailure::Timeout {
                        target: target.clone(),
                        attempts,
                        timeout: self.request_timeout,
                    },
                    None,
                ),
            };
            if attempts > self.retry.max_retries {
                return Err(failure);
            }
            let wait = self.retry.backoff(attempts - 1, retry_after);
            tracing::info!("retrying in {wait:?}: {failure}");
            tokio::time::sleep(wait).await;
        }
    }

    /// One GET: status, whole body, and `Retry-After` in seconds when given.
    async fn get(&self, uri: &str) -> Result<(u16, Bytes, Option<Duration>), TransportError> {
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(kube::client::Body::empty())?;
        let response = self.client.send(request).await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body, retry_after))
    }

    /// `uri` (which has a query) with the configured label selector, if any.
    fn with_selector(&self, mut uri: String) -> String {
        if !self.label_selector.is_empty() {
            uri.push_str("&labelSelector=");
            uri.push_str(&percent_encode(&self.label_selector));
        }
        uri
    }

    fn page_uri(&self, target: &ListTarget, continue_token: Option<&str>) -> String {
        let mut uri = self.with_selector(format!("{}?limit={}", target.path(), self.page_size));
        if let Some(token) = continue_token {
            uri.push_str("&continue=");
            uri.push_str(&percent_encode(token));
        }
        uri
    }
}

/// No answer arrived: the request could not be built or sent, or its body was cut off.
#[derive(Debug, thiserror::Error)]
enum TransportError {
    #[error("{0}")]
    Request(#[from] http::Error),
    #[error("{}", describe_kube_error(.0))]
    Kube(#[from] kube::Error),
}

/// A transport error with its causes, which name the address and the OS error.
fn describe_kube_error(error: &kube::Error) -> String {
    crate::forge::text::error_chain(error)
}

/// Percent-encodes a query parameter value (everything but RFC 3986 unreserved characters).
fn percent_encode(value: &str) -> String {
    crate::forge::text::percent_encode(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            percent_encode("!sharding.fluxcd.io/key,env in (a,b)"),
            "%21sharding.fluxcd.io%2Fkey%2Cenv%20in%20%28a%2Cb%29"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        for (retry, full) in [(0, 100), (1, 200), (2, 350), (9, 350)] {
            let wait = policy.backoff(retry, None);
            let full = Duration::from_millis(full);
            assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
        }
        let wait = policy.backoff(0, Some(Duration::from_secs(60)));
        assert!(wait >= Duration::from_millis(175) && wait <= Duration::from_millis(350));
    }
}
