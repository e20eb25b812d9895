//! The HTTP edge shared by the forges other than GitHub: one hyper client on rustls with ring
//! (native roots; plain http only reaches the loopback addresses the configuration allows).
//! Answers are reduced to a [`ForgeResponse`] (see [`super::answer`]).

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::answer::{Failure, ForgeResponse, ReadAnswer, redact_all};
use super::credentials::CredentialError;
use super::text::error_chain;

/// Most of an error answer's body we read to find its message (of which 300 characters are
/// kept): enough for any error document, even one padded with a long list of `errors`, and a
/// bound on what a hostile or broken forge can make us hold. A longer one is cut and its
/// message shown as text.
pub const MAX_ERROR_BODY: usize = 1024 * 1024;

/// Most of a successful answer's body we keep. Read-back pages of busy commits are a few hundred
/// KB (GitHub: 100 statuses with their creators); a larger answer is cut, which a read-back then
/// finds unreadable and posts anyway, and which a post ignores.
pub const MAX_SUCCESS_BODY: usize = 16 * 1024 * 1024;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("flux-status-exporter/", env!("CARGO_PKG_VERSION"));

/// A problem building the HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct ClientSetupError(String);

/// Why a request without a credential got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The request could not be built.
    #[error("cannot build the request: {0}")]
    Build(String),
    /// No answer: connection refused, reset or dropped.
    #[error("{0}")]
    Transport(String),
    /// The answer's body could not be read.
    #[error("reading the answer: {0}")]
    Body(String),
}

/// The shared client for GitLab, Bitbucket, Azure DevOps and Gitea.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpClient {
    /// A client on rustls with ring and the system's root certificates.
    pub fn new() -> Result<HttpClient, ClientSetupError> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let connector = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(builder) => builder.https_or_http().enable_http1().build(),
            Err(err) => {
                // Without system roots https cannot be verified, but loopback http (tests, a
                // local proxy) still works; https requests then fail with a TLS error.
                tracing::warn!("no system root certificates ({err}); https forges will fail");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ClientSetupError(e.to_string()))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_or_http()
                    .enable_http1()
                    .build()
            }
        };
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpClient { client })
    }

    /// Sends `body` as JSON with `method` to `url`; `secrets` are kept out of the answer's
    /// message. Authorization headers must be marked sensitive by the caller.
    pub async fn send_json(
        &self,
        method: Method,
        url: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: &serde_json::Value,
        secrets: &[String],
        now: impl Fn() -> SystemTime,
    ) -> Result<ForgeResponse, Failure> {
        let answer = self
            .exchange(method, url, headers, Some(body), secrets, now)
            .await?;
        Ok(answer.response)
    }

    /// `GET`s `url` (no body) and returns the answer with its body; `secrets` are kept out of
    /// the answer's message. Authorization headers must be marked sensitive by the caller.
    pub async fn get(
        &self,
        url: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
        secrets: &[String],
        now: impl Fn() -> SystemTime,
    ) -> Result<ReadAnswer, Failure> {
        self.exchange(Method::GET, url, headers, None, secrets, now)
            .await
    }

    /// Sends one request, with a JSON `body` when given, and returns the answer with its
    /// body; `secrets` are kept out of the answer's message.
    pub async fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Option<&serde_json::Value>,
        secrets: &[String],
        now: impl Fn() -> SystemTime,
    ) -> Result<ReadAnswer, Failure> {
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::USER_AGENT, USER_AGENT)
            .header(http::header::ACCEPT, "application/json");
        let payload = match body {
            Some(body) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body).map_err(|e| Failure::Invalid(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| Failure::Invalid(SendError::Build(e.to_string()).to_string()))?;
        let (response, body) = reduce(self.client.request(request).await, secrets, now).await?;
        Ok(ReadAnswer { response, body })
    }

    /// Sends `body` with `method` and `content_type` to `url` and returns the answer's status
    /// and (the first 1 MiB of) its body. For endpoints that take no credential, e.g. a Pushgateway.
    pub async fn send_bytes(
        &self,
        method: Method,
        url: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), SendError> {
        let request = Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::USER_AGENT, USER_AGENT)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .map_err(|e| SendError::Build(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| SendError::Transport(error_chain(&e)))?;
        let status = response.status().as_u16();
        let bytes = read_body(response.into_body(), MAX_ERROR_BODY).await?;
        Ok((status, bytes))
    }
}

