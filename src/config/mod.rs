//! `config.yaml`: raw serde structures, validated once into a typed [`Config`].
//!
//! Every error names the file, the field path and, where the YAML parser knows it, the line
//! and column. Unknown fields are rejected. Credentials are only *referenced* here (environment
//! variable, file or Kubernetes Secret); their values are read by the publishers and held in
//! [`crate::secret::SecretString`].

mod duration;
mod raw;
mod schedule;
mod template;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

pub use duration::{HumanDuration, InvalidDuration};
pub use raw::{
    RawConfig, RawCredentials, RawForge, RawGitHubApp, RawHttp, RawKube, RawLeaderElection,
    RawLedger, RawPushgateway, RawRateLimit, RawSecretRef, RawStatuses,
};
pub use schedule::{MIN_INTERVAL, Schedule, ScheduleError};
pub use template::{
    CONTEXT_PLACEHOLDERS, DESCRIPTION_PLACEHOLDERS, Placeholder, TARGET_URL_PLACEHOLDERS, Template,
    TemplateError,
};

use crate::cluster::selector::LabelSelector;
use crate::flux::FluxKind;
use crate::model::ForgeKind;
use crate::model::RepoLocation;

/// Default status context: unique per object and cluster.
pub const DEFAULT_CONTEXT: &str = "flux/{cluster}/{kind}/{namespace}/{name}";
/// Default status description.
pub const DEFAULT_DESCRIPTION: &str = "{summary}";
/// Name used for the configuration when no file is given.
pub const BUILT_IN: &str = "built-in defaults";

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{location} {field}: {message}")]
    Parse {
        file: String,
        location: String,
        field: String,
        message: String,
    },
    #[error("{file}: {field}: {problem}")]
    Invalid {
        file: String,
        field: String,
        problem: String,
    },
}

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

/// Credentials for a forge, by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A bearer-style token (PAT, project/repository access token, HTTP access token).
    Token(SecretRef),
    /// HTTP Basic (Bitbucket app passwords).
    Basic {
        username: String,
        password: SecretRef,
    },
    /// A GitHub App installation.
    GitHubApp {
        app_id: u64,
        installation_id: Option<u64>,
        private_key: SecretRef,
    },
}

/// Where a secret value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    /// A file, re-read when it changes (mounted Kubernetes Secrets are rotated in place).
    File(PathBuf),
    /// A key of a Kubernetes Secret; `namespace` defaults to the exporter's own.
    KubernetesSecret {
        namespace: Option<String>,
        name: String,
        key: String,
    },
}

/// Glob patterns over repository paths (`acme/*`, `acme/**`); empty allows every repository
/// on the forge's host.
#[derive(Debug, Clone)]
pub struct RepositoryAllowlist {
    pub patterns: Vec<String>,
    set: GlobSet,
}

impl RepositoryAllowlist {
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

/// How the cluster is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
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

impl Config {
    /// The configuration used when no file is given: no forges, everything else defaulted.
    pub fn built_in() -> Config {
        match validate(RawConfig::default(), BUILT_IN) {
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
        let raw = parse_raw(text, file)?;
        validate(raw, file)
    }

    /// The forge kind serving `host`: the first configured forge for it, else the public
    /// service's kind for well-known hosts.
    pub fn forge_kind_for_host(&self, host: &str) -> Option<ForgeKind> {
        self.forges
            .iter()
            .find(|f| f.host == host)
            .map(|f| f.kind)
            .or_else(|| ForgeKind::for_public_host(host))
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

fn parse_raw(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    let mut field = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            field = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|err| {
        let location = err
            .location()
            .map(|l| format!("{}:{}:", l.line(), l.column()))
            .unwrap_or_default();
        let message = err.without_snippet().to_string();
        let message = strip_location_prefix(&message);
        let field = if field.is_empty() || field == "." {
            "(top level)".to_string()
        } else {
            field
        };
        ConfigError::Parse {
            file: file.to_string(),
            location,
            field,
            message,
        }
    })
}

/// serde-saphyr prefixes messages with `error: line L column C: `; the location is reported
/// separately, in the `file:line:column:` form editors understand.
fn strip_location_prefix(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => first,
    };
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn invalid(&self, field: impl Into<String>, problem: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            field: field.into(),
            problem: problem.to_string(),
        }
    }
}

fn or_default(value: Option<HumanDuration>, default: Duration) -> Duration {
    value.map_or(default, |d| d.0)
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && s == s.to_ascii_lowercase()
}

fn validate(raw: RawConfig, file: &str) -> Result<Config, ConfigError> {
    let v = Validator { file };

    let cluster = raw.cluster.unwrap_or_else(|| "default".to_string());
    if cluster.is_empty()
        || cluster.len() > 63
        || !cluster
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err(v.invalid(
            "cluster",
            format!("`{cluster}` must be 1-63 characters of letters, digits, `-`, `_` or `.`"),
        ));
    }

