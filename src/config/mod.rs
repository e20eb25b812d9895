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
    AllowlistError, Config, ForgeConfig, HttpConfig, KubeRead, KubeSettings, LeaderElectionConfig,
    LedgerBackend, LedgerConfig, PushgatewayConfig, RateLimit, RepositoryAllowlist, Route,
    StatusSettings,
};
pub use template::{
    CONTEXT_PLACEHOLDERS, DESCRIPTION_PLACEHOLDERS, Placeholder, TARGET_URL_PLACEHOLDERS, Template,
    TemplateError,
};

use crate::model::ForgeKind;

/// Default status context: unique per object and cluster.
pub const DEFAULT_CONTEXT: &str = defaults::CONTEXT;
/// Default status description.
pub const DEFAULT_DESCRIPTION: &str = defaults::DESCRIPTION;
/// Name used for the configuration when no file is given.
pub const BUILT_IN: &str = "built-in defaults";

impl Config {
    /// The configuration used when no file is given: no forges, everything else defaulted.
    pub fn built_in() -> Result<Config, ConfigError> {
        validate::validate(RawConfig::default(), BUILT_IN)
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text =
            crate::files::read_regular_to_string(path).map_err(|source| ConfigError::Read {
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

    /// The configuration with every default filled in, as YAML (credentials appear only as
    /// references; no secret value is ever held here).
    pub fn to_yaml(&self) -> String {
        let raw = raw::resolved(self);
        serde_saphyr::to_string(&raw).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
