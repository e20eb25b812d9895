//! Fake Gitea / Forgejo: `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}` with
//! `Authorization: token <t>` (or Bearer, or Basic) and a valid state.

use std::collections::HashSet;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::{
    ForgeLogic, Recorded, Reply, basic_credentials, is_sha, known_fields, object_body, string_field,
};

/// The fake's state.
#[derive(Debug)]
pub struct GiteaFake {
    /// Path before `/api/v1` (Gitea served under a sub-path), or empty.
    pub prefix: String,
    pub tokens: HashSet<String>,
    pub basic: Vec<(String, String)>,
    /// Statuses posted: (owner/repo, sha, body).
    pub statuses: Vec<(String, String, Value)>,
}

impl GiteaFake {
    pub fn new(token: &str) -> GiteaFake {
        GiteaFake {
            prefix: String::new(),
            tokens: HashSet::from([token.to_string()]),
            basic: Vec::new(),
            statuses: Vec::new(),
        }
    }

    fn authorized(&self, request: &Recorded) -> bool {
        let Some(h) = request.header("authorization") else {
            return false;
        };
        if let Some(t) = h
            .strip_prefix("token ")
            .or_else(|| h.strip_prefix("Bearer "))
        {
            return self.tokens.contains(t);
        }
        basic_credentials(h).is_some_and(|p| self.basic.contains(&p))
    }
}

impl ForgeLogic for GiteaFake {
    fn handle(&mut self, request: &Recorded, _now: SystemTime, _mono: Instant) -> Reply {
        let Some(path) = request.path_only().strip_prefix(self.prefix.as_str()) else {
            return Reply::message(404, "not found");
        };
        let parts: Vec<&str> = path.split('/').collect();
        let ["", "api", "v1", "repos", owner, repo, "statuses", sha] = parts.as_slice() else {
            return Reply::message(404, "not found");
        };
        if request.method != "POST" {
            return Reply::message(405, "method not allowed");
        }
        if !self.authorized(request) {
            return Reply::message(401, "token is required");
        }
        if !is_sha(sha) {
            return Reply::message(404, "commit not found");
        }
        let bad = |m: &str| Reply::json(422, json!({"message": m}));
        let body = match object_body(request, bad) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let checked = (|| {
            known_fields(
                &body,
                &["state", "target_url", "description", "context"],
                bad,
            )?;
            let state = string_field(&body, "state", true, None, bad)?.unwrap_or_default();
            if !["pending", "success", "error", "failure", "warning"].contains(&state.as_str()) {
                return Err(bad(&format!(
                    "[State]: invalid commit status state `{state}`"
                )));
            }
            for f in ["target_url", "description", "context"] {
                string_field(&body, f, false, None, bad)?;
            }
            Ok(())
        })();
        if let Err(r) = checked {
            return r;
        }
        self.statuses.push((
            format!("{owner}/{repo}"),
            sha.to_string(),
            Value::Object(body.clone()),
        ));
        Reply::json(201, Value::Object(body))
    }
}