    let namespaces = raw.namespaces.unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if !is_dns_label(ns) {
            return Err(v.invalid(
                format!("namespaces[{i}]"),
                format!("`{ns}` is not a valid namespace name"),
            ));
        }
    }
    if let Some((i, ns)) = namespaces
        .iter()
        .enumerate()
        .find(|(i, ns)| namespaces[..*i].contains(ns))
    {
        return Err(v.invalid(
            format!("namespaces[{i}]"),
            format!("`{ns}` is listed twice"),
        ));
    }

    let label_selector = LabelSelector::parse(raw.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| v.invalid("labelSelector", e))?;

    let kinds = match raw.kinds {
        None => vec![FluxKind::Kustomization, FluxKind::HelmRelease],
        Some(names) => {
            if names.is_empty() {
                return Err(v.invalid(
                    "kinds",
                    "must name at least one of Kustomization, HelmRelease",
                ));
            }
            let mut kinds = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let kind: FluxKind = name
                    .parse()
                    .map_err(|e| v.invalid(format!("kinds[{i}]"), e))?;
                if !kind.is_reconciler() {
                    return Err(v.invalid(format!("kinds[{i}]"), format!("`{name}` is a source kind; only Kustomization and HelmRelease are reported (sources are always read)")));
                }
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            kinds
        }
    };

    let schedule: Schedule = raw
        .schedule
        .as_deref()
        .unwrap_or("1m")
        .parse()
        .map_err(|e| v.invalid("schedule", e))?;
    let schedule_jitter = or_default(raw.schedule_jitter, Duration::ZERO);

    let statuses = raw.statuses.unwrap_or_default();
    let context = Template::parse(
        statuses.context.as_deref().unwrap_or(DEFAULT_CONTEXT),
        CONTEXT_PLACEHOLDERS,
    )
    .and_then(|t| {
        t.require(&[Placeholder::Kind, Placeholder::Namespace, Placeholder::Name])
            .map(|()| t)
    })
    .map_err(|e| v.invalid("statuses.context", e))?;
    let description = Template::parse(
        statuses
            .description
            .as_deref()
            .unwrap_or(DEFAULT_DESCRIPTION),
        DESCRIPTION_PLACEHOLDERS,
    )
    .map_err(|e| v.invalid("statuses.description", e))?;
    let target_url = match statuses.target_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let t = Template::parse(text, TARGET_URL_PLACEHOLDERS)
                .map_err(|e| v.invalid("statuses.targetUrl", e))?;
            if !(text.starts_with("https://") || text.starts_with("http://")) {
                return Err(v.invalid(
                    "statuses.targetUrl",
                    format!("`{text}` must start with https:// or http://"),
                ));
            }
            Some(t)
        }
    };
    let statuses = StatusSettings {
        context,
        description,
        target_url,
        read_back: statuses.read_back.unwrap_or(false),
    };

    let mut forges = Vec::new();
    for (i, raw_forge) in raw.forges.unwrap_or_default().into_iter().enumerate() {
        let forge = validate_forge(&v, i, raw_forge)?;
        if let Some(other) = forges.iter().find(|f: &&ForgeConfig| f.name == forge.name) {
            return Err(v.invalid(
                format!("forges[{i}].name"),
                format!("`{}` is already used by another forge", other.name),
            ));
        }
        forges.push(forge);
    }

    let raw_ledger = raw.ledger.unwrap_or_default();
    let backend = match raw_ledger.backend.as_deref().unwrap_or("configmap") {
        "configmap" => {
            let name = raw_ledger
                .config_map_name
                .unwrap_or_else(|| "flux-status-exporter-ledger".to_string());
            if !is_dns_subdomain(&name) || name.len() > 200 {
                return Err(v.invalid("ledger.configMapName", format!("`{name}` is not a valid ConfigMap name (at most 200 characters, leaving room for shard suffixes)")));
            }
            let namespace = raw_ledger.namespace.filter(|n| !n.is_empty());
            if let Some(ns) = &namespace
                && !is_dns_label(ns)
            {
                return Err(v.invalid(
                    "ledger.namespace",
                    format!("`{ns}` is not a valid namespace name"),
                ));
            }
            LedgerBackend::ConfigMap { name, namespace }
        }
        "file" => match raw_ledger.path {
            Some(path) if !path.as_os_str().is_empty() => LedgerBackend::File(path),
            _ => return Err(v.invalid("ledger.path", "required when backend is `file`")),
        },
        "memory" => LedgerBackend::Memory,
        other => {
            return Err(v.invalid(
                "ledger.backend",
                format!("unknown backend `{other}` (expected configmap, file or memory)"),
            ));
        }
    };
    let prune_after = or_default(raw_ledger.prune_after, Duration::from_secs(30 * 86_400));
    if prune_after < Duration::from_secs(3600) {
        return Err(v.invalid(
            "ledger.pruneAfter",
            "must be at least 1h, or statuses would be re-posted for commits still in use",
        ));
    }
    let ledger = LedgerConfig {
        backend,
        prune_after,
    };

    let raw_http = raw.http.unwrap_or_default();
    let listen_text = raw_http
        .listen
        .unwrap_or_else(|| "0.0.0.0:8080".to_string());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        v.invalid(
            "http.listen",
            format!("`{listen_text}` is not an address:port (e.g. 0.0.0.0:8080)"),
        )
    })?;
    let ready_max_age_periods = raw_http.ready_max_age_periods.unwrap_or(3);
    if ready_max_age_periods == 0 {
        return Err(v.invalid("http.readyMaxAgePeriods", "must be at least 1"));
    }
    let http = HttpConfig {
        listen,
        ready_max_age_periods,
    };

    let pushgateway = match raw.pushgateway {
        None => None,
        Some(p) => {
            let url = p.url.unwrap_or_default().trim_end_matches('/').to_string();
            // Metrics only, never a credential, and an in-cluster Pushgateway rarely has TLS.
            validate_http_url(&url, PlainHttp::Anywhere)
                .map_err(|e| v.invalid("pushgateway.url", e))?;
            let job = p.job.unwrap_or_else(|| "flux-status-exporter".to_string());
            if job.is_empty() || job.contains('/') {
                return Err(v.invalid(
                    "pushgateway.job",
                    format!("`{job}` must be non-empty and contain no `/`"),
                ));
            }
            Some(PushgatewayConfig { url, job })
        }
    };

    let raw_kube = raw.kube.unwrap_or_default();
    let page_size = raw_kube.page_size.unwrap_or(500);
    if page_size == 0 || page_size > 10_000 {
        return Err(v.invalid("kube.pageSize", format!("{page_size} is outside 1-10000")));
    }
    let max_pages = raw_kube.max_pages.unwrap_or(10_000);
    if max_pages == 0 {
        return Err(v.invalid("kube.maxPages", "must be at least 1"));
    }
    let kube = KubeSettings {
        page_size,
        request_timeout: or_default(raw_kube.request_timeout, Duration::from_secs(30)),
        max_pages,
    };

    let raw_le = raw.leader_election.unwrap_or_default();
    let lease_name = raw_le
        .lease_name
        .unwrap_or_else(|| "flux-status-exporter".to_string());
    if !is_dns_subdomain(&lease_name) {
        return Err(v.invalid(
            "leaderElection.leaseName",
            format!("`{lease_name}` is not a valid Lease name"),
        ));
    }
    let lease_duration = or_default(raw_le.lease_duration, Duration::from_secs(15));
    if lease_duration < Duration::from_secs(2) {
        return Err(v.invalid("leaderElection.leaseDuration", "must be at least 2s"));
    }
    let leader_election = LeaderElectionConfig {
        enabled: raw_le.enabled.unwrap_or(false),
        lease_name,
        namespace: raw_le.namespace.filter(|n| !n.is_empty()),
        lease_duration,
    };

    Ok(Config {
        source: file.to_string(),
        cluster,
        namespaces,
        label_selector,
        kinds,
        schedule,
        schedule_jitter,
        statuses,
        forges,
        ledger,
        http,
        pushgateway,
        kube,
        leader_election,
        shutdown_grace_period: or_default(raw.shutdown_grace_period, Duration::from_secs(10)),
    })
}

