//! Building each configured forge's publisher: a table from forge kind to its dialect and
//! its transport's auth family.

use std::sync::Arc;

use super::credentials::{CredentialError, CredentialSources};
use super::dialect::Dialect;
use super::github_transport::{GitHubSetupError, GitHubTransport};
use super::http::{ClientSetupError, HttpClient};
use super::token_auth::{TokenAuth, TokenTransport, UnsupportedCredential};
use super::transport::{Publisher, Transport};
use super::{azure_devops, bitbucket_cloud, bitbucket_server, gitea, github, gitlab};
use crate::clock::Clock;
use crate::config::{Config, ForgeConfig};
use crate::model::ForgeKind;

/// The publishers could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ForgeSetupError {
    #[error("forge `{forge}`: credentials: {source}")]
    Credential {
        forge: String,
        source: CredentialError,
    },
    #[error("forge `{forge}`: {source}")]
    Client { forge: String, source: ClientError },
}

/// A forge's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] ClientSetupError),
    #[error(transparent)]
    GitHub(#[from] GitHubSetupError),
    #[error(transparent)]
    Credential(#[from] UnsupportedCredential),
}

/// How a forge's requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFamily {
    /// A token (or basic credentials) over the shared HTTP client.
    Token,
    /// GitHub through octocrab, with a token or a GitHub App.
    GitHub,
}

/// One row of the factory: a forge's dialect and how its requests are sent.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    /// The pure half.
    pub dialect: &'static Dialect,
    /// The transport's auth family.
    pub auth: AuthFamily,
}

/// The factory's table: every kind's recipe.
pub fn recipe(kind: ForgeKind) -> Recipe {
    let (dialect, auth) = match kind {
        ForgeKind::GitHub => (&github::DIALECT, AuthFamily::GitHub),
        ForgeKind::GitLab => (&gitlab::DIALECT, AuthFamily::Token),
        ForgeKind::BitbucketCloud => (&bitbucket_cloud::DIALECT, AuthFamily::Token),
        ForgeKind::BitbucketServer => (&bitbucket_server::DIALECT, AuthFamily::Token),
        ForgeKind::AzureDevOps => (&azure_devops::DIALECT, AuthFamily::Token),
        ForgeKind::Gitea => (&gitea::DIALECT, AuthFamily::Token),
    };
    Recipe { dialect, auth }
}

/// A publisher for every configured forge, in configuration order; the token forges share
/// one HTTP client.
pub(crate) fn build_publishers(
    config: &Config,
    sources: &CredentialSources,
    clock: &Arc<dyn Clock>,
) -> Result<Vec<Publisher>, ForgeSetupError> {
    let mut client: Option<HttpClient> = None;
    config
        .forges
        .iter()
        .map(|forge| {
            let setup = |source: ClientError| ForgeSetupError::Client {
                forge: forge.name.clone(),
                source,
            };
            let recipe = recipe(forge.kind);
            let transport =
                transport(recipe.auth, forge, sources, clock, &mut client).map_err(setup)?;
            Ok(Publisher::new(recipe.dialect.at(&forge.api_url), transport))
        })
        .collect()
}

fn transport(
    auth: AuthFamily,
    forge: &ForgeConfig,
    sources: &CredentialSources,
    clock: &Arc<dyn Clock>,
    client: &mut Option<HttpClient>,
) -> Result<Box<dyn Transport>, ClientError> {
    match auth {
        AuthFamily::GitHub => Ok(Box::new(GitHubTransport::new(
            forge,
            sources,
            clock.clone(),
        )?)),
        AuthFamily::Token => {
            let http = match client {
                Some(c) => c.clone(),
                None => client.insert(HttpClient::new()?).clone(),
            };
            let auth = TokenAuth::for_forge(forge, sources)?;
            Ok(Box::new(TokenTransport::new(
                http,
                &forge.api_url,
                auth,
                clock.clone(),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_goes_through_octocrab_and_the_others_through_the_token_transport() {
        let families: Vec<_> = ForgeKind::ALL.into_iter().map(|k| recipe(k).auth).collect();
        assert_eq!(
            families,
            vec![
                AuthFamily::GitHub,
                AuthFamily::Token,
                AuthFamily::Token,
                AuthFamily::Token,
                AuthFamily::Token,
                AuthFamily::Token
            ]
        );
    }
}
