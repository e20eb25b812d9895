//! Reading credential values from where the configuration points: an environment variable, a
//! file (re-read when it changes, so rotated Kubernetes Secret mounts are picked up) or a
//! Kubernetes Secret. Values are only ever held in [`SecretString`]; errors name the source,
//! never the value.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Secret;

use crate::clock::{Clock, TokioClock};
use crate::config::SecretRef;
use crate::secret::SecretString;

/// How long a value read from a Kubernetes Secret is used before it is read again.
pub const KUBERNETES_SECRET_TTL: Duration = Duration::from_secs(300);

/// A credential that cannot be read. Messages name where it was looked for, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("cannot read credential file {path}: {problem}")]
    File { path: String, problem: String },
    #[error("credential file {0} is empty")]
    FileEmpty(String),
    #[error("Secret {namespace}/{name} (key `{key}`): {problem}")]
    KubernetesSecret {
        namespace: String,
        name: String,
        key: String,
        problem: String,
    },
    #[error(
        "Secret {name} (key {key}) needs cluster access, and no Kubernetes client is configured"
    )]
    NoKubernetesClient { name: String, key: String },
    /// Read, but cannot be used as it is (says why, never the value).
    #[error("{0}")]
    Unusable(String),
}

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where secret values can be read from: the process environment, files, and (when a client is
/// given) the Kubernetes API.
#[derive(Clone)]
pub struct CredentialSources {
    env: EnvLookup,
    kube: Option<(kube::Client, String)>,
    /// Ages values read from Kubernetes Secrets.
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for CredentialSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSources")
            .field("kube_namespace", &self.kube.as_ref().map(|(_, ns)| ns))
            .finish_non_exhaustive()
    }
}

impl Default for CredentialSources {
    fn default() -> Self {
        CredentialSources::new()
    }
}

impl CredentialSources {
    /// The process environment and files; Kubernetes Secrets are unavailable.
    pub fn new() -> CredentialSources {
        CredentialSources {
            env: Arc::new(|name| std::env::var(name).ok()),
            kube: None,
            clock: Arc::new(TokioClock),
        }
    }

