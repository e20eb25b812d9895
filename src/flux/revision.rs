//! Flux artifact revisions and the git commits they name.
//!
//! Source-controller writes revisions as `<ref>@sha1:<hex>` (current), `sha1:<hex>` (a commit
//! with no ref), `<ref>/<hex>` (before Flux 2.0, including `HEAD/<hex>`), or a bare sha. OCI and
//! Bucket artifacts carry `<tag>@sha256:<hex>` / `sha256:<hex>` digests, and Helm charts a chart
//! version: none of those names a commit by itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A full 40-hex git commit id (SHA-1 object format).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitSha([u8; 20]);

impl CommitSha {
    /// Parses exactly 40 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<CommitSha> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(CommitSha(out))
    }

    /// The lower-case 40-hex form.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The first seven hex digits, as git and the forges' web pages abbreviate commits.
    pub fn short(&self) -> String {
        let mut hex = self.to_string();
        hex.truncate(7);
        hex
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // On the stack: commit ids are printed for every status, metric series and log line.
        let mut text = [0u8; 40];
        match hex::encode_to_slice(self.0, &mut text) {
            Ok(()) => f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitSha({self})")
    }
}

/// A string that is not a 40-hex commit id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a 40-hex commit sha")]
pub struct InvalidSha(pub String);

impl FromStr for CommitSha {
    type Err = InvalidSha;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CommitSha::from_hex(s).ok_or_else(|| InvalidSha(s.to_string()))
    }
}

impl Serialize for CommitSha {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CommitSha {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a revision string says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision<'a> {
    /// A git commit, with the ref it was fetched from when the revision names one.
    Commit {
        reference: Option<&'a str>,
        sha: CommitSha,
    },
    /// A content digest (OCI manifest, Bucket contents, or a git SHA-256 object id), which by
    /// itself names no commit.
    Digest {
        reference: Option<&'a str>,
        algorithm: &'a str,
    },
    /// Anything else, e.g. a Helm chart version.
    Other,
}

impl<'a> Revision<'a> {
    /// Classifies a revision string. Never fails: unknown forms are [`Revision::Other`].
    pub fn parse(revision: &'a str) -> Revision<'a> {
        let revision = revision.trim();
        // `<ref>@<algo>:<hex>`: refs may themselves contain `@` and `/`, the digest never does.
        if let Some((reference, digest)) = revision.rsplit_once('@')
            && let Some(parsed) = parse_digest(digest, non_empty(reference))
        {
            return parsed;
        }
        if let Some(parsed) = parse_digest(revision, None) {
            return parsed;
        }
        // Legacy `<ref>/<sha>`, e.g. `main/<sha>` or `HEAD/<sha>`.
        if let Some((reference, last)) = revision.rsplit_once('/')
            && let Some(sha) = CommitSha::from_hex(last)
        {
            return Revision::Commit {
                reference: non_empty(reference),
                sha,
            };
        }
        match CommitSha::from_hex(revision) {
            Some(sha) => Revision::Commit {
                reference: None,
                sha,
            },
            None => Revision::Other,
        }
    }

    /// The commit this revision names, if any.
    pub fn commit(&self) -> Option<CommitSha> {
        match self {
            Revision::Commit { sha, .. } => Some(*sha),
            _ => None,
        }
    }
}

/// `<algo>:<hex>` digests. `sha1` with 40 hex digits is a git commit; a well-formed digest of
/// any other algorithm is a content digest.
fn parse_digest<'a>(digest: &'a str, reference: Option<&'a str>) -> Option<Revision<'a>> {
    let (algorithm, hex) = digest.split_once(':')?;
    if algorithm == "sha1" {
        return CommitSha::from_hex(hex).map(|sha| Revision::Commit { reference, sha });
    }
    let well_formed = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'.' || b == b'_' || b == b'-')
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(Revision::Digest {
        reference,
        algorithm,
    })
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The commit a revision string names, if it names one.
pub fn commit_of(revision: &str) -> Option<CommitSha> {
    Revision::parse(revision).commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "5394cb7f48332b2de7c17dd8b8384bbc84b7e738";

    fn sha() -> CommitSha {
        CommitSha::from_hex(SHA).unwrap()
    }

    #[test]
    fn every_git_revision_form_names_its_commit() {
        let cases = [
            (format!("main@sha1:{SHA}"), Some("main")),
            (
                format!("refs/heads/feature/x@sha1:{SHA}"),
                Some("refs/heads/feature/x"),
            ),
            (
                format!("refs/tags/v1.0@beta@sha1:{SHA}"),
                Some("refs/tags/v1.0@beta"),
            ),
            (format!("sha1:{SHA}"), None),
            (format!("main/{SHA}"), Some("main")),
            (format!("HEAD/{SHA}"), Some("HEAD")),
            (
                format!("feature/deep/branch/{SHA}"),
                Some("feature/deep/branch"),
            ),
            (SHA.to_string(), None),
            (SHA.to_uppercase(), None),
        ];
        for (text, reference) in &cases {
            assert_eq!(
                Revision::parse(text),
                Revision::Commit {
                    reference: *reference,
                    sha: sha()
                },
                "revision {text}"
            );
        }
    }

    #[test]
    fn oci_and_bucket_digests_name_no_commit() {
        let digest = "a".repeat(64);
        for text in [
            format!("latest@sha256:{digest}"),
            format!("sha256:{digest}"),
            format!("v1.2.3@sha256:{digest}"),
        ] {
            assert!(
                matches!(
                    Revision::parse(&text),
                    Revision::Digest {
                        algorithm: "sha256",
                        ..
                    }
                ),
                "{text}"
            );
            assert_eq!(commit_of(&text), None);
        }
    }

    #[test]
    fn chart_versions_and_garbage_name_no_commit() {
        for text in [
            "6.7.1",
            "6.7.1+5394cb7f4833",
            "",
            "main@sha1:short",
            &format!("main@sha1:{SHA}0"),
            &format!("main@sha1:{}", &SHA[..39]),
            "sha1:",
            "@",
            "/",
            "main@sha1:zz94cb7f48332b2de7c17dd8b8384bbc84b7e738",
        ] {
            assert_eq!(commit_of(text), None, "{text:?}");
        }
    }

    #[test]
    fn shas_print_as_lower_case_hex_and_abbreviate_to_seven_digits() {
        let upper = CommitSha::from_hex(&SHA.to_uppercase()).unwrap();
        assert_eq!(upper.to_string(), SHA);
        assert_eq!(upper.short(), "5394cb7");
        assert_eq!(serde_json::to_string(&upper).unwrap(), format!("\"{SHA}\""));
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_string_never_panics(s in "\\PC*") {
            let _ = Revision::parse(&s);
        }

        #[test]
        fn any_ref_with_a_sha1_digest_round_trips(reference in "[a-zA-Z0-9/@._-]{1,40}", bytes in proptest::array::uniform20(0u8..)) {
            let sha = CommitSha(bytes);
            let text = format!("{reference}@sha1:{sha}");
            proptest::prop_assert_eq!(commit_of(&text), Some(sha));
        }
    }
}
