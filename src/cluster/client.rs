//! Connecting to the Kubernetes API the way `kubectl` does.
//!
//! Where the configuration comes from, first match wins:
//! 1. `--kubeconfig FILE`;
//! 2. the files listed in `KUBECONFIG`, merged;
//! 3. `~/.kube/config`, when it exists;
//! 4. the pod's service account (in-cluster), when `KUBERNETES_SERVICE_HOST` is set.
//!
//! Bearer tokens, token files, client certificates and exec plugins are handled by kube-rs as
//! the kubeconfig names them. Errors name the file and context but never a credential.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// How to reach the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// `--kubeconfig`; `None` follows `KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`; `None` uses the kubeconfig's `current-context`.
    pub context: Option<String>,
    /// Longest wait for connecting and for each response.
    pub request_timeout: Duration,
}

/// A client and the namespace it resolved as its own.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    /// The same credentials without a read timeout, for watches: a quiet watch sends nothing
    /// for minutes, and its own deadline ends it.
    pub watch_client: kube::Client,
    /// The context's namespace, the service account's namespace in a pod, else `default`:
    /// where the exporter keeps its ledger ConfigMap and Lease unless configured otherwise.
    pub default_namespace: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("default_namespace", &self.default_namespace)
            .finish_non_exhaustive()
    }
}

/// No usable client configuration. Every variant is a problem with the caller's input
/// (exit code 2), not with the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("kubeconfig {source_name}: {problem}")]
    Kubeconfig {
        source_name: String,
        problem: String,
    },
    #[error(
        "kubeconfig {source_name}: context `{context}` not found (contexts: {known})",
        known = if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    UnknownContext {
        source_name: String,
        context: String,
        known: Vec<String>,
    },
    #[error(
        "kubeconfig {source_name}: no current-context is set; choose one with --context (contexts: {known})",
        known = if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    NoCurrentContext {
        source_name: String,
        known: Vec<String>,
    },
    #[error("in-cluster configuration: {0}")]
    InCluster(String),
    #[error(
        "no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account"
    )]
    NotFound,
    #[error(
        "--context `{0}` needs a kubeconfig, but the exporter is using the pod's service account"
    )]
    ContextWithoutKubeconfig(String),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
}

/// Builds a client from the first configuration source that exists (see the module docs).
pub async fn connect(options: &ConnectOptions) -> Result<Connection, ConnectError> {
    let mut config = match load_kubeconfig(options.kubeconfig.as_deref())? {
        Some((kubeconfig, source_name)) => {
            check_context(&kubeconfig, &source_name, options.context.as_deref())?;
            let kube_options = KubeConfigOptions {
                context: options.context.clone(),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|e| ConnectError::Kubeconfig {
                    source_name,
                    problem: first_line(&e),
                })?
        }
        None => {
            if let Some(context) = &options.context {
                return Err(ConnectError::ContextWithoutKubeconfig(context.clone()));
            }
            kube::Config::incluster().map_err(|e| ConnectError::InCluster(first_line(&e)))?
        }
    };
    // The reader retries itself so that every attempt is counted and bounded; kube's own retry
    // layer would hide 429/503 answers and wait far longer than one tick.
    config.default_retry = false;
    register_credentials(&config.auth_info);
    config.connect_timeout = Some(options.request_timeout);
    config.read_timeout = Some(options.request_timeout);
    // Count the read timeout from when a request is sent, not from when a pooled connection
    // went idle.
    config.reset_reader_on_write = true;
    let default_namespace = config.default_namespace.clone();
    let mut watch_config = config.clone();
    watch_config.read_timeout = None;
    let client =
        kube::Client::try_from(config).map_err(|e| ConnectError::Client(first_line(&e)))?;
    let watch_client =
        kube::Client::try_from(watch_config).map_err(|e| ConnectError::Client(first_line(&e)))?;
    Ok(Connection {
        client,
        watch_client,
        default_namespace,
    })
}

/// Token files of the connections made, re-read when the API server refuses a token (a
/// service-account token is rotated while the process runs).
fn token_files() -> &'static std::sync::Mutex<Vec<PathBuf>> {
    static FILES: std::sync::OnceLock<std::sync::Mutex<Vec<PathBuf>>> = std::sync::OnceLock::new();
    FILES.get_or_init(|| std::sync::Mutex::new(Vec::new()))
}

/// Registers the kubeconfig's or service account's credentials with the redactor: an API
/// server's error body can echo them as well as a forge's can.
fn register_credentials(auth: &kube::config::AuthInfo) {
    use secrecy::ExposeSecret;
    for secret in [&auth.token, &auth.password].into_iter().flatten() {
        crate::redact::register(secret.expose_secret());
    }
    if let Some(key) = &auth.client_key_data {
        crate::redact::register(key.expose_secret());
    }
    if let Some(file) = &auth.token_file {
        let path = PathBuf::from(file);
        let mut files = token_files().lock().unwrap_or_else(|p| p.into_inner());
        if !files.contains(&path) {
            files.push(path);
        }
        drop(files);
        register_token_files();
    }
}