    /// Ages cached Secret values on `clock` rather than the real clock, so that the delivery
    /// machinery's clock (a test's virtual one included) decides when a Secret is read again.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> CredentialSources {
        self.clock = clock;
        self
    }

    /// Reads environment variables from `vars` instead of the process environment (tests set
    /// variables this way, since changing the process environment is unsafe).
    pub fn with_env(mut self, vars: HashMap<String, String>) -> CredentialSources {
        self.env = Arc::new(move |name| vars.get(name).cloned());
        self
    }

    /// Reads Kubernetes Secrets with `client`; references without a namespace use
    /// `default_namespace` (the exporter's own).
    pub fn with_kube(
        mut self,
        client: kube::Client,
        default_namespace: impl Into<String>,
    ) -> CredentialSources {
        self.kube = Some((client, default_namespace.into()));
        self
    }

    /// A reader for one reference.
    pub fn source(&self, reference: &SecretRef) -> SecretSource {
        SecretSource {
            reference: reference.clone(),
            sources: self.clone(),
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// Checks what can be checked without I/O against a cluster: that an environment variable
    /// is set, or that a Secret reference has a client to read it with.
    pub fn check(&self, reference: &SecretRef) -> Result<(), CredentialError> {
        match reference {
            SecretRef::Env(name) => self.read_env(name).map(|_| ()),
            SecretRef::File(_) => Ok(()),
            SecretRef::KubernetesSecret { name, key, .. } => match self.kube {
                Some(_) => Ok(()),
                None => Err(CredentialError::NoKubernetesClient {
                    name: name.clone(),
                    key: key.clone(),
                }),
            },
        }
    }

    fn read_env(&self, name: &str) -> Result<SecretString, CredentialError> {
        let value = (self.env)(name).ok_or_else(|| CredentialError::EnvMissing(name.into()))?;
        let secret = SecretString::new(value);
        if secret.is_empty() {
            return Err(CredentialError::EnvEmpty(name.into()));
        }
        Ok(secret)
    }
}

/// What a file looked like when it was last read, to notice rotation cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Debug, Clone)]
enum Cached {
    File {
        stamp: FileStamp,
        value: SecretString,
    },
    Kubernetes {
        /// On the sources' clock.
        read_at: Instant,
        value: SecretString,
    },
}

/// A readable credential: [`SecretSource::get`] returns the current value, re-reading a file
/// when its modification time or length changes, and a Kubernetes Secret every
/// [`KUBERNETES_SECRET_TTL`] or after [`SecretSource::invalidate`].
#[derive(Clone)]
pub struct SecretSource {
    reference: SecretRef,
    sources: CredentialSources,
    cache: Arc<Mutex<Option<Cached>>>,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSource")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

impl SecretSource {
    /// Where the value comes from.
    pub fn reference(&self) -> &SecretRef {
        &self.reference
    }

    /// The current value.
    pub async fn get(&self) -> Result<SecretString, CredentialError> {
        match &self.reference {
            SecretRef::Env(name) => self.sources.read_env(name),
            SecretRef::File(path) => self.read_file(path).await,
            SecretRef::KubernetesSecret {
                namespace,
                name,
                key,
            } => self.read_secret(namespace.as_deref(), name, key).await,
        }
    }

    /// Forgets the cached value, so the next [`SecretSource::get`] reads it again (after the
    /// forge refused it, it may have been rotated).
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = None;
        }
    }

    fn cached(&self) -> Option<Cached> {
        self.cache.lock().ok().and_then(|c| c.clone())
    }

    fn store(&self, value: Cached) {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some(value);
        }
    }

    async fn read_file(&self, path: &PathBuf) -> Result<SecretString, CredentialError> {
        let shown = path.display().to_string();
        let problem = |e: std::io::Error| CredentialError::File {
            path: shown.clone(),
            problem: if e.kind() == std::io::ErrorKind::InvalidInput {
                e.to_string()
            } else {
                e.kind().to_string()
            },
        };
        let meta = tokio::fs::metadata(path).await.map_err(problem)?;
        crate::files::ensure_regular(&meta).map_err(problem)?;
        let stamp = FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        };
        if let Some(Cached::File { stamp: s, value }) = self.cached()
            && s == stamp
        {
            return Ok(value);
        }
        let bytes = tokio::fs::read(path).await.map_err(problem)?;
        let text = String::from_utf8(bytes).map_err(|_| CredentialError::File {
            path: shown.clone(),
            problem: "not UTF-8 text".into(),
        })?;
        let value = SecretString::new(text);
        if value.is_empty() {
            return Err(CredentialError::FileEmpty(shown));
        }
        self.store(Cached::File {
            stamp,
            value: value.clone(),
        });
        Ok(value)
    }

    async fn read_secret(
        &self,
        namespace: Option<&str>,
        name: &str,
        key: &str,
    ) -> Result<SecretString, CredentialError> {
        let Some((client, default_ns)) = &self.sources.kube else {
            return Err(CredentialError::NoKubernetesClient {
                name: name.into(),
                key: key.into(),
            });
        };
        let now = self.sources.clock.now();
        if let Some(Cached::Kubernetes { read_at, value }) = self.cached()
            && now.saturating_duration_since(read_at) < KUBERNETES_SECRET_TTL
        {
            return Ok(value);
        }
        let namespace = namespace.unwrap_or(default_ns);
        let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
        let secret = api
            .get(name)
            .await
            .map_err(|e| CredentialError::KubernetesSecret {
                namespace: namespace.into(),
                name: name.into(),
                key: key.into(),
                problem: kube_problem(&e),
            })?;
        let value = secret_value(&secret, namespace, name, key)?;
        self.store(Cached::Kubernetes {
            read_at: now,
            value: value.clone(),
        });
        Ok(value)
    }
}

/// A Kubernetes API error in words, with what to do about the usual ones. Only the API
/// server's message is used: a `Status` names the object, never a Secret's data.
fn kube_problem(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => match status.code {
            404 => "not found: create it, or fix the reference".into(),
            403 => format!(
                "forbidden: the exporter may not get this Secret; grant `get` on it (deploy/components/secret-references) ({})",
                status.message
            ),
            401 => format!(
                "the API server refused the exporter's own credentials ({})",
                status.message
            ),
            code => format!("{} ({code})", status.message),
        },
        other => format!(
            "cannot read it from the API server: {}",
            super::text::error_chain(other)
        ),
    }
}

