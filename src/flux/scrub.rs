//! Removing credentials from text the exporter publishes but did not write: Flux condition
//! messages quote source URLs, Helm and Git errors, and what the exporter keeps of a message
//! is posted to forges and served on `/status`.
//!
//! The rule (the README repeats it): from every URL the `user:password@` is dropped and the
//! value of each query parameter whose name speaks of a credential (`token`, `password`,
//! `secret`, `key`, `signature`, `credential`, `auth`, `sig`, …) becomes `[redacted]`; the
//! word after `Bearer`/`Basic`/`token` in an authorization-like phrase, and every word shaped
//! like a well-known token (GitHub `ghp_…`/`github_pat_…`, GitLab `glpat-…`, Slack `xox?-…`,
//! AWS access key ids, JWTs) becomes `[redacted]` too. Pure.

use std::borrow::Cow;

use crate::redact::REDACTED;

/// `text` without the credentials the rule above finds.
pub fn strip_credentials(text: &str) -> String {
    // Every Flux object's message passes through here on every tick: skip the passes that
    // have nothing to find.
    let text: Cow<'_, str> = if text.contains("://") {
        Cow::Owned(strip_url_userinfo(text))
    } else {
        Cow::Borrowed(text)
    };
    let text: Cow<'_, str> = if text.contains(['?', '&']) {
        Cow::Owned(strip_query_credentials(&text))
    } else {
        text
    };
    strip_token_words(&text)
}

/// `text` with the `user:password@` of every URL in it removed.
pub fn strip_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"'
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Parts of a query parameter's name that say its value is a credential.
const CREDENTIAL_NAMES: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "key",
    "signature",
    "credential",
    "auth",
    "sig",
    "session",
];

fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_NAMES.iter().any(|part| name.contains(part))
}

/// Whether `c` ends a query parameter's value in free text.
fn ends_value(c: char) -> bool {
    c == '&' || c == '#' || c == '\'' || c == '"' || c == ')' || c == '>' || c.is_whitespace()
}

