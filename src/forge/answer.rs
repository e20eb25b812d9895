//! What every forge's answer is reduced to (a status, rate-limit signals and a message), and
//! why a request can get no answer. Pure: no I/O, time passed in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;

use super::credentials::CredentialError;
use super::text::redact;
use crate::model::profile::InvalidRepository;

/// `text` with each of `secrets` removed.
pub fn redact_all(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |acc, secret| redact(&acc, secret))
}

/// Longest forge message carried into an error.
const MAX_MESSAGE: usize = 300;

/// What a forge's `Retry-After` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// Wait this many seconds.
    Seconds(u64),
    /// Wait until this time (an HTTP date).
    At(SystemTime),
}

/// Rate-limit signals in an answer's headers: `Retry-After`, GitHub/Gitea/Azure's
/// `X-RateLimit-*`, GitLab's `RateLimit-*`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// Requests allowed per window.
    pub limit: Option<u64>,
    /// Requests left in the current window.
    pub remaining: Option<u64>,
    /// When the budget refills, as epoch seconds.
    pub reset_epoch: Option<u64>,
    /// `Retry-After`, when given.
    pub retry_after: Option<RetryAfter>,
}

impl RateLimitInfo {
    /// Reads the signals from `headers`; `now` turns a relative reset into an epoch.
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> RateLimitInfo {
        let number = |names: &[&str]| {
            names.iter().find_map(|n| {
                headers
                    .get(*n)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        };
        let reset_epoch = number(&["x-ratelimit-reset", "ratelimit-reset"]).map(|reset| {
            // Epoch seconds (GitHub, GitLab) or, per the IETF draft, seconds from now.
            if reset >= 1_000_000_000 {
                reset
            } else {
                epoch_seconds(now) + reset
            }
        });
        RateLimitInfo {
            limit: number(&["x-ratelimit-limit", "ratelimit-limit"]),
            remaining: number(&["x-ratelimit-remaining", "ratelimit-remaining"]),
            reset_epoch,
            retry_after: headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        }
    }

    /// How long `Retry-After` asks to wait from `now`.
    pub fn retry_after_wait(&self, now: SystemTime) -> Option<Duration> {
        match self.retry_after? {
            RetryAfter::Seconds(s) => Some(Duration::from_secs(s)),
            RetryAfter::At(at) => Some(at.duration_since(now).unwrap_or(Duration::ZERO)),
        }
    }

    /// How long until the budget resets, from `now`; zero when it already has.
    pub fn reset_wait(&self, now: SystemTime) -> Option<Duration> {
        let reset = UNIX_EPOCH + Duration::from_secs(self.reset_epoch?);
        Some(reset.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// Whether the budget is used up.
    pub fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

fn epoch_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `Retry-After`: delta seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<RetryAfter> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(RetryAfter::Seconds(seconds));
    }
    let ts = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let seconds = u64::try_from(ts.as_second()).ok()?;
    Some(RetryAfter::At(UNIX_EPOCH + Duration::from_secs(seconds)))
}

/// A forge's answer, reduced to what delivery decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeResponse {
    /// The HTTP status.
    pub status: u16,
    /// Rate-limit signals from the headers.
    pub rate: RateLimitInfo,
    /// The forge's own message for a failure, one line, without the credential; empty for
    /// successes.
    pub message: String,
}

impl ForgeResponse {
    /// Builds the answer from its parts; `secrets` are removed from the message.
    pub fn from_parts(
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[String],
        now: SystemTime,
    ) -> ForgeResponse {
        let message = if (200..300).contains(&status) {
            String::new()
        } else {
            redact_all(&error_message(body), secrets)
        };
        ForgeResponse {
            status,
            rate: RateLimitInfo::from_headers(headers, now),
            message,
        }
    }

    /// Whether the forge accepted the request.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The message in a forge's error body: GitHub/Gitea/GitLab/Azure `message`, GitLab's
/// `message` objects, Bitbucket Cloud's `error.message`, Bitbucket Server's `errors[].message`;
/// else the start of the body as text.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let found = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| json_message(&v));
    let message = found.unwrap_or_else(|| text.trim().to_string());
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    super::text::truncate_chars(&one_line, MAX_MESSAGE)
}

fn json_message(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let flatten = |m: &Value| match m {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let mut parts = Vec::new();
    if let Some(m) = v.get("message").and_then(flatten) {
        parts.push(m);
    }
    if let Some(m) = v.get("error").and_then(|e| match e {
        Value::Object(_) => e.get("message").and_then(flatten),
        other => flatten(other),
    }) {
        parts.push(m);
    }
    if let Some(errors) = v.get("errors").and_then(Value::as_array) {
        parts.extend(errors.iter().filter_map(|e| match e {
            Value::Object(_) => e.get("message").and_then(flatten),
            other => flatten(other),
        }));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A read request's answer, with its body (at most 64 KiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAnswer {
    /// Status, rate-limit signals and (for failures) the forge's message.
    pub response: ForgeResponse,
    /// The body, for the dialect to parse.
    pub body: Bytes,
}

impl ReadAnswer {
    /// An answer without a body (a refusal before any read, e.g. a GitHub App token exchange).
    pub fn without_body(response: ForgeResponse) -> ReadAnswer {
        ReadAnswer {
            response,
            body: Bytes::new(),
        }
    }
}

/// Why a request got no usable answer, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No answer: connection refused, reset or dropped mid-request.
    #[error("{0}")]
    Transport(String),
    /// The credential could not be read.
    #[error("credential: {0}")]
    Credential(#[from] CredentialError),
    /// The update cannot be expressed for this forge; sending it again will not help.
    #[error("{0}")]
    Invalid(String),
}

impl From<InvalidRepository> for Failure {
    fn from(invalid: InvalidRepository) -> Failure {
        Failure::Invalid(invalid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn at(epoch: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(epoch)
    }

    #[test]
    fn github_rate_limit_headers_are_read() {
        let info = RateLimitInfo::from_headers(
            &headers(&[
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000060"),
            ]),
            at(1_700_000_000),
        );
        assert_eq!(info.limit, Some(5000));
        assert!(info.exhausted());
        assert_eq!(
            info.reset_wait(at(1_700_000_000)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(info.retry_after, None);
    }

    #[test]
    fn gitlab_rate_limit_headers_are_read() {
        let info = RateLimitInfo::from_headers(
            &headers(&[
                ("RateLimit-Remaining", "12"),
                ("RateLimit-Reset", "1700000030"),
            ]),
            at(1_700_000_000),
        );
        assert_eq!(info.remaining, Some(12));
        assert_eq!(info.reset_epoch, Some(1_700_000_030));
    }

    #[test]
    fn a_small_reset_is_seconds_from_now() {
        let info =
            RateLimitInfo::from_headers(&headers(&[("ratelimit-reset", "42")]), at(1_700_000_000));
        assert_eq!(info.reset_epoch, Some(1_700_000_042));
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after("120"), Some(RetryAfter::Seconds(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(RetryAfter::At(at(1_445_412_480)))
        );
        assert_eq!(parse_retry_after("soon"), None);
        let info = RateLimitInfo {
            retry_after: Some(RetryAfter::At(at(1_445_412_480))),
            ..RateLimitInfo::default()
        };
        assert_eq!(
            info.retry_after_wait(at(1_445_412_470)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            info.retry_after_wait(at(1_445_412_490)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn error_messages_are_found_in_each_forge_shape() {
        assert_eq!(
            error_message(br#"{"message":"Validation Failed","errors":[{"message":"too long"}]}"#),
            "Validation Failed; too long"
        );
        assert_eq!(
            error_message(br#"{"type":"error","error":{"message":"key too long"}}"#),
            "key too long"
        );
        assert_eq!(
            error_message(br#"{"message":{"name":["is too long"]}}"#),
            r#"{"name":["is too long"]}"#
        );
        assert_eq!(
            error_message(b"<html>\n  Bad   Gateway\n</html>"),
            "<html> Bad Gateway </html>"
        );
    }

    #[test]
    fn answers_never_carry_the_secret() {
        let response = ForgeResponse::from_parts(
            401,
            &HeaderMap::new(),
            br#"{"message":"token s3cret is revoked"}"#,
            &["s3cret".to_string()],
            at(0),
        );
        assert_eq!(response.message, "token [redacted] is revoked");
    }
}