/// The value of `key` in a Secret's `data` (already base64-decoded by the client).
pub fn secret_value(
    secret: &Secret,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SecretString, CredentialError> {
    let problem = |problem: String| CredentialError::KubernetesSecret {
        namespace: namespace.into(),
        name: name.into(),
        key: key.into(),
        problem,
    };
    let data = secret.data.as_ref();
    let bytes = data.and_then(|d| d.get(key)).ok_or_else(|| {
        // Key names are not secret; they show what was probably meant.
        let keys: Vec<&str> = data
            .map(|d| d.keys().map(String::as_str).collect())
            .unwrap_or_default();
        problem(if keys.is_empty() {
            "the Secret has no such key (it has no keys)".into()
        } else {
            format!("the Secret has no such key (it has: {})", keys.join(", "))
        })
    })?;
    let text =
        std::str::from_utf8(&bytes.0).map_err(|_| problem("its value is not UTF-8 text".into()))?;
    let value = SecretString::new(text);
    if value.is_empty() {
        return Err(problem("its value is empty".into()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(data: &[(&str, &[u8])]) -> Secret {
        Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn a_secret_key_decodes_to_its_trimmed_value() {
        let s = secret(&[("token", b"ghp_abc\n")]);
        let value = secret_value(&s, "flux-system", "gh", "token").unwrap();
        assert_eq!(value.expose(), "ghp_abc");
    }

    #[test]
    fn secret_problems_name_the_secret_and_key_but_no_value() {
        let s = secret(&[
            ("token", b"ghp_abc"),
            ("bad", &[0xff, 0xfe]),
            ("empty", b" \n"),
        ]);
        let missing = secret_value(&s, "ns", "gh", "password").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "Secret ns/gh (key `password`): the Secret has no such key (it has: bad, empty, token)"
        );
        let bad = secret_value(&s, "ns", "gh", "bad").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "Secret ns/gh (key `bad`): its value is not UTF-8 text"
        );
        let empty = secret_value(&s, "ns", "gh", "empty").unwrap_err();
        assert_eq!(
            empty.to_string(),
            "Secret ns/gh (key `empty`): its value is empty"
        );
        let none = secret_value(&Secret::default(), "ns", "gh", "token").unwrap_err();
        assert_eq!(
            none.to_string(),
            "Secret ns/gh (key `token`): the Secret has no such key (it has no keys)"
        );
    }

    #[tokio::test]
    async fn environment_variables_come_from_the_given_lookup() {
        let sources = CredentialSources::new().with_env(HashMap::from([
            ("TOKEN".to_string(), "t0k\n".to_string()),
            ("EMPTY".to_string(), " ".to_string()),
        ]));
        let value = sources.source(&SecretRef::Env("TOKEN".into())).get().await;
        assert_eq!(value.unwrap().expose(), "t0k");
        let missing = sources.source(&SecretRef::Env("NOPE".into())).get().await;
        assert_eq!(
            missing.unwrap_err().to_string(),
            "environment variable NOPE is not set"
        );
        assert_eq!(
            sources.check(&SecretRef::Env("EMPTY".into())).unwrap_err(),
            CredentialError::EnvEmpty("EMPTY".into())
        );
    }

    #[tokio::test]
    async fn a_rotated_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let source = CredentialSources::new().source(&SecretRef::File(path.clone()));
        assert_eq!(source.get().await.unwrap().expose(), "first");
        // A different length is a change even where the file system's mtime is coarse.
        std::fs::write(&path, "second-token").unwrap();
        assert_eq!(source.get().await.unwrap().expose(), "second-token");
    }

    #[tokio::test]
    async fn file_problems_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing");
        let source = CredentialSources::new().source(&SecretRef::File(path.clone()));
        assert_eq!(
            source.get().await.unwrap_err().to_string(),
            format!(
                "cannot read credential file {}: entity not found",
                path.display()
            )
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let source = CredentialSources::new().source(&SecretRef::File(empty.clone()));
        assert_eq!(
            source.get().await.unwrap_err(),
            CredentialError::FileEmpty(empty.display().to_string())
        );
    }

    #[tokio::test]
    async fn a_secret_reference_without_a_client_says_so() {
        let reference = SecretRef::KubernetesSecret {
            namespace: None,
            name: "gh".into(),
            key: "token".into(),
        };
        let sources = CredentialSources::new();
        assert_eq!(
            sources
                .source(&reference)
                .get()
                .await
                .unwrap_err()
                .to_string(),
            "Secret gh (key token) needs cluster access, and no Kubernetes client is configured"
        );
        assert!(sources.check(&reference).is_err());
    }
}
