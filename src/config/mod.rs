//! `config.yaml`: raw serde structures, validated once into a typed [`Config`].
//!
//! Every error names the file, the field path and, where the YAML parser knows it, the line
//! and column. Unknown fields are rejected. Credentials are only *referenced* here (environment
//! variable, file or Kubernetes Secret); their values are read by the publishers and held in
//! [`crate::secret::SecretString`].

mod credentials;
pub mod defaults;
mod duration;
mod error;
mod forge_facts;
mod parse;
mod raw;
mod schedule;
mod settings;
mod template;
mod validate;

use std::path::Path;
use std::time::Duration;

pub use credentials::{Credentials, SecretRef};
pub use duration::{HumanDuration, InvalidDuration};
pub use error::ConfigError;
pub use forge_facts::default_rate_limit;
pub use raw::{
    RawBasic, RawConfig, RawCredentials, RawForge, RawGitHubApp, RawHttp, RawKube,
    RawKubernetesSecret, RawLeaderElection, RawLedger, RawPushgateway, RawRateLimit, RawSecretRef,
    RawStatuses,
};
pub use schedule::{MIN_INTERVAL, Schedule, ScheduleError};
pub use settings::{
    AllowlistError, ForgeConfig, HttpConfig, KubeSettings, LeaderElectionConfig, LedgerBackend,
    LedgerConfig, PushgatewayConfig, RateLimit, RepositoryAllowlist, StatusSettings,
};
pub use template::{
    CONTEXT_PLACEHOLDERS, DESCRIPTION_PLACEHOLDERS, Placeholder, TARGET_URL_PLACEHOLDERS, Template,
    TemplateError,
};

use crate::cluster::selector::LabelSelector;
use crate::flux::FluxKind;
use crate::flux::repo_url::RepoLocation;
use crate::forge::ForgeKind;

/// Default status context: unique per object and cluster.
pub const DEFAULT_CONTEXT: &str = defaults::CONTEXT;
/// Default status description.
pub const DEFAULT_DESCRIPTION: &str = defaults::DESCRIPTION;
/// Name used for the configuration when no file is given.
pub const BUILT_IN: &str = "built-in defaults";

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
    /// The configuration used when no file is given: no forges, everything else defaulted.
    pub fn built_in() -> Config {
        match validate::validate(RawConfig::default(), BUILT_IN) {
            Ok(config) => config,
            // The defaults are fixed and covered by a test; reaching this is a programming error.
            Err(err) => unreachable!("built-in defaults are invalid: {err}"),
        }
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::from_yaml(&text, &file)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw = parse::parse_raw(text, file)?;
        validate::validate(raw, file)
    }

    /// The forge kind serving `host`: the first configured forge for it, else the public
    /// service's kind for well-known hosts.
    pub fn forge_kind_for_host(&self, host: &str) -> Option<ForgeKind> {
        self.forges
            .iter()
            .find(|f| f.host == host)
            .map(|f| f.kind)
            .or_else(|| forge_facts::kind_for_public_host(host))
    }

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

    /// The configuration with every default filled in, as YAML (credentials appear only as
    /// references; no secret value is ever held here).
    pub fn to_yaml(&self) -> String {
        let raw = raw::resolved(self);
        serde_saphyr::to_string(&raw).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
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

#[cfg(test)]
mod tests;
