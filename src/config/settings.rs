//! The validated sections of `config.yaml`, as the rest of the exporter reads them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::{Credentials, Schedule, Template};
use crate::cluster::selector::LabelSelector;
use crate::flux::FluxKind;
use crate::model::ForgeKind;
use crate::model::RepoLocation;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (a file path or [`BUILT_IN`]).
    pub source: String,
    /// Cluster name used in contexts and metrics.
    pub cluster: String,
    /// Namespaces to read; empty means all namespaces.
    pub namespaces: Vec<String>,
    pub label_selector: LabelSelector,
    /// Kinds whose objects are reported as commit statuses.
    pub kinds: Vec<FluxKind>,
    pub schedule: Schedule,
    pub schedule_jitter: Duration,
    pub statuses: StatusSettings,
    pub forges: Vec<ForgeConfig>,
    pub ledger: LedgerConfig,
    pub http: HttpConfig,
    pub pushgateway: Option<PushgatewayConfig>,
    pub kube: KubeSettings,
    pub leader_election: LeaderElectionConfig,
    pub shutdown_grace_period: Duration,
}

impl Config {
    /// Which configured forge may receive a status for a repository.
    pub fn route(&self, location: &RepoLocation) -> Route<'_> {
        let mut host_matched = None;
        for forge in self.forges.iter().filter(|f| f.host == location.host) {
            if forge.repositories.allows(&location.repository) {
                return Route::Forge(forge);
            }
            host_matched.get_or_insert(forge);
        }
        match host_matched {
            Some(forge) => Route::NotAllowed(forge),
            None => Route::Unmatched,
        }
    }
}

/// Where a status for a repository may go.
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// The forge whose host and allowlist admit the repository.
    Forge(&'a ForgeConfig),
    /// Forges serve the host but none of their allowlists admits the repository.
    NotAllowed(&'a ForgeConfig),
    /// No forge serves the host.
    Unmatched,
}

/// How statuses are named and described.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub context: Template,
    pub description: Template,
    pub target_url: Option<Template>,
    /// Read the forge's latest status for a context before the first post when the ledger has
    /// no entry for it (after a restart with a lost ledger).
    pub read_back: bool,
}

/// One forge the exporter may post to.
#[derive(Debug, Clone)]
pub struct ForgeConfig {
    pub name: String,
    pub kind: ForgeKind,
    /// Lower-case host name the forge serves repositories on; credentials go only there.
    pub host: String,
    /// API base URL, without a trailing slash.
    pub api_url: String,
    pub credentials: Credentials,
    pub repositories: RepositoryAllowlist,
    pub rate_limit: RateLimit,
    pub request_timeout: Duration,
}

/// Glob patterns over repository paths (`acme/*`, `acme/**`); empty allows every repository
/// on the forge's host.
#[derive(Debug, Clone)]
pub struct RepositoryAllowlist {
    pub patterns: Vec<String>,
    set: GlobSet,
}

/// An allowlist pattern that is not a glob.
#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    /// Pattern `index` does not parse.
    #[error("`{pattern}`: {kind}")]
    Pattern {
        index: usize,
        pattern: String,
        kind: globset::ErrorKind,
    },
    /// The patterns parse but do not combine.
    #[error("{0}")]
    Set(globset::Error),
}

impl RepositoryAllowlist {
    /// Compiles the patterns: `/` is matched only by `/` in the path, letter case is ignored.
    pub fn new(patterns: Vec<String>) -> Result<Self, AllowlistError> {
        let mut builder = GlobSetBuilder::new();
        for (index, pattern) in patterns.iter().enumerate() {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .case_insensitive(true)
                .build()
                .map_err(|e| AllowlistError::Pattern {
                    index,
                    pattern: pattern.clone(),
                    kind: e.kind().clone(),
                })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(AllowlistError::Set)?;
        Ok(RepositoryAllowlist { patterns, set })
    }

    /// Whether the repository path may receive statuses with this forge's credential.
    pub fn allows(&self, repository: &str) -> bool {
        self.patterns.is_empty() || self.set.is_match(repository)
    }
}

/// Pacing for one forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub per_hour: u32,
    pub concurrency: u32,
}

/// Ledger storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerBackend {
    /// ConfigMap `name` (and, for a large ledger, shards `name-<generation>-<i>`) in
    /// `namespace` (default: the exporter's own).
    ConfigMap {
        name: String,
        namespace: Option<String>,
    },
    File(PathBuf),
    Memory,
}

/// The last-posted ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    pub backend: LedgerBackend,
    /// Entries for commits no longer observed are dropped after this long.
    pub prune_after: Duration,
}

/// The HTTP endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// `/readyz` fails once the last successful tick is older than this many schedule periods.
    pub ready_max_age_periods: u32,
}

/// Pushgateway for CronJob mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushgatewayConfig {
    pub url: String,
    pub job: String,
}

/// How `run` reads the cluster (`once` always lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KubeRead {
    /// Paged lists every tick.
    #[default]
    List,
    /// One list per collection, then watches into an in-memory store.
    Watch,
}

impl KubeRead {
    /// The configuration's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            KubeRead::List => "list",
            KubeRead::Watch => "watch",
        }
    }
}

/// How the cluster is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    /// `kube.read`.
    pub read: KubeRead,
    /// `kube.listFromCache`: lists are unchunked and served from the watch cache.
    pub list_from_cache: bool,
    pub page_size: u32,
    pub request_timeout: Duration,
    /// Upper bound on pages per list, so a continue token that never ends cannot loop forever.
    pub max_pages: u32,
}

/// Leader election for `replicas > 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    pub lease_name: String,
    pub namespace: Option<String>,
    pub lease_duration: Duration,
}
