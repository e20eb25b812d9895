//! One page request: a GET with a timeout, retried with backoff while the API server throttles,
//! fails or does not answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;

use super::failure::{ListTarget, ReadFailure, status_message};
use super::{KubeReader, KubeRequest};

/// What one page request produced after retries.
pub(super) enum Fetched {
    Body(Bytes),
    /// A final, non-retryable answer (or 404/410, which the caller interprets).
    Status {
        code: u16,
        message: String,
    },
}

impl KubeReader {
    /// Fetches one page, retrying throttling, server errors, timeouts and transport failures.
    pub(super) async fn fetch_page(
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
            requests.push(KubeRequest {
                resource: target.kind.plural(),
                verb: "list",
                code,
                duration: started.elapsed(),
            });
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
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
