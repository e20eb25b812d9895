//! Forge credentials as configured: references to where each secret value lives, never the
//! values themselves.

use std::path::PathBuf;

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

impl Credentials {
    /// Every secret value this credential needs, in the order the forge uses them.
    pub fn secret_refs(&self) -> impl Iterator<Item = &SecretRef> {
        let reference = match self {
            Credentials::Token(token) => token,
            Credentials::Basic { password, .. } => password,
            Credentials::GitHubApp { private_key, .. } => private_key,
        };
        std::iter::once(reference)
    }

    /// Whether any secret value of this credential is read from a Kubernetes Secret, so the
    /// exporter needs a cluster client to fetch it.
    pub fn uses_kubernetes_secret(&self) -> bool {
        self.secret_refs().any(SecretRef::is_kubernetes_secret)
    }
}

impl SecretRef {
    /// Whether the value is a key of a Kubernetes Secret.
    pub fn is_kubernetes_secret(&self) -> bool {
        matches!(self, SecretRef::KubernetesSecret { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str) -> SecretRef {
        SecretRef::KubernetesSecret {
            namespace: None,
            name: name.to_string(),
            key: "token".to_string(),
        }
    }

    #[test]
    fn each_credential_kind_names_the_secret_it_reads() {
        let token = Credentials::Token(SecretRef::Env("T".into()));
        let basic = Credentials::Basic {
            username: "u".into(),
            password: SecretRef::File("/p".into()),
        };
        let app = Credentials::GitHubApp {
            app_id: 1,
            installation_id: None,
            private_key: secret("app-key"),
        };
        assert_eq!(
            token.secret_refs().collect::<Vec<_>>(),
            [&SecretRef::Env("T".into())]
        );
        assert_eq!(
            basic.secret_refs().collect::<Vec<_>>(),
            [&SecretRef::File("/p".into())]
        );
        assert_eq!(app.secret_refs().collect::<Vec<_>>(), [&secret("app-key")]);
    }

    #[test]
    fn only_a_credential_read_from_a_kubernetes_secret_needs_the_cluster() {
        assert!(!Credentials::Token(SecretRef::Env("T".into())).uses_kubernetes_secret());
        assert!(!Credentials::Token(SecretRef::File("/t".into())).uses_kubernetes_secret());
        assert!(Credentials::Token(secret("forge-token")).uses_kubernetes_secret());
        assert!(
            Credentials::Basic {
                username: "u".into(),
                password: secret("bitbucket"),
            }
            .uses_kubernetes_secret()
        );
    }
}
