//! Keeping credentials out of every text the exporter shows: logs, errors, `/status`,
//! `publish -o json`.
//!
//! A credential is not only its raw value: forges echo the `Authorization` header, the base64
//! of `user:token` without its `Basic ` prefix, a URL-encoded copy, or a cut-off prefix. So a
//! [`Redactor`] knows each secret in every form it is sent in (raw, standard and URL-safe
//! base64 at each of the three byte alignments it can have inside a larger value, and
//! percent-encoded), and replaces **every run of text that contains 8 or more consecutive
//! characters of any form**. A secret shorter than that is replaced where it occurs whole.
//!
//! Each credential the process reads registers itself with the process-wide redactor
//! ([`register`]); the outputs pass their text through [`redact`]. Pure apart from that one
//! registry.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{OnceLock, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// A run this long of a secret's form is treated as the secret.
pub const WINDOW: usize = 8;

/// Hashes a window (8 bytes read as one `u64`) with one multiplication: every byte of every
/// text shown is looked up, and SipHash made redacting a 10 MB `/status` take 250 ms. The
/// set's keys come from our own secrets, so a text cannot flood it.
#[derive(Default)]
struct WindowHasher(u64);

impl Hasher for WindowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type WindowSet = HashSet<u64, BuildHasherDefault<WindowHasher>>;

/// The window at the start of `bytes` (at least [`WINDOW`] long) as one number.
fn window_key(bytes: &[u8]) -> u64 {
    let mut key = [0u8; WINDOW];
    key.copy_from_slice(&bytes[..WINDOW]);
    u64::from_le_bytes(key)
}

/// The secrets to keep out of texts, in all their forms. `Debug` shows only how many.
#[derive(Default, Clone)]
pub struct Redactor {
    /// Every 8-byte window of every form of every secret of at least 8 bytes.
    windows: WindowSet,
    /// Secrets shorter than a window, replaced where they occur whole.
    short: Vec<String>,
    /// The secrets added, so that adding one again costs a lookup.
    known: HashSet<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.known.len())
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor for `secrets`.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut redactor = Redactor::default();
        for secret in secrets {
            redactor.add(secret);
        }
        redactor
    }

    /// Whether no secret is known.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Adds `secret` (surrounding whitespace ignored) and its derived forms.
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.is_empty() || self.known.contains(secret) {
            return;
        }
        self.known.insert(secret.to_string());
        if secret.len() < WINDOW {
            self.short.push(secret.to_string());
            // Longest first, so that one short secret inside another is not half-replaced.
            self.short.sort_by_key(|s| std::cmp::Reverse(s.len()));
            return;
        }
        for form in forms(secret) {
            for window in form.as_bytes().windows(WINDOW) {
                self.windows.insert(window_key(window));
            }
        }
    }

    /// `text` with every run that holds a secret's form replaced by [`REDACTED`].
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let masked = self.mask(text.as_bytes());
        let mut out: Cow<'t, str> = if masked.is_empty() {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(replace_runs(text, &masked))
        };
        for short in &self.short {
            if out.contains(short.as_str()) {
                out = Cow::Owned(out.replace(short.as_str(), REDACTED));
            }
        }
        out
    }

    /// The byte ranges of `text` covered by a secret's window, merged.
    fn mask(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        if self.windows.is_empty() || text.len() < WINDOW {
            return runs;
        }
        for (start, window) in text.windows(WINDOW).enumerate() {
            if !self.windows.contains(&window_key(window)) {
                continue;
            }
            let end = start + WINDOW;
            match runs.last_mut() {
                Some(last) if start <= last.1 => last.1 = end,
                _ => runs.push((start, end)),
            }
        }
        runs
    }
}

/// The forms a secret can be sent or echoed in.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    // Inside `user:secret` (Basic auth) the secret starts at any offset modulo 3 of the
    // encoded bytes; each offset encodes it differently. The padding bytes' own characters
    // are dropped so that they match nothing.
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret.as_bytes());
        // Padded too: an echo of the whole value ends in `=`.
        for engine in [&STANDARD, &URL_SAFE] {
            let encoded = engine.encode(&bytes);
            let skip = (offset * 4).div_ceil(3);
            forms.push(encoded.get(skip..).unwrap_or_default().to_string());
        }
    }
    let encoded = crate::forge::text::percent_encode(secret);
    if encoded != secret {
        forms.push(encoded);
    }
    forms
}

/// `text` with each masked byte run replaced, widened to whole characters.
fn replace_runs(text: &str, runs: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in runs {
        let bytes = text.as_bytes();
        let mut start = start.max(at);
        let mut end = end.min(text.len());
        // A window of `Bearer <token>` also covers the space before the token: keep it.
        while start < end && bytes[start].is_ascii_whitespace() {
            start += 1;
        }
        while end > start && bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if start < at {
            start = at;
        }
        out.push_str(&text[at..start]);
        if !out.ends_with(REDACTED) {
            out.push_str(REDACTED);
        }
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn registry() -> &'static RwLock<Redactor> {
    static REGISTRY: OnceLock<RwLock<Redactor>> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(Redactor::default()))
}

