//! GitHub App authentication: a short-lived RS256 JWT signed with the app's private key buys
//! an installation token, cached until shortly before it expires. The installation is the
//! configured one, or looked up from the repository (`GET /repos/{owner}/{repo}/installation`,
//! which finds organisation and user installations alike) and remembered per owner.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use octocrab::Octocrab;
use serde::{Deserialize, Serialize};

use super::answer::{Failure, ForgeResponse};
use super::credentials::{CredentialError, SecretSource};
use super::github::API_VERSION;
use super::http::{reduce, sensitive};
use super::text::encode_segment;
use crate::clock::Clock;
use crate::secret::SecretString;

/// A token is renewed once it has less than this left.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// JWT `iat` is set this far in the past, allowing for clock drift (GitHub's advice).
const JWT_BACKDATE: Duration = Duration::from_secs(60);
/// JWT lifetime from now; GitHub refuses more than 10 minutes.
const JWT_LIFETIME: Duration = Duration::from_secs(540);

#[derive(Debug, Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

#[derive(Debug, Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: String,
}

struct CachedToken {
    token: SecretString,
    expires_at: SystemTime,
}

#[derive(Default)]
struct AppState {
    /// Installation id per lower-case owner.
    installations: HashMap<String, u64>,
    tokens: HashMap<u64, CachedToken>,
}

/// What asking for an installation token gave.
pub(crate) enum AppToken {
    Token(SecretString),
    /// GitHub refused a lookup or exchange; the answer is judged like any other.
    Refused(ForgeResponse),
}

/// One GitHub App's credentials and token cache.
pub(crate) struct GitHubApp {
    app_id: u64,
    installation_id: Option<u64>,
    private_key: SecretSource,
    // A tokio mutex: held across the exchange so that concurrent requests wait for one
    // refresh instead of each buying a token.
    state: tokio::sync::Mutex<AppState>,
}

impl GitHubApp {
    pub(crate) fn new(
        app_id: u64,
        installation_id: Option<u64>,
        private_key: SecretSource,
    ) -> GitHubApp {
        GitHubApp {
            app_id,
            installation_id,
            private_key,
            state: tokio::sync::Mutex::new(AppState::default()),
        }
    }

    /// Forgets cached tokens (GitHub refused one) and re-reads the key next time.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut state) = self.state.try_lock() {
            state.tokens.clear();
        }
        self.private_key.invalidate();
    }

    /// A valid installation token for `owner`'s installation.
    pub(crate) async fn installation_token(
        &self,
        crab: &Octocrab,
        clock: &dyn Clock,
        owner: &str,
        repo: &str,
    ) -> Result<AppToken, Failure> {
        let mut state = self.state.lock().await;
        let owner_key = owner.to_lowercase();
        let installation = match self
            .installation_id
            .or_else(|| state.installations.get(&owner_key).copied())
        {
            Some(id) => id,
            None => {
                let path = format!(
                    "/repos/{}/{}/installation",
                    encode_segment(owner),
                    encode_segment(repo)
                );
                let doing = format!("looking up the installation for {owner}");
                let body = match self.app_request(crab, clock, &path, None, &doing).await? {
                    Ok(body) => body,
                    Err(refused) => return Ok(AppToken::Refused(refused)),
                };
                let found: Installation = serde_json::from_slice(&body).map_err(|e| {
                    Failure::Transport(format!(
                        "GitHub App {}: unreadable installation for {owner}: {e}",
                        self.app_id
                    ))
                })?;
                state.installations.insert(owner_key, found.id);
                found.id
            }
        };
        let now = clock.wall();
        if let Some(cached) = state.tokens.get(&installation)
            && cached
                .expires_at
                .duration_since(now)
                .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY)
        {
            return Ok(AppToken::Token(cached.token.clone()));
        }
        let path = format!("/app/installations/{installation}/access_tokens");
        // Ask only for what we use: the token can write commit statuses and nothing else.
        let body = serde_json::json!({"permissions": {"statuses": "write"}});
        let doing = format!("exchanging a token for installation {installation}");
        let bytes = match self
            .app_request(crab, clock, &path, Some(&body), &doing)
            .await?
        {
            Ok(bytes) => bytes,
            Err(refused) => return Ok(AppToken::Refused(refused)),
        };
        let issued: AccessToken = serde_json::from_slice(&bytes).map_err(|_| {
            Failure::Transport(format!(
                "GitHub App {}: unreadable installation token answer",
                self.app_id
            ))
        })?;
        let expires_at = issued
            .expires_at
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| u64::try_from(t.as_second()).ok())
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
            .ok_or_else(|| {
                Failure::Transport(format!(
                    "GitHub App {}: unreadable token expiry `{}`",
                    self.app_id, issued.expires_at
                ))
            })?;
        let token = SecretString::new(issued.token);
        state.tokens.insert(
            installation,
            CachedToken {
                token: token.clone(),
                expires_at,
            },
        );
        Ok(AppToken::Token(token))
    }

    fn refused(&self, mut response: ForgeResponse, doing: &str) -> ForgeResponse {
        response.message = format!("GitHub App {}: {doing}: {}", self.app_id, response.message);
        response
    }

    /// The app's JWT, valid for a few minutes from the clock's now.
    fn jwt(&self, pem: &SecretString, now: SystemTime) -> Result<String, Failure> {
        let key = encoding_key(pem).map_err(|problem| {
            Failure::Credential(CredentialError::Unusable(format!(
                "GitHub App {}: {problem}",
                self.app_id
            )))
        })?;
        let epoch = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let claims = Claims {
            iat: (epoch.saturating_sub(JWT_BACKDATE)).as_secs(),
            exp: (epoch + JWT_LIFETIME).as_secs(),
            iss: self.app_id.to_string(),
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| {
            Failure::Credential(CredentialError::Unusable(format!(
                "GitHub App {}: cannot sign a JWT with the private key: {e}",
                self.app_id
            )))
        })
    }

    /// A request authenticated as the app itself, `GET` or (with a body) `POST`, while
    /// `doing` something: the body of a success, or the refusal saying what was being done.
    async fn app_request(
        &self,
        crab: &Octocrab,
        clock: &dyn Clock,
        path: &str,
        body: Option<&serde_json::Value>,
        doing: &str,
    ) -> Result<Result<bytes::Bytes, ForgeResponse>, Failure> {
        let method = match body {
            Some(_) => http::Method::POST,
            None => http::Method::GET,
        };
        let pem = self.private_key.get().await?;
        let jwt = self.jwt(&pem, clock.wall())?;
        let value = format!("Bearer {jwt}");
        let secrets = vec![value.clone(), jwt];
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::AUTHORIZATION, sensitive(&value)?)
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(payload)
            .map_err(|e| Failure::Invalid(format!("cannot build the request: {e}")))?;
        let (response, bytes) =
            reduce(crab.execute(request).await, &secrets, || clock.wall()).await?;
        if response.is_success() {
            Ok(Ok(bytes))
        } else {
            Ok(Err(self.refused(response, doing)))
        }
    }
}
/// Why a GitHub App private key cannot sign JWTs.
const NOT_RSA_PEM: &str = "the private key is not an RSA private key in PEM form";

/// The signing key in `pem`, or why it is unusable (never its content).
fn encoding_key(pem: &SecretString) -> Result<jsonwebtoken::EncodingKey, &'static str> {
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|_| NOT_RSA_PEM)
}

/// Checks that `pem` is a private key a GitHub App can sign its JWTs with (for `check-config`).
pub fn check_private_key(pem: &SecretString) -> Result<(), &'static str> {
    encoding_key(pem).map(|_| ())
}
