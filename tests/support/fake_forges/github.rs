//! Fake GitHub (and GitHub Enterprise Server under `/api/v3`): commit statuses (created, listed
//! newest first, and the combined view of the latest status per context, both paged), the
//! GitHub App token exchange (JWTs verified with the app's public key), installation look-up,
//! the 1000-statuses-per-context cap, a secondary rate limit on posts and `x-ratelimit-*`
//! headers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::{ForgeLogic, Recorded, Reply, epoch, is_sha, known_fields, object_body, string_field};

/// GitHub's answer to a status over the per-context cap.
pub const CAP_MESSAGE: &str = "This SHA and context has reached the maximum number of statuses.";

/// A GitHub App the fake knows.
#[derive(Debug, Clone)]
pub struct FakeApp {
    pub app_id: u64,
    pub public_key_pem: String,
    /// Installation id per owner.
    pub installations: HashMap<String, u64>,
    /// How long issued installation tokens live.
    pub token_lifetime: Duration,
    /// `(installation, token, expires_at)` of every token issued.
    pub issued: Vec<(u64, String, SystemTime)>,
    /// The `permissions` asked for in each exchange.
    pub requested_permissions: Vec<Value>,
}

/// The fake's state.
#[derive(Debug)]
pub struct GitHubFake {
    /// `""` for github.com, `"/api/v3"` for Enterprise Server.
    pub prefix: String,
    /// Personal access tokens accepted.
    pub tokens: HashSet<String>,
    pub app: Option<FakeApp>,
    /// Statuses per (owner/repo, sha, lower-case context), oldest first.
    pub statuses: HashMap<(String, String, String), Vec<Value>>,
    /// GitHub's per-(sha, context) cap.
    pub cap: usize,
    /// Secondary rate limit: at most this many status posts in any 60 s.
    pub per_minute: Option<usize>,
    posts: VecDeque<Instant>,
    /// Secondary rate limit: at most this many status posts in any hour.
    pub per_hour: Option<usize>,
    posts_this_hour: VecDeque<Instant>,
    /// Posts refused by the secondary rate limit.
    pub rate_limited: usize,
    /// When each accepted status post arrived (the fake's clock).
    pub accepted_at: Vec<Instant>,
    /// Primary budget reported in `x-ratelimit-*`: (limit, remaining, reset epoch).
    pub budget: Option<(u64, u64, u64)>,
    next_id: u64,
}

impl GitHubFake {
    /// github.com accepting `token`.
    pub fn new(token: &str) -> GitHubFake {
        GitHubFake {
            prefix: String::new(),
            tokens: HashSet::from([token.to_string()]),
            app: None,
            statuses: HashMap::new(),
            cap: 1000,
            per_minute: None,
            posts: VecDeque::new(),
            per_hour: None,
            posts_this_hour: VecDeque::new(),
            rate_limited: 0,
            accepted_at: Vec::new(),
            budget: None,
            next_id: 1,
        }
    }

    /// Under `/api/v3`, as Enterprise Server.
    pub fn enterprise(mut self) -> GitHubFake {
        self.prefix = "/api/v3".into();
        self
    }

    /// Knows `app`.
    pub fn with_app(mut self, app: FakeApp) -> GitHubFake {
        self.app = Some(app);
        self
    }

    /// Refuses more than `n` status posts in any minute, as GitHub's secondary limit does.
    pub fn limit_per_minute(mut self, n: usize) -> GitHubFake {
        self.per_minute = Some(n);
        self
    }

    /// Refuses more than `n` status posts in any hour, as GitHub's secondary limit does.
    pub fn limit_per_hour(mut self, n: usize) -> GitHubFake {
        self.per_hour = Some(n);
        self
    }

    /// The most accepted posts that arrived within any 60 seconds.
    pub fn busiest_minute(&self) -> usize {
        let times = &self.accepted_at;
        let mut most = 0;
        let mut start = 0;
        for (end, t) in times.iter().enumerate() {
            while t.duration_since(times[start]) >= Duration::from_secs(60) {
                start += 1;
            }
            most = most.max(end + 1 - start);
        }
        most
    }