/// Reads every known token file again and registers what it holds with the redactor.
pub fn register_token_files() {
    let files = token_files()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for file in files {
        if let Ok(token) = std::fs::read_to_string(&file) {
            crate::redact::register(&token);
        }
    }
}

/// The kubeconfig to use and how to name it in errors, or `None` for in-cluster.
fn load_kubeconfig(explicit: Option<&Path>) -> Result<Option<(Kubeconfig, String)>, ConnectError> {
    if let Some(path) = explicit {
        let source_name = path.display().to_string();
        return read_kubeconfig(path, source_name).map(Some);
    }
    if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        let source_name = "from KUBECONFIG".to_string();
        return match Kubeconfig::from_env() {
            Ok(Some(kubeconfig)) => Ok(Some((kubeconfig, source_name))),
            Ok(None) => Err(ConnectError::NotFound),
            Err(e) => Err(ConnectError::Kubeconfig {
                source_name,
                problem: first_line(&e),
            }),
        };
    }
    if let Some(home) = std::env::home_dir() {
        let path = home.join(".kube").join("config");
        if path.exists() {
            let source_name = path.display().to_string();
            return read_kubeconfig(&path, source_name).map(Some);
        }
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Ok(None);
    }
    Err(ConnectError::NotFound)
}

fn read_kubeconfig(path: &Path, source_name: String) -> Result<(Kubeconfig, String), ConnectError> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(ConnectError::Kubeconfig {
            source_name,
            problem: format!("cannot read: {e}"),
        });
    }
    match Kubeconfig::read_from(path) {
        Ok(kubeconfig) => Ok((kubeconfig, source_name)),
        Err(e) => Err(ConnectError::Kubeconfig {
            source_name,
            problem: first_line(&e),
        }),
    }
}

fn check_context(
    kubeconfig: &Kubeconfig,
    source_name: &str,
    context: Option<&str>,
) -> Result<(), ConnectError> {
    let known: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let wanted = match context {
        Some(context) => context,
        None => match kubeconfig.current_context.as_deref() {
            Some(current) if !current.is_empty() => current,
            _ => {
                return Err(ConnectError::NoCurrentContext {
                    source_name: source_name.to_string(),
                    known,
                });
            }
        },
    };
    if known.iter().any(|k| k == wanted) {
        Ok(())
    } else {
        Err(ConnectError::UnknownContext {
            source_name: source_name.to_string(),
            context: wanted.to_string(),
            known,
        })
    }
}

/// The first line of an error: YAML parser messages append a snippet of the file, which may
/// hold a token.
fn first_line(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    text.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(text: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(text).unwrap()
    }

    const TWO_CONTEXTS: &str = "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: not-a-real-token}\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n- name: b\n  context: {cluster: c, user: u, namespace: ops}\n";

    #[test]
    fn an_unknown_context_is_refused_listing_the_known_ones() {
        let err = check_context(&kubeconfig(TWO_CONTEXTS), "k.yaml", Some("prod")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kubeconfig k.yaml: context `prod` not found (contexts: a, b)"
        );
    }

    #[test]
    fn the_current_context_is_used_when_none_is_named() {
        check_context(&kubeconfig(TWO_CONTEXTS), "k.yaml", None).unwrap();
        let without = TWO_CONTEXTS.replace("current-context: a\n", "");
        let err = check_context(&kubeconfig(&without), "k.yaml", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kubeconfig k.yaml: no current-context is set; choose one with --context (contexts: a, b)"
        );
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_file_is_named_in_the_error() {
        let err = connect(&ConnectOptions {
            kubeconfig: Some(PathBuf::from("/nonexistent/kubeconfig")),
            context: None,
            request_timeout: Duration::from_secs(1),
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "kubeconfig /nonexistent/kubeconfig: cannot read: No such file or directory (os error 2)"
        );
    }

    #[tokio::test]
    async fn the_context_namespace_becomes_the_default_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, TWO_CONTEXTS).unwrap();
        let connection = connect(&ConnectOptions {
            kubeconfig: Some(path),
            context: Some("b".to_string()),
            request_timeout: Duration::from_secs(1),
        })
        .await
        .unwrap();
        assert_eq!(connection.default_namespace, "ops");
    }

    #[tokio::test]
    async fn a_kubeconfig_that_is_not_yaml_is_refused_without_echoing_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "users:\n- name: u\n  user: {token: s3cr3t-token\n").unwrap();
        let err = connect(&ConnectOptions {
            kubeconfig: Some(path.clone()),
            context: None,
            request_timeout: Duration::from_secs(1),
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!("kubeconfig {}: ", path.display())),
            "{err}"
        );
        assert!(!err.contains("s3cr3t-token"), "{err}");
    }
}
