//! What every forge's answer is reduced to (a status, rate-limit signals and a message), and
//! why a request can get no answer. Pure: no I/O, time passed in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;

use super::credentials::CredentialError;
use crate::model::profile::InvalidRepository;

/// `text` without any of `secrets`, in any form they are sent in (see [`crate::redact`]).
pub fn redact_all(text: &str, secrets: &[String]) -> String {
    crate::redact::Redactor::new(secrets.iter().map(String::as_str))
        .redact(text)
        .into_owned()
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
            let mut whole = error_message(body);
            if let Some(location) = (300..400)
                .contains(&status)
                .then(|| headers.get(http::header::LOCATION))
                .flatten()
            {
                let location = String::from_utf8_lossy(location.as_bytes());
                let location = location.split_whitespace().collect::<Vec<_>>().join(" ");
                whole = if whole.is_empty() {
                    format!("moved to {location}")
                } else {
                    format!("{whole}; moved to {location}")
                };
            }
            // Redacted before it is cut: a cut can split a secret so that no whole copy of it
            // is left to find.
            super::text::truncate_chars(&redact_all(&whole, secrets), MAX_MESSAGE)
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

/// The whole message, on one line, in a forge's error body: GitHub/Gitea/GitLab/Azure
/// `message`, GitLab's `message` objects, Bitbucket Cloud's `error.message`, Bitbucket
/// Server's `errors[].message`; else the body as text.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let found = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| json_message(&v));
    let message = found.unwrap_or_else(|| text.trim().to_string());
    message.split_whitespace().collect::<Vec<_>>().join(" ")
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

/// A read request's answer, with its body (at most 16 MiB of a success, 1 MiB of an error).
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

    #[test]
    fn a_secret_echoed_where_the_message_is_cut_leaves_no_part_of_it() {
        let token = "ghp_0123456789abcdefghijABCDEFGHIJ0123456789";
        let header = format!("Authorization: token {token}");
        for pad in 240..300 {
            let body = serde_json::json!({
                "message": format!("{} {header}", "x".repeat(pad)),
            });
            let response = ForgeResponse::from_parts(
                422,
                &HeaderMap::new(),
                body.to_string().as_bytes(),
                &[format!("token {token}"), token.to_string()],
                at(0),
            );
            assert!(response.message.chars().count() <= MAX_MESSAGE);
            for window in token.as_bytes().windows(8) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(
                    !response.message.contains(window),
                    "cut after {pad}: {} holds {window}",
                    response.message
                );
            }
        }
    }

    mod property {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        use proptest::prelude::*;

        use super::*;

        fn windows(text: &str) -> Vec<String> {
            text.as_bytes()
                .windows(8)
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        }

        proptest! {
            #[test]
            fn no_answer_message_holds_eight_characters_of_the_secret_or_its_base64(
                secret in "[A-Za-z0-9_-]{8,48}",
                user in "[a-z-]{0,12}",
                before in "[ -~]{0,400}",
                after in "[ -~]{0,100}",
                form in 0usize..4,
                cut_start in 0usize..40,
                cut_len in 8usize..120,
                status in prop::sample::select(vec![400u16, 401, 403, 404, 422, 500, 502]),
            ) {
                let basic = STANDARD.encode(format!("{user}:{secret}"));
                let echoed_whole = match form {
                    0 => secret.clone(),
                    1 => basic.clone(),
                    2 => STANDARD.encode(&secret),
                    _ => format!("Basic {basic}"),
                };
                // The forge may echo a part of it, cut anywhere.
                let start = cut_start.min(echoed_whole.len().saturating_sub(8));
                let end = (start + cut_len).min(echoed_whole.len());
                let echoed = &echoed_whole[start..end];
                let body = serde_json::json!({"message": format!("{before}{echoed}{after}")});
                let response = ForgeResponse::from_parts(
                    status,
                    &HeaderMap::new(),
                    body.to_string().as_bytes(),
                    &[format!("Basic {basic}"), secret.clone()],
                    at(0),
                );
                let message = &response.message;
                for window in windows(&secret)
                    .into_iter()
                    .chain(windows(&STANDARD.encode(&secret)))
                    .chain(windows(&basic))
                {
                    // Text the test made up may hold the window by chance only if it is in the
                    // echo's surroundings; those are not the secret's.
                    if before.contains(&window) || after.contains(&window) {
                        continue;
                    }
                    prop_assert!(!message.contains(&window), "{message} holds {window}");
                }
            }
        }
    }
}