/// `text` with the value of each credential-named query parameter replaced.
fn strip_query_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // A parameter starts after `?` or `&` and runs to `=`.
    while let Some(i) = rest.find(['?', '&']) {
        let (head, tail) = rest.split_at(i + 1);
        out.push_str(head);
        let name_end = tail
            .find(|c: char| c == '=' || ends_value(c) || c == '?')
            .unwrap_or(tail.len());
        let name = &tail[..name_end];
        if tail[name_end..].starts_with('=') && !name.is_empty() && is_credential_name(name) {
            out.push_str(name);
            out.push('=');
            let value = &tail[name_end + 1..];
            let value_end = value.find(ends_value).unwrap_or(value.len());
            if value_end > 0 {
                out.push_str(REDACTED);
            }
            rest = &value[value_end..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Prefixes of well-known token formats, and how many characters at least follow them.
const TOKEN_PREFIXES: &[(&str, usize)] = &[
    ("github_pat_", 20),
    ("ghp_", 20),
    ("gho_", 20),
    ("ghu_", 20),
    ("ghs_", 20),
    ("ghr_", 20),
    ("glpat-", 16),
    ("gldt-", 16),
    ("glrt-", 16),
    ("glptt-", 16),
    ("gloas-", 16),
    ("xoxb-", 10),
    ("xoxp-", 10),
    ("xoxa-", 10),
    ("xoxs-", 10),
    ("ATBB", 24),
];

/// Whether `word` has the shape of a well-known token.
fn is_token_shaped(word: &str) -> bool {
    let tokenish = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if TOKEN_PREFIXES.iter().any(|(prefix, min)| {
        word.strip_prefix(prefix)
            .is_some_and(|rest| rest.len() >= *min && tokenish(rest))
    }) {
        return true;
    }
    // AWS access key ids: AKIA or ASIA and 16 upper-case letters or digits.
    if word.len() == 20
        && (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word[4..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return true;
    }
    // A JWT: three base64url parts, the first a JSON object (`eyJ`).
    word.starts_with("eyJ")
        && word.len() >= 24
        && word.split('.').count() == 3
        && word.split('.').all(|p| !p.is_empty() && tokenish(p))
}

/// Whether `word`, coming after `previous`, is a credential: anything of 8 characters or
/// more after `Bearer` or `Basic`; after `token`, only what looks random (16 characters or
/// more, letters and digits mixed), since "token" is also a word of prose.
fn follows_credential_word(previous: &str, word: &str) -> bool {
    let previous = previous.trim_end_matches(':');
    let is = |name: &str| previous.eq_ignore_ascii_case(name);
    if is("bearer") || is("basic") {
        word.len() >= 8
    } else if is("token") || is("private-token") {
        word.len() >= 16
            && word.chars().any(|c| c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_alphabetic())
    } else {
        false
    }
}

/// `text` with token-shaped words, and the word after `Bearer`/`Basic`/`token`, replaced.
fn strip_token_words(text: &str) -> String {
    let is_word_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '=' | '+' | '/');
    let mut out = String::with_capacity(text.len());
    let mut previous_word = "";
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(is_word_char).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.is_empty() {
            break;
        }
        let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        let trimmed = word.trim_end_matches(['.', '=']);
        let credential =
            is_token_shaped(trimmed) || follows_credential_word(previous_word, trimmed);
        if credential {
            out.push_str(REDACTED);
            out.push_str(&word[trimmed.len()..]);
        } else {
            out.push_str(word);
        }
        previous_word = word;
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_in_urls_is_removed() {
        assert_eq!(
            strip_credentials(
                "failed to checkout 'https://user:hunter2@github.com/acme/app.git' and ssh://git@host:22/x"
            ),
            "failed to checkout 'https://github.com/acme/app.git' and ssh://host:22/x"
        );
        assert_eq!(strip_url_userinfo("no urls here"), "no urls here");
        assert_eq!(strip_url_userinfo("://@"), "://");
    }

    #[test]
    fn credential_query_parameters_lose_their_values_and_others_keep_them() {
        assert_eq!(
            strip_credentials(
                "GET https://charts.example/index.yaml?ref=main&access_token=abc123def&X-Amz-Signature=f00 failed"
            ),
            "GET https://charts.example/index.yaml?ref=main&access_token=[redacted]&X-Amz-Signature=[redacted] failed"
        );
        assert_eq!(
            strip_credentials("'https://h.example/x?private_token=zzz'"),
            "'https://h.example/x?private_token=[redacted]'"
        );
        assert_eq!(strip_credentials("a?b=c&d=e"), "a?b=c&d=e");
    }

    #[test]
    fn words_shaped_like_well_known_tokens_are_replaced() {
        let github = format!("ghp_{}", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJlLXZhbHVl";
        let text = format!(
            "auth failed for {github}, glpat-abcdefghij0123456789 and AKIAIOSFODNN7EXAMPLE; jwt {jwt}."
        );
        assert_eq!(
            strip_credentials(&text),
            "auth failed for [redacted], [redacted] and [redacted]; jwt [redacted]."
        );
        assert_eq!(
            strip_credentials("ghp_ is a prefix and ghp_short stays"),
            "ghp_ is a prefix and ghp_short stays"
        );
    }

    #[test]
    fn the_word_after_bearer_basic_or_token_is_replaced() {
        assert_eq!(
            strip_credentials("header Authorization: Bearer s3cr3tv4lue!! was refused"),
            "header Authorization: Bearer [redacted]!! was refused"
        );
        assert_eq!(
            strip_credentials("Basic dXNlcjpwYXNzd29yZA== rejected"),
            "Basic [redacted]== rejected"
        );
        assert_eq!(
            strip_credentials("token 0a1b2c3d4e5f6a7b8c9d is revoked"),
            "token [redacted] is revoked"
        );
        assert_eq!(
            strip_credentials("failed to get token credentials: the token expired"),
            "failed to get token credentials: the token expired",
            "words of prose after `token` stay"
        );
    }
}
