//! The token transport, shared by every forge other than GitHub: the shared HTTP client plus
//! the forge's way of presenting its credential (from its [`super::profile`]).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};

use super::answer::{Failure, ReadAnswer};
use super::credentials::{CredentialSources, SecretSource};
use super::http::{HttpClient, basic, sensitive};
use super::request::StatusRequest;
use super::transport::Transport;
use crate::clock::Clock;
use crate::config::{Credentials, ForgeConfig};
use crate::model::ForgeKind;
use crate::model::StatusUpdate;
use crate::model::profile::{CredentialKind, TokenForm};

/// A configured credential the forge does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{credential} credentials do not work with {kind}")]
pub struct UnsupportedCredential {
    /// The configuration key of the credential.
    pub credential: &'static str,
    /// The forge.
    pub kind: ForgeKind,
}

/// The configuration's credential kind.
pub(crate) fn credential_kind(credentials: &Credentials) -> CredentialKind {
    match credentials {
        Credentials::Token(_) => CredentialKind::Token,
        Credentials::Basic { .. } => CredentialKind::Basic,
        Credentials::GitHubApp { .. } => CredentialKind::GitHubApp,
    }
}

/// How a credential is presented.
#[derive(Debug, Clone)]
pub(crate) enum TokenAuth {
    /// A token, in the forge's form.
    Token(TokenForm, SecretSource),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        username: String,
        password: SecretSource,
    },
}

impl TokenAuth {
    /// The credential form `forge`'s kind expects for the configured credentials.
    pub(crate) fn for_forge(
        forge: &ForgeConfig,
        sources: &CredentialSources,
    ) -> Result<TokenAuth, UnsupportedCredential> {
        let accepted = forge.kind.accepts(credential_kind(&forge.credentials));
        match &forge.credentials {
            Credentials::Token(r) if accepted => Ok(TokenAuth::Token(
                forge.kind.profile().token_form,
                sources.source(r),
            )),
            Credentials::Basic { username, password } if accepted => Ok(TokenAuth::Basic {
                username: username.clone(),
                password: sources.source(password),
            }),
            other => Err(UnsupportedCredential {
                credential: credential_kind(other).as_str(),
                kind: forge.kind,
            }),
        }
    }

    fn source(&self) -> &SecretSource {
        match self {
            TokenAuth::Token(_, s) => s,
            TokenAuth::Basic { password, .. } => password,
        }
    }

    /// The header carrying the credential, and the texts to keep out of messages.
    async fn header(&self) -> Result<(HeaderName, HeaderValue, Vec<String>), Failure> {
        let secret = self.source().get().await?;
        let raw = secret.expose();
        let (name, value) = match self {
            TokenAuth::Token(TokenForm::Bearer, _) => {
                (http::header::AUTHORIZATION, format!("Bearer {raw}"))
            }
            TokenAuth::Token(TokenForm::Token, _) => {
                (http::header::AUTHORIZATION, format!("token {raw}"))
            }
            TokenAuth::Token(TokenForm::PrivateToken, _) => {
                (HeaderName::from_static("private-token"), raw.to_string())
            }
            TokenAuth::Token(TokenForm::BasicEmptyUser, _) => {
                (http::header::AUTHORIZATION, basic("", raw))
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

    /// Sends `request` once: a `GET` without a body, anything else with its JSON body.
    async fn exchange(&self, request: &StatusRequest) -> Result<ReadAnswer, Failure> {
        let (name, value, secrets) = self.auth.header().await?;
        let mut headers = vec![(name, value)];
        for (k, v) in &request.headers {
            headers.push((HeaderName::from_static(k), HeaderValue::from_static(v)));
        }
        let url = format!("{}{}", self.api_url, request.path);
        let body = (request.method != http::Method::GET).then_some(&request.body);
        let clock = self.clock.clone();
        self.client
            .exchange(
                request.method.clone(),
                &url,
                headers,
                body,
                &secrets,
                move || clock.wall(),
            )
            .await
    }
}

impl Transport for TokenTransport {
    fn send<'a>(
        &'a self,
        _update: &'a StatusUpdate,
        request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>> {
        Box::pin(self.exchange(request))
    }

    fn credential_refused(&self) {
        self.auth.source().invalidate();
    }
}