/// Checks `url` is an absolute http(s) URL with a host; plain http only to loopback.
/// Where a URL may use plain `http://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainHttp {
    /// Only to loopback addresses: the URL receives credentials.
    LoopbackOnly,
    /// To any host: nothing secret is sent.
    Anywhere,
}

fn validate_http_url(url: &str, plain_http: PlainHttp) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("`{url}` must not have a query string"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if plain_http == PlainHttp::Anywhere || is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "`{url}` must use https (plain http is only allowed to loopback addresses)"
        )),
        _ => Err(format!("`{url}` must start with https://")),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "[::1]" || host == "::1" || host.starts_with("127.")
}

fn validate_secret_ref(
    v: &Validator<'_>,
    field: &str,
    raw: Option<RawSecretRef>,
) -> Result<SecretRef, ConfigError> {
    let raw = raw.ok_or_else(|| v.invalid(field, "required (one of env, file, secret)"))?;
    let mut found = Vec::new();
    if let Some(name) = raw.env {
        if name.is_empty() || name.contains('=') {
            return Err(v.invalid(
                format!("{field}.env"),
                format!("`{name}` is not an environment variable name"),
            ));
        }
        found.push(SecretRef::Env(name));
    }
    if let Some(path) = raw.file {
        if path.as_os_str().is_empty() {
            return Err(v.invalid(format!("{field}.file"), "must not be empty"));
        }
        found.push(SecretRef::File(path));
    }
    if let Some(secret) = raw.secret {
        if !is_dns_subdomain(&secret.name) {
            return Err(v.invalid(
                format!("{field}.secret.name"),
                format!("`{}` is not a valid Secret name", secret.name),
            ));
        }
        if secret.key.is_empty()
            || secret.key.len() > 253
            || !secret
                .key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        {
            return Err(v.invalid(
                format!("{field}.secret.key"),
                format!("`{}` is not a valid Secret key", secret.key),
            ));
        }
        if let Some(ns) = secret
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty() && !is_dns_label(n))
        {
            return Err(v.invalid(
                format!("{field}.secret.namespace"),
                format!("`{ns}` is not a valid namespace name"),
            ));
        }
        found.push(SecretRef::KubernetesSecret {
            namespace: secret.namespace.filter(|n| !n.is_empty()),
            name: secret.name,
            key: secret.key,
        });
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(v.invalid(field, "needs one of env, file, secret")),
        _ => Err(v.invalid(field, "give only one of env, file, secret")),
    }
}

