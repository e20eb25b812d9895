//! Fake Gitea / Forgejo: `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}` with
//! `Authorization: token <t>` (or Bearer, or Basic) and a valid state; `GET` of
//! `.../commits/{sha}/statuses` (every status, newest first) and `.../commits/{sha}/status`
//! (the latest of each context), paged with `page` and `limit` (at most 50), each status's
//! state in a field named `status` as Gitea names it.

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

impl GiteaFake {
    /// The statuses of `owner/repo`'s `sha`, newest first, as Gitea shows them.
    fn newest_first(&self, repo: &str, sha: &str) -> Vec<Value> {
        self.statuses
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, (r, s, _))| r == repo && s == sha)
            .map(|(i, (_, _, body))| {
                json!({
                    "id": i + 1,
                    "status": body["state"],
                    "context": body.get("context").cloned().unwrap_or(json!("")),
                    "description": body.get("description").cloned().unwrap_or(json!("")),
                    "target_url": body.get("target_url").cloned().unwrap_or(json!("")),
                })
            })
            .collect()
    }

    /// `GET .../commits/{sha}/statuses` or `.../status`.
    fn read(&self, request: &Recorded, repo: &str, sha: &str, combined: bool) -> Reply {
        if !self.authorized(request) {
            return Reply::message(401, "token is required");
        }
        if !is_sha(sha) {
            return Reply::message(404, "commit not found");
        }
        let number = |name: &str| request.query(name).and_then(|v| v.parse::<usize>().ok());
        let limit = number("limit").unwrap_or(30).clamp(1, 50);
        let page = number("page").unwrap_or(1).max(1);
        let mut statuses = self.newest_first(repo, sha);
        if combined {
            let mut seen = HashSet::new();
            statuses.retain(|s| seen.insert(s["context"].as_str().unwrap_or("").to_string()));
        }
        let total = statuses.len();
        let page: Vec<Value> = statuses
            .into_iter()
            .skip((page - 1) * limit)
            .take(limit)
            .collect();
        if !combined {
            return Reply::json(200, Value::Array(page)).header("x-total-count", total);
        }
        // Gitea's combined state is the worst of the page's.
        let state = ["error", "failure", "warning", "pending", "success"]
            .into_iter()
            .find(|state| page.iter().any(|s| s["status"] == json!(state)))
            .unwrap_or("");
        Reply::json(
            200,
            json!({"state": state, "sha": sha, "total_count": page.len(), "statuses": page}),
        )
        .header("x-total-count", total)
    }
}

impl ForgeLogic for GiteaFake {
    fn handle(&mut self, request: &Recorded, _now: SystemTime, _mono: Instant) -> Reply {
        let Some(path) = request.path_only().strip_prefix(self.prefix.as_str()) else {
            return Reply::message(404, "not found");
        };
        let parts: Vec<&str> = path.split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            (
                "GET",
                [
                    "",
                    "api",
                    "v1",
                    "repos",
                    owner,
                    repo,
                    "commits",
                    sha,
                    "statuses",
                ],
            ) => {
                return self.read(request, &format!("{owner}/{repo}"), sha, false);
            }
            (
                "GET",
                [
                    "",
                    "api",
                    "v1",
                    "repos",
                    owner,
                    repo,
                    "commits",
                    sha,
                    "status",
                ],
            ) => {
                return self.read(request, &format!("{owner}/{repo}"), sha, true);
            }
            _ => {}
        }
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
