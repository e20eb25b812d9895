//! Fake Bitbucket Cloud: `POST /2.0/repositories/{workspace}/{slug}/commit/{sha}/statuses/build`
//! and `GET .../statuses/build/{key}` (404 when there is none) with Basic (app password) or
//! Bearer auth, keys of at most 40 characters, a required `url`, and statuses replaced by key.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::{
    ForgeLogic, Recorded, Reply, basic_credentials, is_sha, known_fields, object_body,
    percent_decode, string_field,
};

/// The fake's state.
#[derive(Debug)]
pub struct BitbucketCloudFake {
    /// Accepted `user:app_password` pairs.
    pub basic: Vec<(String, String)>,
    /// Accepted access tokens.
    pub bearer: Vec<String>,
    /// Latest status per (workspace/slug, sha, key).
    pub statuses: HashMap<(String, String, String), Value>,
}

impl BitbucketCloudFake {
    pub fn new() -> BitbucketCloudFake {
        BitbucketCloudFake {
            basic: Vec::new(),
            bearer: Vec::new(),
            statuses: HashMap::new(),
        }
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"type": "error", "error": {"message": message}}),
        )
    }

    fn authorized(&self, request: &Recorded) -> bool {
        let Some(header) = request.header("authorization") else {
            return false;
        };
        if let Some(token) = header.strip_prefix("Bearer ") {
            return self.bearer.iter().any(|t| t == token);
        }
        basic_credentials(header).is_some_and(|pair| self.basic.contains(&pair))
    }
}

impl BitbucketCloudFake {
    /// `GET .../commit/{sha}/statuses/build/{key}`.
    fn read(&self, request: &Recorded, repo: String, sha: &str, raw_key: &str) -> Reply {
        if request.method != "GET" {
            return Self::error(405, "Method not allowed");
        }
        if !self.authorized(request) {
            return Self::error(401, "Unauthorized");
        }
        if !is_sha(sha) {
            return Self::error(404, "Commit not found");
        }
        let Some(key) = percent_decode(raw_key) else {
            return Self::error(400, "Invalid key");
        };
        match self.statuses.get(&(repo, sha.to_string(), key)) {
            Some(status) => {
                let mut status = status.clone();
                status["type"] = json!("build");
                Reply::json(200, status)
            }
            None => Self::error(404, "No such build status"),
        }
    }
}

impl ForgeLogic for BitbucketCloudFake {
    fn handle(&mut self, request: &Recorded, _now: SystemTime, _mono: Instant) -> Reply {
        let parts: Vec<&str> = request.path_only().split('/').collect();
        if let [
            "",
            "2.0",
            "repositories",
            workspace,
            slug,
            "commit",
            sha,
            "statuses",
            "build",
            key,
        ] = parts.as_slice()
        {
            return self.read(request, format!("{workspace}/{slug}"), sha, key);
        }
        let [
            "",
            "2.0",
            "repositories",
            workspace,
            slug,
            "commit",
            sha,
            "statuses",
            "build",
        ] = parts.as_slice()
        else {
            return Self::error(404, "Resource not found");
        };
        if request.method != "POST" {
            return Self::error(405, "Method not allowed");
        }
        if !self.authorized(request) {
            return Self::error(401, "Unauthorized");
        }
        if !is_sha(sha) {
            return Self::error(404, "Commit not found");
        }
        let bad = |m: &str| Self::error(400, m);
        let body = match object_body(request, bad) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let checked = (|| {
            known_fields(
                &body,
                &["key", "state", "name", "description", "url", "refname"],
                bad,
            )?;
            let key = string_field(&body, "key", true, Some(40), |_| {
                bad("key: Ensure this value has at most 40 characters")
            })?
            .unwrap_or_default();
            let state = string_field(&body, "state", true, None, bad)?.unwrap_or_default();
            if !["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"].contains(&state.as_str()) {
                return Err(bad(&format!("state: `{state}` is not a valid choice")));
            }
            string_field(&body, "url", true, None, |_| {
                bad("url: This field is required.")
            })?;
            string_field(&body, "name", false, None, bad)?;
            string_field(&body, "description", false, None, bad)?;
            Ok(key)
        })();
        let key = match checked {
            Ok(k) => k,
            Err(r) => return r,
        };
        let id = (format!("{workspace}/{slug}"), sha.to_string(), key);
        let existed = self
            .statuses
            .insert(id, Value::Object(body.clone()))
            .is_some();
        Reply::json(if existed { 200 } else { 201 }, Value::Object(body))
    }
}