/// Adds a credential the process holds to the process-wide redactor. Secrets shorter than
/// [`WINDOW`] are not registered: replacing a few common characters in every log line would
/// garble it; where such a secret is used, the request's own [`Redactor`] still removes it.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < WINDOW {
        return;
    }
    let known = registry()
        .read()
        .map(|r| r.known.contains(secret))
        .unwrap_or(false);
    if !known {
        let mut guard = registry().write().unwrap_or_else(|p| p.into_inner());
        guard.add(secret);
    }
}

/// `text` without any credential the process has registered.
pub fn redact(text: &str) -> Cow<'_, str> {
    let guard = registry().read().unwrap_or_else(|p| p.into_inner());
    if guard.is_empty() {
        return Cow::Borrowed(text);
    }
    match guard.redact(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(owned) => Cow::Owned(owned),
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

    use super::*;

    const TOKEN: &str = "ghp_R4nd0mT0kenValue1234567890abcdefXYZ9";

    fn redactor() -> Redactor {
        Redactor::new([TOKEN])
    }

    #[test]
    fn the_raw_secret_is_replaced_wherever_it_occurs() {
        let text = format!("Bad credentials for {TOKEN}; header was `Bearer {TOKEN}`");
        assert_eq!(
            redactor().redact(&text),
            "Bad credentials for [redacted]; header was `Bearer [redacted]`"
        );
    }

    #[test]
    fn a_prefix_of_eight_characters_or_more_is_the_secret() {
        let cut = &TOKEN[..8];
        assert_eq!(
            redactor().redact(&format!("token {cut}… is revoked")),
            "token [redacted]… is revoked"
        );
        let seven = &TOKEN[..7];
        assert_eq!(
            redactor().redact(&format!("token {seven}")),
            format!("token {seven}"),
            "seven characters say too little to be worth garbling text for"
        );
    }

    #[test]
    fn a_run_from_the_middle_of_the_secret_is_the_secret() {
        let middle = &TOKEN[10..30];
        assert_eq!(
            redactor().redact(&format!("saw {middle}.")),
            "saw [redacted]."
        );
    }

    #[test]
    fn the_base64_of_user_and_token_is_replaced_without_its_basic_prefix() {
        for user in ["", "x", "ab", "x-token-auth", "build-bot"] {
            let basic = STANDARD_NO_PAD.encode(format!("{user}:{TOKEN}"));
            let text = format!("invalid credentials {basic}");
            let out = redactor().redact(&text).into_owned();
            assert!(
                !out.contains(&basic[basic.len() - 20..]),
                "{user}: {out} still holds the base64"
            );
            assert!(out.contains(REDACTED), "{user}: {out}");
        }
    }

    #[test]
    fn url_encoded_and_url_safe_base64_forms_are_replaced() {
        let secret = "p@ss/word+with=odd&chars";
        let r = Redactor::new([secret]);
        let encoded = crate::forge::text::percent_encode(secret);
        assert_eq!(
            r.redact(&format!("?password={encoded}")),
            "?password=[redacted]"
        );
        let url_safe = URL_SAFE_NO_PAD.encode(secret);
        assert_eq!(r.redact(&url_safe), REDACTED);
    }

    #[test]
    fn a_short_secret_is_replaced_only_whole() {
        let r = Redactor::new(["tok"]);
        assert_eq!(r.redact("bad tok, tok"), "bad [redacted], [redacted]");
        assert_eq!(r.redact("nothing"), "nothing");
    }

    #[test]
    fn text_around_a_secret_keeps_its_characters_whole() {
        let r = Redactor::new(["sécrèt-valeur-ünïcode"]);
        assert_eq!(r.redact("é sécrèt-valeur-ünïcode ü"), "é [redacted] ü");
        assert_eq!(r.redact("valeur-ünï"), REDACTED);
    }

    #[test]
    fn a_redactor_never_prints_what_it_knows() {
        assert_eq!(format!("{:?}", redactor()), "Redactor { secrets: 1, .. }");
    }

    #[test]
    fn text_without_a_secret_is_not_copied() {
        assert!(matches!(redactor().redact("all good"), Cow::Borrowed(_)));
    }

    #[test]
    fn registered_secrets_are_redacted_process_wide_and_short_ones_are_not_registered() {
        register("registered-secret-value-0123456789");
        register("short");
        assert_eq!(
            redact("echo registered-secret-value-0123456789 and short"),
            "echo [redacted] and short"
        );
    }
}
