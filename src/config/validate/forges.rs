//! `forges`: each forge's kind, name, host, API URL, allowlist and pacing.

use super::credentials;
use super::names::{PlainHttp, check_http_url, check_label_name, is_host_name};
use super::section::{Section, or_default};
use crate::config::forge_facts::{api_path_example, default_api_url, default_host};
use crate::config::settings::AllowlistError;
use crate::config::{
    ConfigError, ForgeConfig, RateLimit, RawForge, RawRateLimit, RepositoryAllowlist,
    default_rate_limit, defaults,
};
use crate::model::ForgeKind;

/// `forges`: every entry, with names unique.
pub(super) fn forges(
    top: &Section<'_>,
    raw: Vec<RawForge>,
) -> Result<Vec<ForgeConfig>, ConfigError> {
    let mut forges: Vec<ForgeConfig> = Vec::new();
    for (i, raw_forge) in raw.into_iter().enumerate() {
        let section = top.child(format!("forges[{i}]"));
        let forge = forge(&section, raw_forge)?;
        if let Some(other) = forges.iter().find(|f| f.name == forge.name) {
            return Err(section.invalid(
                "name",
                format!("`{}` is already used by another forge", other.name),
            ));
        }
        forges.push(forge);
    }
    Ok(forges)
}

/// One entry of `forges`.
fn forge(section: &Section<'_>, raw: RawForge) -> Result<ForgeConfig, ConfigError> {
    let kind_text = raw
        .kind
        .ok_or_else(|| section.invalid("type", "required"))?;
    let kind: ForgeKind = kind_text.parse().map_err(|e| section.invalid("type", e))?;
    let name = raw.name.unwrap_or_else(|| kind.as_str().to_string());
    check_label_name(&name).map_err(|e| section.invalid("name", e))?;
    let host = host(section, kind, raw.host)?;
    let api_url = api_url(section, kind, &host, raw.api_url)?;
    let raw_credentials = raw
        .credentials
        .ok_or_else(|| section.invalid("credentials", "required (token, basic or githubApp)"))?;
    let credentials =
        credentials::credentials(&section.child("credentials"), kind, raw_credentials)?;
    let repositories = repositories(section, raw.repositories.unwrap_or_default())?;
    let rate_limit = rate_limit(section, kind, raw.rate_limit.unwrap_or_default())?;
    let request_timeout = or_default(raw.request_timeout, defaults::FORGE_REQUEST_TIMEOUT);
    if request_timeout.is_zero() {
        return Err(section.invalid("requestTimeout", "must be more than 0s"));
    }
    Ok(ForgeConfig {
        name,
        kind,
        host,
        api_url,
        credentials,
        repositories,
        rate_limit,
        request_timeout,
    })
}

/// `forges[].host`: defaulted for public services.
fn host(
    section: &Section<'_>,
    kind: ForgeKind,
    raw: Option<String>,
) -> Result<String, ConfigError> {
    let host = match raw {
        Some(host) => host,
        None => default_host(kind)
            .map(str::to_string)
            .ok_or_else(|| section.invalid("host", format!("required for type {kind}")))?,
    };
    if !is_host_name(&host) {
        return Err(section.invalid(
            "host",
            format!("`{host}` must be a lower-case host name without scheme, port or path"),
        ));
    }
    Ok(host)
}

/// `forges[].apiUrl`: defaulted for public services; https unless to loopback, since it
/// receives the credential.
fn api_url(
    section: &Section<'_>,
    kind: ForgeKind,
    host: &str,
    raw: Option<String>,
) -> Result<String, ConfigError> {
    let api_url = match raw {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => default_api_url(kind, host)
            .map(str::to_string)
            .ok_or_else(|| {
                section.invalid(
                    "apiUrl",
                    format!(
                        "required for a {kind} forge on `{host}` (e.g. https://{host}{})",
                        api_path_example(kind)
                    ),
                )
            })?,
    };
    check_http_url(&api_url, PlainHttp::LoopbackOnly).map_err(|e| section.invalid("apiUrl", e))?;
    Ok(api_url)
}

/// `forges[].repositories`.
fn repositories(
    section: &Section<'_>,
    patterns: Vec<String>,
) -> Result<RepositoryAllowlist, ConfigError> {
    RepositoryAllowlist::new(patterns).map_err(|e| match &e {
        AllowlistError::Pattern { index, .. } => {
            section.invalid(format!("repositories[{index}]"), e)
        }
        AllowlistError::Set(_) => section.invalid("repositories", e),
    })
}

/// `forges[].rateLimit`: each field defaulted for the kind, none zero.
fn rate_limit(
    section: &Section<'_>,
    kind: ForgeKind,
    raw: RawRateLimit,
) -> Result<RateLimit, ConfigError> {
    let defaults = default_rate_limit(kind);
    let rate_limit = RateLimit {
        per_minute: raw.per_minute.unwrap_or(defaults.per_minute),
        per_hour: raw.per_hour.unwrap_or(defaults.per_hour),
        concurrency: raw.concurrency.unwrap_or(defaults.concurrency),
    };
    if rate_limit.per_minute == 0 || rate_limit.per_hour == 0 || rate_limit.concurrency == 0 {
        return Err(section.invalid(
            "rateLimit",
            "perMinute, perHour and concurrency must be at least 1",
        ));
    }
    Ok(rate_limit)
}