    /// Statuses stored for `repo`/`sha`/`context`.
    pub fn stored(&self, repo: &str, sha: &str, context: &str) -> Vec<Value> {
        self.statuses
            .get(&(repo.to_string(), sha.to_string(), context.to_lowercase()))
            .cloned()
            .unwrap_or_default()
    }

    fn unauthorized(message: &str) -> Reply {
        Reply::json(
            401,
            json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        )
    }

    fn validation(message: &str) -> Reply {
        Reply::json(
            422,
            json!({"message": "Validation Failed", "errors": [{"message": message}]}),
        )
    }

    fn bearer(request: &Recorded) -> Option<&str> {
        let header = request.header("authorization")?;
        header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("token "))
    }

    fn token_valid(&self, token: &str, now: SystemTime) -> bool {
        self.tokens.contains(token)
            || self.app.as_ref().is_some_and(|app| {
                app.issued
                    .iter()
                    .any(|(_, t, expires)| t == token && now < *expires)
            })
    }

    /// Verifies an app JWT: RS256 with the app's key, `iss` = app id, not expired, at most
    /// 10 minutes long, not issued in the future.
    fn verify_jwt(&self, request: &Recorded, now: SystemTime) -> Result<(), Reply> {
        let Some(app) = &self.app else {
            return Err(Self::unauthorized("Bad credentials"));
        };
        let token = Self::bearer(request)
            .ok_or_else(|| Self::unauthorized("A JSON web token could not be decoded"))?;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes())
            .expect("the fake's public key parses");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // Time claims are checked below against the fake's clock.
        validation.validate_exp = false;
        validation.required_spec_claims = HashSet::from(["iat".into(), "exp".into(), "iss".into()]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|_| Self::unauthorized("A JSON web token could not be decoded"))?;
        let claims = data.claims;
        let iss_ok =
            claims["iss"] == json!(app.app_id.to_string()) || claims["iss"] == json!(app.app_id);
        let now = epoch(now);
        let iat = claims["iat"].as_u64().unwrap_or(u64::MAX);
        let exp = claims["exp"].as_u64().unwrap_or(0);
        if !iss_ok {
            return Err(Self::unauthorized(
                "'Issuer' claim ('iss') must be an Integer",
            ));
        }
        if exp <= now {
            return Err(Self::unauthorized(
                "'Expiration time' claim ('exp') is too far in the past",
            ));
        }
        if iat > now + 60 {
            return Err(Self::unauthorized(
                "'Issued at' claim ('iat') must be an Integer representing a time in the past",
            ));
        }
        if exp - iat > 600 {
            return Err(Self::unauthorized(
                "'Expiration time' claim ('exp') is too far in the future",
            ));
        }
        Ok(())
    }

    fn rate_headers(&self, reply: Reply) -> Reply {
        match self.budget {
            Some((limit, remaining, reset)) => reply
                .header("x-ratelimit-limit", limit)
                .header("x-ratelimit-remaining", remaining)
                .header("x-ratelimit-reset", reset),
            None => reply,
        }
    }

    fn post_status(
        &mut self,
        request: &Recorded,
        rest: &str,
        now: SystemTime,
        mono: Instant,
    ) -> Reply {
        // rest: {owner}/{repo}/statuses/{sha}
        let parts: Vec<&str> = rest.split('/').collect();
        let [owner, repo, "statuses", sha] = parts.as_slice() else {
            return Reply::message(404, "Not Found");
        };
        match Self::bearer(request) {
            None => return Self::unauthorized("Requires authentication"),
            Some(t) if !self.token_valid(t, now) => return Self::unauthorized("Bad credentials"),
            Some(_) => {}
        }
        if !is_sha(sha) {
            return Self::validation("No commit found for SHA");
        }
        let body = match object_body(request, |m| {
            Reply::message(400, &format!("Problems parsing JSON: {m}"))
        }) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let checks = (|| {
            known_fields(
                &body,
                &["state", "target_url", "description", "context"],
                Self::validation,
            )?;
            let state =
                string_field(&body, "state", true, None, Self::validation)?.unwrap_or_default();
            if !["error", "failure", "pending", "success"].contains(&state.as_str()) {
                return Err(Self::validation(&format!(
                    "state `{state}` is not one of error, failure, pending, success"
                )));
            }
            string_field(&body, "description", false, Some(140), Self::validation)?;
            let context = string_field(&body, "context", false, Some(255), Self::validation)?
                .unwrap_or_else(|| "default".into());
            string_field(&body, "target_url", false, None, Self::validation)?;
            Ok((state, context))
        })();
        let (state, context) = match checks {
            Ok(v) => v,
            Err(r) => return r,
        };
        let minute = admit(
            &mut self.posts,
            self.per_minute,
            Duration::from_secs(60),
            mono,
        );
        // A post refused by the hourly limit has already counted against the minute: the fake
        // errs on the strict side.
        if !minute
            || !admit(
                &mut self.posts_this_hour,
                self.per_hour,
                Duration::from_secs(3600),
                mono,
            )
        {
            self.rate_limited += 1;
            return Reply::message(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            )
            .header("retry-after", 60);
        }
        let key = (
            format!("{owner}/{repo}"),
            sha.to_string(),
            context.to_lowercase(),
        );
        let stored = self.statuses.entry(key).or_default();
        if stored.len() >= self.cap {
            return Reply::json(
                422,
                json!({"message": "Validation Failed", "errors": [{"resource": "Status", "code": "custom", "message": CAP_MESSAGE}]}),
            );
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut status = Value::Object(body);
        status["id"] = json!(id);
        status["state"] = json!(state);
        status["context"] = json!(context);
        if status.get("description").is_none() {
            status["description"] = Value::Null;
        }
        stored.push(status.clone());
        self.accepted_at.push(mono);
        if let Some((_, remaining, _)) = &mut self.budget {
            *remaining = remaining.saturating_sub(1);
        }
        self.rate_headers(Reply::json(201, status))
    }

    /// Checks a read's credential and commit; the sha on success.
    fn authorize_read(&self, request: &Recorded, sha: &str, now: SystemTime) -> Result<(), Reply> {
        match Self::bearer(request) {
            None => return Err(Self::unauthorized("Requires authentication")),
            Some(t) if !self.token_valid(t, now) => {
                return Err(Self::unauthorized("Bad credentials"));
            }
            Some(_) => {}
        }
        if !is_sha(sha) {
            return Err(Reply::message(
                404,
                &format!("No commit found for SHA: {sha}"),
            ));
        }
        Ok(())
    }

    /// `per_page` (default 30, at most 100, as GitHub caps it) and `page` (from 1).
    fn paging(request: &Recorded) -> (usize, usize) {
        let number = |name: &str| request.query(name).and_then(|v| v.parse::<usize>().ok());
        let per_page = number("per_page").unwrap_or(30).clamp(1, 100);
        let page = number("page").unwrap_or(1).max(1);
        (per_page, page)
    }

    fn page_of(items: Vec<Value>, per_page: usize, page: usize) -> Vec<Value> {
        items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect()
    }

    fn spend_read(&mut self) {
        if let Some((_, remaining, _)) = &mut self.budget {
            *remaining = remaining.saturating_sub(1);
        }
    }

    /// `GET /repos/{owner}/{repo}/commits/{sha}/status`: the latest status of each context,
    /// oldest first.
    fn combined(&mut self, request: &Recorded, repo: &str, sha: &str, now: SystemTime) -> Reply {
        if let Err(r) = self.authorize_read(request, sha, now) {
            return r;
        }
        let mut latest: Vec<Value> = self
            .statuses
            .iter()
            .filter(|((r, s, _), list)| r == repo && s == sha && !list.is_empty())
            .filter_map(|(_, list)| list.last().cloned())
            .collect();
        latest.sort_by_key(|s| s["id"].as_u64());
        let total = latest.len();
        let states: Vec<&str> = latest.iter().filter_map(|s| s["state"].as_str()).collect();
        let state = if states.iter().any(|s| *s == "error" || *s == "failure") {
            "failure"
        } else if states.is_empty() || states.contains(&"pending") {
            "pending"
        } else {
            "success"
        };
        let (per_page, page) = Self::paging(request);
        self.spend_read();
        self.rate_headers(Reply::json(
            200,
            json!({
                "state": state,
                "sha": sha,
                "total_count": total,
                "statuses": Self::page_of(latest, per_page, page),
            }),
        ))
    }

    /// `GET /repos/{owner}/{repo}/commits/{sha}/statuses`: every status, newest first.
    fn listed(&mut self, request: &Recorded, repo: &str, sha: &str, now: SystemTime) -> Reply {
        if let Err(r) = self.authorize_read(request, sha, now) {
            return r;
        }
        let mut all: Vec<Value> = self
            .statuses
            .iter()
            .filter(|((r, s, _), _)| r == repo && s == sha)
            .flat_map(|(_, list)| list.iter().cloned())
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s["id"].as_u64()));
        let (per_page, page) = Self::paging(request);
        self.spend_read();
        self.rate_headers(Reply::json(
            200,
            Value::Array(Self::page_of(all, per_page, page)),
        ))
    }

    fn access_token(&mut self, request: &Recorded, installation: &str, now: SystemTime) -> Reply {
        if let Err(r) = self.verify_jwt(request, now) {
            return r;
        }
        let Some(app) = &mut self.app else {
            return Reply::message(404, "Not Found");
        };
        let Ok(id) = installation.parse::<u64>() else {
            return Reply::message(404, "Not Found");
        };
        if !app.installations.values().any(|i| *i == id) {
            return Reply::message(404, "Not Found");
        }
        if !request.raw_body.is_empty() {
            match &request.body {
                Value::Object(map) => {
                    app.requested_permissions
                        .push(map.get("permissions").cloned().unwrap_or(Value::Null));
                }
                _ => return Reply::message(400, "Problems parsing JSON"),
            }
        }
        let token = format!("ghs_fake{:04}", app.issued.len() + 1);
        let expires = now + app.token_lifetime;
        app.issued.push((id, token.clone(), expires));
        let expires_at = jiff::Timestamp::from_second(epoch(expires) as i64)
            .unwrap()
            .to_string();
        Reply::json(201, json!({"token": token, "expires_at": expires_at}))
    }

    fn installation(&self, request: &Recorded, owner: &str, now: SystemTime) -> Reply {
        if let Err(r) = self.verify_jwt(request, now) {
            return r;
        }
        match self.app.as_ref().and_then(|a| a.installations.get(owner)) {
            Some(id) => Reply::json(200, json!({"id": id, "account": {"login": owner}})),
            None => Reply::message(404, "Not Found"),
        }
    }
}

