//! Sending prepared requests to the forges other than GitHub: the shared HTTP client plus each
//! forge's way of presenting its credential.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use super::StatusRequest;
use super::clock::Clock;
use super::credentials::{CredentialSources, SecretSource};
use super::http::{Failure, ForgeResponse, HttpClient, basic, sensitive};
use super::read_back::ReadAnswer;
use crate::config::{Credentials, ForgeConfig};
use crate::model::ForgeKind;

/// How a credential is presented.
#[derive(Debug, Clone)]
pub(crate) enum TokenAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(SecretSource),
    /// `Authorization: token <token>` (Gitea, Forgejo).
    Token(SecretSource),
    /// `PRIVATE-TOKEN: <token>` (GitLab).
    PrivateToken(SecretSource),
    /// `Authorization: Basic base64(user:password)`; Azure DevOps sends a PAT with an empty user.
    Basic {
        username: String,
        password: SecretSource,
    },
}

impl TokenAuth {
    /// The credential form `kind` expects for the configured credentials.
    pub(crate) fn for_forge(
        forge: &ForgeConfig,
        sources: &CredentialSources,
    ) -> Result<TokenAuth, String> {
        match (&forge.credentials, forge.kind) {
            (Credentials::Token(r), ForgeKind::GitLab) => {
                Ok(TokenAuth::PrivateToken(sources.source(r)))
            }
            (Credentials::Token(r), ForgeKind::Gitea) => Ok(TokenAuth::Token(sources.source(r))),
            (Credentials::Token(r), ForgeKind::AzureDevOps) => Ok(TokenAuth::Basic {
                username: String::new(),
                password: sources.source(r),
            }),
            (Credentials::Token(r), _) => Ok(TokenAuth::Bearer(sources.source(r))),
            (Credentials::Basic { username, password }, _) => Ok(TokenAuth::Basic {
                username: username.clone(),
                password: sources.source(password),
            }),
            (Credentials::GitHubApp { .. }, kind) => Err(format!(
                "githubApp credentials only work with GitHub, not {kind}"
            )),
        }
    }

    fn source(&self) -> &SecretSource {
        match self {
            TokenAuth::Bearer(s) | TokenAuth::Token(s) | TokenAuth::PrivateToken(s) => s,
            TokenAuth::Basic { password, .. } => password,
        }
    }

    /// The header carrying the credential, and the texts to keep out of messages.
    async fn header(&self) -> Result<(HeaderName, HeaderValue, Vec<String>), Failure> {
        let secret = self.source().get().await?;
        let raw = secret.expose();
        let (name, value) = match self {
            TokenAuth::Bearer(_) => (http::header::AUTHORIZATION, format!("Bearer {raw}")),
            TokenAuth::Token(_) => (http::header::AUTHORIZATION, format!("token {raw}")),
            TokenAuth::PrivateToken(_) => {
                (HeaderName::from_static("private-token"), raw.to_string())
            }
            TokenAuth::Basic { username, .. } => {
                (http::header::AUTHORIZATION, basic(username, raw))
            }
        };
        let header = sensitive(&value)?;
        Ok((name, header, vec![value, raw.to_string()]))
    }
}

/// The transport for one forge other than GitHub.
#[derive(Debug)]
pub(crate) struct TokenTransport {
    client: HttpClient,
    api_url: String,
    auth: TokenAuth,
    clock: Arc<dyn Clock>,
}

impl TokenTransport {
    pub(crate) fn new(
        client: HttpClient,
        api_url: &str,
        auth: TokenAuth,
        clock: Arc<dyn Clock>,
    ) -> TokenTransport {
        TokenTransport {
            client,
            api_url: api_url.trim_end_matches('/').to_string(),
            auth,
            clock,
        }
    }

    /// The API base URL requests are sent under.
    pub(crate) fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Sends `request` once.
    pub(crate) async fn send(&self, request: &StatusRequest) -> Result<ForgeResponse, Failure> {
        let (name, value, secrets) = self.auth.header().await?;
        let mut headers = vec![(name, value)];
        for (k, v) in &request.headers {
            headers.push((HeaderName::from_static(k), HeaderValue::from_static(v)));
        }
        let url = format!("{}{}", self.api_url, request.path);
        let clock = self.clock.clone();
        self.client
            .send_json(
                request.method.clone(),
                &url,
                headers,
                &request.body,
                &secrets,
                move || clock.wall(),
            )
            .await
    }

    /// Sends the read `request` once (a `GET`, without a body).
    pub(crate) async fn read(&self, request: &StatusRequest) -> Result<ReadAnswer, Failure> {
        let (name, value, secrets) = self.auth.header().await?;
        let mut headers = vec![(name, value)];
        for (k, v) in &request.headers {
            headers.push((HeaderName::from_static(k), HeaderValue::from_static(v)));
        }
        let url = format!("{}{}", self.api_url, request.path);
        let clock = self.clock.clone();
        self.client
            .get(&url, headers, &secrets, move || clock.wall())
            .await
    }

    /// Forgets the cached credential.
    pub(crate) fn invalidate(&self) {
        self.auth.source().invalidate();
    }
}
