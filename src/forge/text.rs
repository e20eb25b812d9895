//! Fitting status text to each forge's limits, and building URL paths. Pure functions.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The character that marks a shortened description.
pub const ELLIPSIS: char = '…';

/// `text` cut to at most `max` characters (Unicode scalar values, as the forges count),
/// ending in an ellipsis when it was cut. Never splits a character.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    // A cut that leaves trailing spaces before the ellipsis reads badly.
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push(ELLIPSIS);
    out
}

/// Lower-case SHA-1 hex of `text` (40 characters), as Flux keys Bitbucket statuses.
pub fn sha1_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes());
    hex::encode(digest.as_ref())
}

/// A status context (name) that fits `max` characters while staying unique: contexts that fit
/// are kept; longer ones keep a readable head and end in `~` and 10 hex digits of their SHA-1,
/// so two long contexts with the same head still post as different statuses.
pub fn fit_context(context: &str, max: usize) -> String {
    const SUFFIX: usize = 11;
    if context.chars().count() <= max {
        return context.to_string();
    }
    let hash = sha1_hex(context);
    if max <= SUFFIX {
        return hash.chars().take(max).collect();
    }
    let head: String = context.chars().take(max - SUFFIX).collect();
    format!("{head}~{}", &hash[..10])
}

/// A Bitbucket build key: the context when it fits `max`, else its SHA-1 hex.
pub fn bitbucket_key(context: &str, max: usize) -> String {
    if context.chars().count() <= max {
        context.to_string()
    } else {
        sha1_hex(context)
    }
}

/// Every byte but RFC 3986's unreserved characters (letters, digits, `-`, `.`, `_`, `~`).
pub const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything but RFC 3986 unreserved characters, for a URL path segment or
/// a query value.
pub fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, NOT_UNRESERVED).to_string()
}

/// Percent-encodes one URL path segment: a `/` inside a name (a GitLab full path) is encoded
/// and can never change the path's shape.
pub fn encode_segment(segment: &str) -> String {
    percent_encode(segment)
}

/// Percent-encodes a query-string value (the same unreserved set as [`encode_segment`]).
pub fn encode_query_value(value: &str) -> String {
    percent_encode(value)
}

/// The error and its causes in one line (hyper's own message alone is just "client error").
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_and_never_splits_one() {
        assert_eq!(truncate_chars("short", 10), "short");
        assert_eq!(truncate_chars("exactly 10", 10), "exactly 10");
        assert_eq!(truncate_chars("déjà vu déjà", 8), "déjà vu…");
        let emoji = "🚀".repeat(200);
        let cut = truncate_chars(&emoji, 140);
        assert_eq!(cut.chars().count(), 140);
        assert!(cut.ends_with(ELLIPSIS));
        assert_eq!(cut.chars().filter(|c| *c == '🚀').count(), 139);
        assert_eq!(truncate_chars("abc", 0), "");
    }

    #[test]
    fn truncation_drops_spaces_before_the_ellipsis() {
        assert_eq!(truncate_chars("word     more", 8), "word…");
    }

    #[test]
    fn sha1_matches_the_known_digest() {
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn long_contexts_keep_a_head_and_a_hash() {
        let long = format!("flux/prod/Kustomization/{}/apps", "x".repeat(300));
        let fitted = fit_context(&long, 255);
        assert_eq!(fitted.chars().count(), 255);
        assert!(fitted.starts_with("flux/prod/Kustomization/xxx"));
        assert_eq!(&fitted[244..], &format!("~{}", &sha1_hex(&long)[..10]));
        assert_eq!(fit_context("flux/a", 255), "flux/a");
        let other = format!("flux/prod/Kustomization/{}/appz", "x".repeat(300));
        assert_ne!(fit_context(&other, 255), fitted);
    }

    #[test]
    fn bitbucket_keys_are_the_context_or_its_sha1() {
        assert_eq!(
            bitbucket_key("flux/c/Kustomization/ns/a", 40),
            "flux/c/Kustomization/ns/a"
        );
        let long = "flux/production/Kustomization/flux-system/apps";
        assert_eq!(bitbucket_key(long, 40), sha1_hex(long));
        assert_eq!(bitbucket_key(long, 40).len(), 40);
    }

    #[test]
    fn segments_are_encoded_so_slashes_cannot_add_path_levels() {
        assert_eq!(encode_segment("group/sub/project"), "group%2Fsub%2Fproject");
        assert_eq!(encode_segment("My Project"), "My%20Project");
        assert_eq!(encode_segment("app-1.2_x~"), "app-1.2_x~");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(encode_segment(".."), "..");
    }
}
