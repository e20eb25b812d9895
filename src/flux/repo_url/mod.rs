//! Git clone URLs → (forge host, repository path).
//!
//! Handles `https://` / `http://` (with ports and `user@`), `ssh://`, scp-like `git@host:path`,
//! GitLab nested groups, every Azure DevOps form, and Bitbucket Server `/scm/` paths. The host
//! decides which configured forge (and so which credential) may receive a status, so the host is
//! taken from the URL authority exactly as git would, never from the path.

use crate::model::{ForgeKind, RepoLocation};

/// How a clone URL reaches the forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    Http,
    Ssh,
}

/// A parsed clone URL: host and decoded path segments (`.git` removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl {
    /// Lower-case host name without user or port (IPv6 literals keep their brackets).
    pub host: String,
    pub port: Option<u16>,
    pub transport: Transport,
    /// Decoded, non-empty path segments.
    pub segments: Vec<String>,
}

/// Why a clone URL names no repository on a forge. Messages show the URL without its user
/// information, which may hold a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoUrlError {
    #[error("the repository URL is empty")]
    Empty,
    #[error("`{url}`: scheme `{scheme}` is not a git transport (expected https, http or ssh)")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("`{url}`: not a URL (expected scheme://host/path or user@host:path)")]
    NotAUrl { url: String },
    #[error(
        "`{url}`: the user information before `@` contains {character:?}, which git URLs cannot carry there (it makes the host ambiguous); percent-encode it or remove the user information"
    )]
    InvalidUserinfo { url: String, character: char },
    #[error("`{url}`: invalid host `{host}`")]
    InvalidHost { url: String, host: String },
    #[error("`{url}`: invalid port `{port}`")]
    InvalidPort { url: String, port: String },
    #[error("`{url}`: invalid path segment `{segment}`")]
    InvalidPath { url: String, segment: String },
    #[error("`{url}`: the path does not name a {forge} repository ({expected})")]
    NotARepository {
        url: String,
        forge: &'static str,
        expected: &'static str,
    },
}

/// `url` with any `user[:password]@` removed from its authority, safe to log.
pub fn redact_userinfo(url: &str) -> String {
    let trimmed = url.trim();
    if let Some((scheme, rest)) = trimmed.split_once("://") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://{host}{tail}");
        }
        return trimmed.to_string();
    }
    // scp-like: drop the user part before the host.
    match trimmed.split_once(':') {
        Some((user_host, path)) if !user_host.contains('/') => match user_host.rsplit_once('@') {
            Some((_, host)) => format!("{host}:{path}"),
            None => trimmed.to_string(),
        },
        _ => trimmed.to_string(),
    }
}

impl RepoUrl {
    /// Parses a clone URL. Azure DevOps' alternative hosts (`*.visualstudio.com`,
    /// `ssh.dev.azure.com`) are normalised to `dev.azure.com` with `org/project/_git/repo`
    /// segments, since they are the same service.
    pub fn parse(url: &str) -> Result<RepoUrl, RepoUrlError> {
        let text = url.trim();
        if text.is_empty() {
            return Err(RepoUrlError::Empty);
        }
        let shown = || redact_userinfo(text);
        let (transport, authority, path) = if let Some((scheme, rest)) = text.split_once("://") {
            let transport = match scheme.to_ascii_lowercase().as_str() {
                "https" => Transport::Https,
                "http" => Transport::Http,
                "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
                _ => {
                    return Err(RepoUrlError::UnsupportedScheme {
                        url: shown(),
                        scheme: scheme.to_string(),
                    });
                }
            };
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, after) = rest.split_at(end);
            let path_end = after.find(['?', '#']).unwrap_or(after.len());
            (transport, authority, &after[..path_end])
        } else {
            // scp-like `[user@]host:path`: the part before the first `:` has no `/`.
            match text.split_once(':') {
                Some((user_host, path)) if !user_host.contains('/') && !user_host.is_empty() => {
                    (Transport::Ssh, user_host, path)
                }
                _ => return Err(RepoUrlError::NotAUrl { url: shown() }),
            }
        };

        let host_port = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => {
                // RFC 3986 userinfo characters only, as Go's net/url (used by Flux) requires:
                // anything else makes the host ambiguous between parsers.
                let invalid = userinfo
                    .chars()
                    .find(|&c| !(c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:".contains(c)));
                if let Some(character) = invalid {
                    return Err(RepoUrlError::InvalidUserinfo {
                        url: shown(),
                        character,
                    });
                }
                host_port
            }
            None => authority,
        };
        let (host, port) = split_host_port(host_port, text, transport)?;
        let mut segments = Vec::new();
        for raw in path.split('/').filter(|s| !s.is_empty()) {
            let decoded = percent_decode(raw).ok_or_else(|| RepoUrlError::InvalidPath {
                url: shown(),
                segment: raw.to_string(),
            })?;
            if decoded == "."
                || decoded == ".."
                || decoded.contains(['/', '\\'])
                || decoded.chars().any(char::is_control)
            {
                return Err(RepoUrlError::InvalidPath {
                    url: shown(),
                    segment: raw.to_string(),
                });
            }
            segments.push(decoded);
        }
        if let Some(last) = segments.last_mut()
            && let Some(stem) = last.strip_suffix(".git")
            && !stem.is_empty()
        {
            last.truncate(stem.len());
        }
        let mut parsed = RepoUrl {
            host,
            port,
            transport,
            segments,
        };
        parsed.normalise_azure();
        Ok(parsed)
    }

