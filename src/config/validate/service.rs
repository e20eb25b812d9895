//! The sections about how the exporter itself runs: `ledger`, `http`, `pushgateway`, `kube`
//! and `leaderElection`.

use std::net::SocketAddr;

use super::names::{PlainHttp, check_http_url, is_dns_label, is_dns_subdomain};
use super::section::{Section, or_default};
use crate::config::{
    ConfigError, HttpConfig, HumanDuration, KubeRead, KubeSettings, LeaderElectionConfig,
    LedgerBackend, LedgerConfig, PushgatewayConfig, RawHttp, RawKube, RawLeaderElection, RawLedger,
    RawPushgateway, defaults,
};

/// `ledger`.
pub(super) fn ledger(section: &Section<'_>, raw: RawLedger) -> Result<LedgerConfig, ConfigError> {
    let prune_after = or_default(raw.prune_after, defaults::LEDGER_PRUNE_AFTER);
    let backend = ledger_backend(section, raw)?;
    if prune_after < defaults::LEDGER_MIN_PRUNE_AFTER {
        return Err(section.invalid(
            "pruneAfter",
            format!(
                "must be at least {}, or statuses would be re-posted for commits still in use",
                HumanDuration(defaults::LEDGER_MIN_PRUNE_AFTER)
            ),
        ));
    }
    Ok(LedgerConfig {
        backend,
        prune_after,
    })
}

/// `ledger.backend` and the fields of the chosen backend.
fn ledger_backend(section: &Section<'_>, raw: RawLedger) -> Result<LedgerBackend, ConfigError> {
    match raw.backend.as_deref().unwrap_or(defaults::LEDGER_BACKEND) {
        "configmap" => {
            let name = raw
                .config_map_name
                .unwrap_or_else(|| defaults::LEDGER_CONFIG_MAP_NAME.to_string());
            if !is_dns_subdomain(&name) || name.len() > defaults::LEDGER_CONFIG_MAP_NAME_MAX_LEN {
                return Err(section.invalid(
                    "configMapName",
                    format!(
                        "`{name}` is not a valid ConfigMap name (at most {} characters, leaving room for shard suffixes)",
                        defaults::LEDGER_CONFIG_MAP_NAME_MAX_LEN
                    ),
                ));
            }
            let namespace = raw.namespace.filter(|n| !n.is_empty());
            if let Some(ns) = &namespace
                && !is_dns_label(ns)
            {
                return Err(
                    section.invalid("namespace", format!("`{ns}` is not a valid namespace name"))
                );
            }
            Ok(LedgerBackend::ConfigMap { name, namespace })
        }
        "file" => match raw.path {
            Some(path) if !path.as_os_str().is_empty() => Ok(LedgerBackend::File(path)),
            _ => Err(section.invalid("path", "required when backend is `file`")),
        },
        "memory" => Ok(LedgerBackend::Memory),
        other => Err(section.invalid(
            "backend",
            format!("unknown backend `{other}` (expected configmap, file or memory)"),
        )),
    }
}

/// `http`.
pub(super) fn http(section: &Section<'_>, raw: RawHttp) -> Result<HttpConfig, ConfigError> {
    let listen_text = raw
        .listen
        .unwrap_or_else(|| defaults::HTTP_LISTEN.to_string());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        section.invalid(
            "listen",
            format!("`{listen_text}` is not an address:port (e.g. 0.0.0.0:8080)"),
        )
    })?;
    let ready_max_age_periods = raw
        .ready_max_age_periods
        .unwrap_or(defaults::READY_MAX_AGE_PERIODS);
    if ready_max_age_periods == 0 {
        return Err(section.invalid("readyMaxAgePeriods", "must be at least 1"));
    }
    Ok(HttpConfig {
        listen,
        ready_max_age_periods,
    })
}

/// `pushgateway`, when given.
pub(super) fn pushgateway(
    section: &Section<'_>,
    raw: RawPushgateway,
) -> Result<PushgatewayConfig, ConfigError> {
    let url = raw
        .url
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    // Metrics only, never a credential, and an in-cluster Pushgateway rarely has TLS.
    check_http_url(&url, PlainHttp::Anywhere).map_err(|e| section.invalid("url", e))?;
    let job = raw
        .job
        .unwrap_or_else(|| defaults::PUSHGATEWAY_JOB.to_string());
    if job.is_empty() || job.contains('/') {
        return Err(section.invalid(
            "job",
            format!("`{job}` must be non-empty and contain no `/`"),
        ));
    }
    Ok(PushgatewayConfig { url, job })
}

/// `kube`.
pub(super) fn kube(section: &Section<'_>, raw: RawKube) -> Result<KubeSettings, ConfigError> {
    let page_size = raw.page_size.unwrap_or(defaults::KUBE_PAGE_SIZE);
    if page_size == 0 || page_size > defaults::KUBE_MAX_PAGE_SIZE {
        return Err(section.invalid(
            "pageSize",
            format!("{page_size} is outside 1-{}", defaults::KUBE_MAX_PAGE_SIZE),
        ));
    }
    let max_pages = raw.max_pages.unwrap_or(defaults::KUBE_MAX_PAGES);
    if max_pages == 0 {
        return Err(section.invalid("maxPages", "must be at least 1"));
    }
    let read = match raw.read.as_deref() {
        None | Some("list") => KubeRead::List,
        Some("watch") => KubeRead::Watch,
        Some(other) => {
            return Err(section.invalid(
                "read",
                format!("unknown mode `{other}` (expected list or watch)"),
            ));
        }
    };
    Ok(KubeSettings {
        read,
        list_from_cache: raw.list_from_cache.unwrap_or(false),
        page_size,
        request_timeout: or_default(raw.request_timeout, defaults::KUBE_REQUEST_TIMEOUT),
        max_pages,
    })
}

/// `leaderElection`.
pub(super) fn leader_election(
    section: &Section<'_>,
    raw: RawLeaderElection,
) -> Result<LeaderElectionConfig, ConfigError> {
    let lease_name = raw
        .lease_name
        .unwrap_or_else(|| defaults::LEASE_NAME.to_string());
    if !is_dns_subdomain(&lease_name) {
        return Err(section.invalid(
            "leaseName",
            format!("`{lease_name}` is not a valid Lease name"),
        ));
    }
    let lease_duration = or_default(raw.lease_duration, defaults::LEASE_DURATION);
    if lease_duration < defaults::MIN_LEASE_DURATION {
        return Err(section.invalid(
            "leaseDuration",
            format!(
                "must be at least {}",
                HumanDuration(defaults::MIN_LEASE_DURATION)
            ),
        ));
    }
    Ok(LeaderElectionConfig {
        enabled: raw.enabled.unwrap_or(defaults::LEADER_ELECTION_ENABLED),
        lease_name,
        namespace: raw.namespace.filter(|n| !n.is_empty()),
        lease_duration,
    })
}
