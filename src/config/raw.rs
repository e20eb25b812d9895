//! The configuration file as written: every field optional, unknown fields rejected.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, Credentials, HumanDuration, LedgerBackend, SecretRef};

/// Top level of `config.yaml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_jitter: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statuses: Option<RawStatuses>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forges: Option<Vec<RawForge>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<RawLedger>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<RawHttp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushgateway: Option<RawPushgateway>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube: Option<RawKube>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_election: Option<RawLeaderElection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period: Option<HumanDuration>,
}

/// `statuses:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStatuses {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_back: Option<bool>,
}

/// One entry of `forges:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawForge {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<RawCredentials>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RawRateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<HumanDuration>,
}

/// `forges[].credentials`: exactly one of the three.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCredentials {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<RawSecretRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic: Option<RawBasic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_app: Option<RawGitHubApp>,
}

/// `credentials.basic`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBasic {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<RawSecretRef>,
}

/// `credentials.githubApp`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGitHubApp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<RawSecretRef>,
}

/// A reference to a secret value: exactly one of `env`, `file`, `secret`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSecretRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<RawKubernetesSecret>,
}

/// `secret: {name, key, namespace}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKubernetesSecret {
    pub name: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `forges[].rateLimit`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRateLimit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// `ledger:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLedger {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune_after: Option<HumanDuration>,
}

/// `http:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHttp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_max_age_periods: Option<u32>,
}

/// `pushgateway:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPushgateway {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// `kube:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKube {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_from_cache: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u32>,
}

/// `leaderElection:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLeaderElection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_duration: Option<HumanDuration>,
}

fn secret_ref(r: &SecretRef) -> RawSecretRef {
    match r {
        SecretRef::Env(name) => RawSecretRef {
            env: Some(name.clone()),
            ..Default::default()
        },
        SecretRef::File(path) => RawSecretRef {
            file: Some(path.clone()),
            ..Default::default()
        },
        SecretRef::KubernetesSecret {
            namespace,
            name,
            key,
        } => RawSecretRef {
            secret: Some(RawKubernetesSecret {
                name: name.clone(),
                key: key.clone(),
                namespace: namespace.clone(),
            }),
            ..Default::default()
        },
    }
}

/// The raw form of a validated configuration, every default filled in.
pub(super) fn resolved(config: &Config) -> RawConfig {
    let (backend, config_map_name, namespace, path) = match &config.ledger.backend {
        LedgerBackend::ConfigMap { name, namespace } => {
            ("configmap", Some(name.clone()), namespace.clone(), None)
        }
        LedgerBackend::File(path) => ("file", None, None, Some(path.clone())),
        LedgerBackend::Memory => ("memory", None, None, None),
    };
    RawConfig {
        cluster: Some(config.cluster.clone()),
        namespaces: Some(config.namespaces.clone()),
        label_selector: Some(config.label_selector.as_str().to_string()),
        kinds: Some(
            config
                .kinds
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
        ),
        schedule: Some(config.schedule.to_string()),
        schedule_jitter: Some(HumanDuration(config.schedule_jitter)),
        statuses: Some(RawStatuses {
            context: Some(config.statuses.context.source().to_string()),
            description: Some(config.statuses.description.source().to_string()),
            target_url: Some(
                config
                    .statuses
                    .target_url
                    .as_ref()
                    .map_or(String::new(), |t| t.source().to_string()),
            ),
            read_back: Some(config.statuses.read_back),
        }),
        forges: Some(
            config
                .forges
                .iter()
                .map(|f| RawForge {
                    name: Some(f.name.clone()),
                    kind: Some(f.kind.as_str().to_string()),
                    host: Some(f.host.clone()),
                    api_url: Some(f.api_url.clone()),
                    credentials: Some(match &f.credentials {
                        Credentials::Token(r) => RawCredentials {
                            token: Some(secret_ref(r)),
                            ..Default::default()
                        },
                        Credentials::Basic { username, password } => RawCredentials {
                            basic: Some(RawBasic {
                                username: Some(username.clone()),
                                password: Some(secret_ref(password)),
                            }),
                            ..Default::default()
                        },
                        Credentials::GitHubApp {
                            app_id,
                            installation_id,
                            private_key,
                        } => RawCredentials {
                            github_app: Some(RawGitHubApp {
                                app_id: Some(*app_id),
                                installation_id: *installation_id,
                                private_key: Some(secret_ref(private_key)),
                            }),
                            ..Default::default()
                        },
                    }),
                    repositories: Some(f.repositories.patterns.clone()),
                    rate_limit: Some(RawRateLimit {
                        per_minute: Some(f.rate_limit.per_minute),
                        per_hour: Some(f.rate_limit.per_hour),
                        concurrency: Some(f.rate_limit.concurrency),
                    }),
                    request_timeout: Some(HumanDuration(f.request_timeout)),
                })
                .collect(),
        ),
        ledger: Some(RawLedger {
            backend: Some(backend.to_string()),
            config_map_name,
            namespace,
            path,
            prune_after: Some(HumanDuration(config.ledger.prune_after)),
        }),
        http: Some(RawHttp {
            listen: Some(config.http.listen.to_string()),
            ready_max_age_periods: Some(config.http.ready_max_age_periods),
        }),
        pushgateway: config.pushgateway.as_ref().map(|p| RawPushgateway {
            url: Some(p.url.clone()),
            job: Some(p.job.clone()),
        }),
        kube: Some(RawKube {
            read: Some(config.kube.read.as_str().to_string()),
            list_from_cache: Some(config.kube.list_from_cache),
            page_size: Some(config.kube.page_size),
            request_timeout: Some(HumanDuration(config.kube.request_timeout)),
            max_pages: Some(config.kube.max_pages),
        }),
        leader_election: Some(RawLeaderElection {
            enabled: Some(config.leader_election.enabled),
            lease_name: Some(config.leader_election.lease_name.clone()),
            namespace: config.leader_election.namespace.clone(),
            lease_duration: Some(HumanDuration(config.leader_election.lease_duration)),
        }),
        shutdown_grace_period: Some(HumanDuration(config.shutdown_grace_period)),
    }
}