/// Reduces what sending a request gave to the answer and its raw body; `secrets` are kept out
/// of every message, and `now` dates a relative rate-limit reset.
pub async fn reduce<B, E>(
    sent: Result<http::Response<B>, E>,
    secrets: &[String],
    now: impl FnOnce() -> SystemTime,
) -> Result<(ForgeResponse, Bytes), Failure>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
    E: std::error::Error + 'static,
{
    let response = sent.map_err(|e| Failure::Transport(redact_all(&error_chain(&e), secrets)))?;
    let (parts, body) = response.into_parts();
    let keep = if parts.status.is_success() {
        MAX_SUCCESS_BODY
    } else {
        MAX_ERROR_BODY
    };
    let bytes = read_body(body, keep)
        .await
        .map_err(|e| Failure::Transport(redact_all(&e.to_string(), secrets)))?;
    let answer = ForgeResponse::from_parts(
        parts.status.as_u16(),
        &parts.headers,
        &bytes,
        secrets,
        now(),
    );
    Ok((answer, bytes))
}

/// The first `keep` bytes of a body. The rest is not read: a long answer is never a failure by
/// its length (a 2xx status is still a 2xx), only cut.
pub async fn read_body<B>(body: B, keep: usize) -> Result<Bytes, SendError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut body = std::pin::pin!(body);
    let mut kept = bytes::BytesMut::new();
    while kept.len() < keep {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|err| SendError::Body(error_chain(&err)))?;
        if let Ok(data) = frame.into_data() {
            let room = keep - kept.len();
            bytes::BufMut::put(&mut kept, bytes::Buf::take(data, room));
        }
    }
    Ok(kept.freeze())
}

/// An `Authorization` (or other credential) header value, marked sensitive so that hyper and
/// `Debug` never print it.
pub fn sensitive(value: &str) -> Result<HeaderValue, Failure> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        Failure::Credential(CredentialError::Unusable(
            "the credential contains characters not allowed in an HTTP header (a line break or \
             control character); fix the secret"
                .into(),
        ))
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// `Basic base64(user:password)`.
pub fn basic(username: &str, password: &str) -> String {
    use base64::Engine;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_headers_do_not_print() {
        let value = sensitive("Bearer s3cret").unwrap();
        assert!(!format!("{value:?}").contains("s3cret"));
        assert_eq!(basic("", "pat"), "Basic OnBhdA==");
    }

    #[test]
    fn send_errors_say_what_failed() {
        assert_eq!(
            SendError::Build("bad uri".into()).to_string(),
            "cannot build the request: bad uri"
        );
        assert_eq!(
            SendError::Body("connection reset".into()).to_string(),
            "reading the answer: connection reset"
        );
    }

    /// A body of `size` bytes arriving in 10 KB frames.
    fn framed(
        size: usize,
    ) -> impl hyper::body::Body<Data = Bytes, Error = std::convert::Infallible> {
        let frames: Vec<_> = (0..size)
            .step_by(10_000)
            .map(|start| {
                let data = Bytes::from(vec![b'a'; 10_000.min(size - start)]);
                Ok(hyper::body::Frame::data(data))
            })
            .collect();
        http_body_util::StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_within_the_bound_is_read_whole() {
        let body = read_body(framed(200_000), MAX_SUCCESS_BODY).await.unwrap();
        assert_eq!(body.len(), 200_000);
    }

    #[tokio::test]
    async fn a_body_beyond_the_bound_is_cut_at_the_bound_not_refused() {
        let body = read_body(framed(2_000_000), MAX_ERROR_BODY).await.unwrap();
        assert_eq!(body.len(), MAX_ERROR_BODY);
        let body = read_body(framed(200_000), 64 * 1024).await.unwrap();
        assert_eq!(body.len(), 64 * 1024);
    }
}