fn validate_forge(v: &Validator<'_>, i: usize, raw: RawForge) -> Result<ForgeConfig, ConfigError> {
    let at = |f: &str| format!("forges[{i}].{f}");
    let kind_text = raw.kind.ok_or_else(|| v.invalid(at("type"), "required"))?;
    let kind: ForgeKind = kind_text.parse().map_err(|e| v.invalid(at("type"), e))?;
    let name = raw.name.unwrap_or_else(|| kind.as_str().to_string());
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err(v.invalid(
            at("name"),
            format!("`{name}` must be 1-63 characters of letters, digits, `-`, `_` or `.`"),
        ));
    }
    let host = match raw.host {
        Some(h) => h,
        None => match kind {
            ForgeKind::GitHub => "github.com".to_string(),
            ForgeKind::GitLab => "gitlab.com".to_string(),
            ForgeKind::BitbucketCloud => "bitbucket.org".to_string(),
            ForgeKind::AzureDevOps => "dev.azure.com".to_string(),
            _ => return Err(v.invalid(at("host"), format!("required for type {kind}"))),
        },
    };
    if !is_host_name(&host) {
        return Err(v.invalid(
            at("host"),
            format!("`{host}` must be a lower-case host name without scheme, port or path"),
        ));
    }
    let api_url = match raw.api_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => kind
            .public_api_url(&host)
            .map(str::to_string)
            .ok_or_else(|| {
                v.invalid(
                    at("apiUrl"),
                    format!(
                        "required for a {kind} forge on `{host}` (e.g. https://{host}{})",
                        match kind {
                            ForgeKind::GitHub => "/api/v3",
                            _ => "",
                        }
                    ),
                )
            })?,
    };
    validate_http_url(&api_url, PlainHttp::LoopbackOnly).map_err(|e| v.invalid(at("apiUrl"), e))?;

    let creds = raw
        .credentials
        .ok_or_else(|| v.invalid(at("credentials"), "required (token, basic or githubApp)"))?;
    let given = [
        creds.token.is_some(),
        creds.basic.is_some(),
        creds.github_app.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        return Err(v.invalid(
            at("credentials"),
            "give exactly one of token, basic, githubApp",
        ));
    }
    let credentials = if let Some(token) = creds.token {
        Credentials::Token(validate_secret_ref(
            v,
            &at("credentials.token"),
            Some(token),
        )?)
    } else if let Some(basic) = creds.basic {
        if !matches!(
            kind,
            ForgeKind::BitbucketCloud | ForgeKind::BitbucketServer | ForgeKind::Gitea
        ) {
            return Err(v.invalid(
                at("credentials.basic"),
                format!("not supported for type {kind} (use token)"),
            ));
        }
        let username = basic.username.unwrap_or_default();
        if username.is_empty() {
            return Err(v.invalid(at("credentials.basic.username"), "required"));
        }
        Credentials::Basic {
            username,
            password: validate_secret_ref(v, &at("credentials.basic.password"), basic.password)?,
        }
    } else if let Some(app) = creds.github_app {
        if kind != ForgeKind::GitHub {
            return Err(v.invalid(
                at("credentials.githubApp"),
                format!("only for type github, not {kind}"),
            ));
        }
        let app_id = app
            .app_id
            .filter(|id| *id > 0)
            .ok_or_else(|| v.invalid(at("credentials.githubApp.appId"), "required"))?;
        Credentials::GitHubApp {
            app_id,
            installation_id: app.installation_id,
            private_key: validate_secret_ref(
                v,
                &at("credentials.githubApp.privateKey"),
                app.private_key,
            )?,
        }
    } else {
        return Err(v.invalid(
            at("credentials"),
            "give exactly one of token, basic, githubApp",
        ));
    };

    let patterns = raw.repositories.unwrap_or_default();
    let mut builder = GlobSetBuilder::new();
    for (j, pattern) in patterns.iter().enumerate() {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .case_insensitive(true)
            .build()
            .map_err(|e| {
                v.invalid(
                    format!("forges[{i}].repositories[{j}]"),
                    format!("`{pattern}`: {}", e.kind()),
                )
            })?;
        builder.add(glob);
    }
    let set = builder
        .build()
        .map_err(|e| v.invalid(at("repositories"), e))?;

    let defaults = default_rate_limit(kind);
    let raw_rate = raw.rate_limit.unwrap_or_default();
    let rate_limit = RateLimit {
        per_minute: raw_rate.per_minute.unwrap_or(defaults.per_minute),
        per_hour: raw_rate.per_hour.unwrap_or(defaults.per_hour),
        concurrency: raw_rate.concurrency.unwrap_or(defaults.concurrency),
    };
    if rate_limit.per_minute == 0 || rate_limit.per_hour == 0 || rate_limit.concurrency == 0 {
        return Err(v.invalid(
            at("rateLimit"),
            "perMinute, perHour and concurrency must be at least 1",
        ));
    }
    let request_timeout = or_default(raw.request_timeout, Duration::from_secs(10));
    if request_timeout.is_zero() {
        return Err(v.invalid(at("requestTimeout"), "must be more than 0s"));
    }
    Ok(ForgeConfig {
        name,
        kind,
        host,
        api_url,
        credentials,
        repositories: RepositoryAllowlist { patterns, set },
        rate_limit,
        request_timeout,
    })
}

/// Pacing defaults: GitHub's documented secondary limits for content-creating requests;
/// Bitbucket Cloud's hourly budget with headroom; a polite default elsewhere.
pub fn default_rate_limit(kind: ForgeKind) -> RateLimit {
    match kind {
        ForgeKind::GitHub => RateLimit {
            per_minute: 80,
            per_hour: 500,
            concurrency: 1,
        },
        ForgeKind::BitbucketCloud => RateLimit {
            per_minute: 60,
            per_hour: 900,
            concurrency: 1,
        },
        _ => RateLimit {
            per_minute: 120,
            per_hour: 3000,
            concurrency: 1,
        },
    }
}

#[cfg(test)]
mod tests;
