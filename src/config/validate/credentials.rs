//! `forges[].credentials`: exactly one of token, basic or githubApp, each secret value given
//! by exactly one reference.

use super::names::{is_dns_label, is_dns_subdomain};
use super::section::Section;
use crate::config::forge_facts::{accepts_basic, accepts_github_app};
use crate::config::{
    ConfigError, Credentials, RawBasic, RawCredentials, RawGitHubApp, RawKubernetesSecret,
    RawSecretRef, SecretRef,
};
use crate::model::ForgeKind;

/// `forges[].credentials` of a forge of `kind`.
pub(super) fn credentials(
    section: &Section<'_>,
    kind: ForgeKind,
    raw: RawCredentials,
) -> Result<Credentials, ConfigError> {
    let exactly_one = || section.invalid_here("give exactly one of token, basic, githubApp");
    match (raw.token, raw.basic, raw.github_app) {
        (Some(token), None, None) => Ok(Credentials::Token(secret_ref(
            &section.child("token"),
            Some(token),
        )?)),
        (None, Some(b), None) => basic(&section.child("basic"), kind, b),
        (None, None, Some(app)) => github_app(&section.child("githubApp"), kind, app),
        _ => Err(exactly_one()),
    }
}

/// `credentials.basic`.
fn basic(
    section: &Section<'_>,
    kind: ForgeKind,
    raw: RawBasic,
) -> Result<Credentials, ConfigError> {
    if !accepts_basic(kind) {
        return Err(section.invalid_here(format!("not supported for type {kind} (use token)")));
    }
    let username = raw.username.unwrap_or_default();
    if username.is_empty() {
        return Err(section.invalid("username", "required"));
    }
    Ok(Credentials::Basic {
        username,
        password: secret_ref(&section.child("password"), raw.password)?,
    })
}

/// `credentials.githubApp`.
fn github_app(
    section: &Section<'_>,
    kind: ForgeKind,
    raw: RawGitHubApp,
) -> Result<Credentials, ConfigError> {
    if !accepts_github_app(kind) {
        return Err(section.invalid_here(format!("only for type github, not {kind}")));
    }
    let app_id = raw
        .app_id
        .filter(|id| *id > 0)
        .ok_or_else(|| section.invalid("appId", "required"))?;
    Ok(Credentials::GitHubApp {
        app_id,
        installation_id: raw.installation_id,
        private_key: secret_ref(&section.child("privateKey"), raw.private_key)?,
    })
}

/// A secret reference: exactly one of `env`, `file`, `secret`.
fn secret_ref(section: &Section<'_>, raw: Option<RawSecretRef>) -> Result<SecretRef, ConfigError> {
    let raw = raw.ok_or_else(|| section.invalid_here("required (one of env, file, secret)"))?;
    let mut found = Vec::new();
    if let Some(name) = raw.env {
        if name.is_empty() || name.contains('=') {
            return Err(section.invalid(
                "env",
                format!("`{name}` is not an environment variable name"),
            ));
        }
        found.push(SecretRef::Env(name));
    }
    if let Some(path) = raw.file {
        if path.as_os_str().is_empty() {
            return Err(section.invalid("file", "must not be empty"));
        }
        found.push(SecretRef::File(path));
    }
    if let Some(secret) = raw.secret {
        found.push(kubernetes_secret(&section.child("secret"), secret)?);
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(section.invalid_here("needs one of env, file, secret")),
        _ => Err(section.invalid_here("give only one of env, file, secret")),
    }
}

/// `secret: {name, key, namespace}`.
fn kubernetes_secret(
    section: &Section<'_>,
    raw: RawKubernetesSecret,
) -> Result<SecretRef, ConfigError> {
    if !is_dns_subdomain(&raw.name) {
        return Err(section.invalid("name", format!("`{}` is not a valid Secret name", raw.name)));
    }
    let valid_key = !raw.key.is_empty()
        && raw.key.len() <= 253
        && raw
            .key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !valid_key {
        return Err(section.invalid("key", format!("`{}` is not a valid Secret key", raw.key)));
    }
    let namespace = raw.namespace.filter(|n| !n.is_empty());
    if let Some(ns) = namespace.as_deref().filter(|n| !is_dns_label(n)) {
        return Err(section.invalid("namespace", format!("`{ns}` is not a valid namespace name")));
    }
    Ok(SecretRef::KubernetesSecret {
        namespace,
        name: raw.name,
        key: raw.key,
    })
}