impl ForgeLogic for GitHubFake {
    fn handle(&mut self, request: &Recorded, now: SystemTime, mono: Instant) -> Reply {
        let Some(path) = request.path_only().strip_prefix(self.prefix.as_str()) else {
            return Reply::message(404, "Not Found");
        };
        let path = path.to_string();
        match (
            request.method.as_str(),
            path.split('/').collect::<Vec<_>>().as_slice(),
        ) {
            ("POST", ["", "repos", ..]) => {
                let rest = path.trim_start_matches("/repos/").to_string();
                self.post_status(request, &rest, now, mono)
            }
            ("POST", ["", "app", "installations", id, "access_tokens"]) => {
                let id = id.to_string();
                self.access_token(request, &id, now)
            }
            ("GET", ["", "repos", owner, repo, "commits", sha, "status"]) => {
                let (repo, sha) = (format!("{owner}/{repo}"), sha.to_string());
                self.combined(request, &repo, &sha, now)
            }
            ("GET", ["", "repos", owner, repo, "commits", sha, "statuses"]) => {
                let (repo, sha) = (format!("{owner}/{repo}"), sha.to_string());
                self.listed(request, &repo, &sha, now)
            }
            ("GET", ["", "repos", owner, _, "installation"])
            | ("GET", ["", "orgs", owner, "installation"])
            | ("GET", ["", "users", owner, "installation"]) => {
                let owner = owner.to_string();
                self.installation(request, &owner, now)
            }
            _ => Reply::message(404, "Not Found"),
        }
    }
}

/// Whether a post at `now` fits `limit` posts per `window` given the earlier accepted ones in
/// `posts` (which it then joins); always, without a limit.
fn admit(
    posts: &mut VecDeque<Instant>,
    limit: Option<usize>,
    window: Duration,
    now: Instant,
) -> bool {
    let Some(limit) = limit else { return true };
    while posts
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        posts.pop_front();
    }
    if posts.len() >= limit {
        return false;
    }
    posts.push_back(now);
    true
}