    fn normalise_azure(&mut self) {
        let host = self.host.as_str();
        if host == "ssh.dev.azure.com" || host == "vs-ssh.visualstudio.com" {
            // v3/{org}/{project}/{repo}
            if self.segments.len() == 4 && self.segments[0] == "v3" {
                let repo = self.segments.pop().unwrap_or_default();
                self.segments.remove(0);
                self.segments.push("_git".to_string());
                self.segments.push(repo);
                self.host = "dev.azure.com".to_string();
                self.port = None;
            }
        } else if let Some(org) = host.strip_suffix(".visualstudio.com")
            && !org.is_empty()
            && !org.contains('.')
            && self.segments.iter().any(|s| s == "_git")
        {
            let mut rest: Vec<String> = std::mem::take(&mut self.segments);
            if rest
                .first()
                .is_some_and(|s| s.eq_ignore_ascii_case("DefaultCollection"))
            {
                rest.remove(0);
            }
            self.segments = std::iter::once(org.to_string()).chain(rest).collect();
            self.host = "dev.azure.com".to_string();
            self.port = None;
        }
    }

    /// Names the repository as the given forge kind's API does. With no kind (no forge
    /// configured for the host), well-known public hosts decide, then the path's shape.
    pub fn locate(&self, kind: Option<ForgeKind>) -> Result<RepoLocation, RepoUrlError> {
        let kind = kind.or_else(|| ForgeKind::for_public_host(&self.host));
        let segs = &self.segments;
        let repository = match kind {
            Some(ForgeKind::GitHub) | Some(ForgeKind::BitbucketCloud) => {
                if segs.len() != 2 {
                    return Err(self.not_a_repo(kind, "owner/repository"));
                }
                segs.join("/")
            }
            // Gitea may be served under a sub-path; the repository is the last two segments.
            Some(ForgeKind::Gitea) => {
                if segs.len() < 2 {
                    return Err(self.not_a_repo(kind, "owner/repository"));
                }
                segs[segs.len() - 2..].join("/")
            }
            Some(ForgeKind::GitLab) => {
                if segs.len() < 2 {
                    return Err(self.not_a_repo(kind, "group[/subgroup...]/project"));
                }
                segs.join("/")
            }
            Some(ForgeKind::AzureDevOps) => azure_repository(segs)
                .ok_or_else(|| self.not_a_repo(kind, "org/project/_git/repository"))?,
            Some(ForgeKind::BitbucketServer) => {
                bitbucket_server_repository(segs, self.transport)
                    .ok_or_else(|| self.not_a_repo(kind, "/scm/PROJECT/slug or PROJECT/slug"))?
            }
            None => azure_repository(segs)
                .or_else(|| {
                    (self.transport != Transport::Ssh)
                        .then(|| scm_repository(segs))
                        .flatten()
                })
                .or_else(|| (segs.len() >= 2).then(|| segs.join("/")))
                .ok_or_else(|| self.not_a_repo(None, "at least owner/repository"))?,
        };
        Ok(RepoLocation {
            host: self.host.clone(),
            repository,
        })
    }

    fn not_a_repo(&self, kind: Option<ForgeKind>, expected: &'static str) -> RepoUrlError {
        RepoUrlError::NotARepository {
            url: format!("{}/{}", self.host, self.segments.join("/")),
            forge: kind.map_or("git", ForgeKind::as_str),
            expected,
        }
    }
}

/// `[prefix...]/project/_git/repo` → `prefix.../project/repo`; `org/_git/repo` (project named
/// like the repository) → `org/repo/repo`.
fn azure_repository(segs: &[String]) -> Option<String> {
    let git = segs.iter().position(|s| s == "_git")?;
    if git + 2 != segs.len() || git == 0 {
        return None;
    }
    let repo = &segs[git + 1];
    let mut parts: Vec<&str> = segs[..git].iter().map(String::as_str).collect();
    if parts.len() == 1 {
        parts.push(repo);
    }
    parts.push(repo);
    Some(parts.join("/"))
}

fn scm_repository(segs: &[String]) -> Option<String> {
    let scm = segs.iter().rposition(|s| s == "scm")?;
    (scm + 3 == segs.len()).then(|| segs[scm + 1..].join("/"))
}

fn bitbucket_server_repository(segs: &[String], transport: Transport) -> Option<String> {
    match transport {
        Transport::Ssh => (segs.len() == 2).then(|| segs.join("/")),
        _ => scm_repository(segs),
    }
}

fn split_host_port(
    host_port: &str,
    url: &str,
    transport: Transport,
) -> Result<(String, Option<u16>), RepoUrlError> {
    let invalid_host = || RepoUrlError::InvalidHost {
        url: redact_userinfo(url),
        host: host_port.to_string(),
    };
    let (host, port_text) = if let Some(rest) = host_port.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or_else(invalid_host)?;
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(invalid_host());
        }
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(invalid_host()),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        match host_port.split_once(':') {
            // scp-like URLs have no port; the colon was consumed as the path separator.
            Some((h, p)) if transport != Transport::Ssh || url.contains("://") => {
                (h.to_string(), Some(p))
            }
            Some(_) => return Err(invalid_host()),
            None => (host_port.to_string(), None),
        }
    };
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').map(str::to_string).unwrap_or(host);
    let valid = !host.is_empty()
        && (host.starts_with('[')
            || (host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && !host.starts_with(['.', '-'])
                && !host.contains("..")));
    if !valid {
        return Err(invalid_host());
    }
    let port = match port_text {
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            RepoUrlError::InvalidPort {
                url: redact_userinfo(url),
                port: p.to_string(),
            }
        })?),
    };
    Ok((host, port))
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_string());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16))?;
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16))?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
