//! Fake GitLab: `POST /api/v4/projects/{id}/statuses/{sha}` and
//! `GET /api/v4/projects/{id}/repository/commits/{sha}/statuses` (filtered by `name`, latest per
//! name unless `all`, ascending ids, paged) with the project as a numeric id or a URL-encoded
//! full path, `PRIVATE-TOKEN` or Bearer auth, 255-character limits, and the state machine that
//! refuses re-posting an in-progress state.

use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::{
    ForgeLogic, Recorded, Reply, is_sha, known_fields, object_body, percent_decode, string_field,
};

/// The fake's state.
#[derive(Debug)]
pub struct GitLabFake {
    pub tokens: HashSet<String>,
    /// Numeric id per full path.
    pub projects: HashMap<String, u64>,
    /// Current state per (project id, sha, name).
    pub current: HashMap<(u64, String, String), String>,
    /// Every status created, oldest first: `{id, project, sha, name, status, description, ...}`.
    pub statuses: Vec<Value>,
    /// `RateLimit-*` headers: (limit, remaining, reset epoch).
    pub budget: Option<(u64, u64, u64)>,
}

impl GitLabFake {
    /// Accepts `token` for the `projects` (full path, id).
    pub fn new(token: &str, projects: &[(&str, u64)]) -> GitLabFake {
        GitLabFake {
            tokens: HashSet::from([token.to_string()]),
            projects: projects
                .iter()
                .map(|(p, id)| (p.to_string(), *id))
                .collect(),
            current: HashMap::new(),
            statuses: Vec::new(),
            budget: None,
        }
    }

    fn bad(field_message: &str) -> Reply {
        Reply::json(400, json!({"message": field_message}))
    }

    fn project_id(&self, raw: &str) -> Option<u64> {
        // A literal `/` would have split the path: only ids and encoded paths reach here.
        if let Ok(id) = raw.parse::<u64>() {
            return self.projects.values().any(|p| *p == id).then_some(id);
        }
        let path = percent_decode(raw)?;
        self.projects.get(&path).copied()
    }
}

impl GitLabFake {
    fn authorized(&self, request: &Recorded) -> bool {
        let token = request.header("private-token").or_else(|| {
            request
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
        });
        token.is_some_and(|t| self.tokens.contains(t))
    }

    fn with_budget(&self, reply: Reply) -> Reply {
        match self.budget {
            Some((limit, remaining, reset)) => reply
                .header("RateLimit-Limit", limit)
                .header("RateLimit-Remaining", remaining)
                .header("RateLimit-Reset", reset),
            None => reply,
        }
    }

    /// `GET .../repository/commits/{sha}/statuses`.
    fn list(&self, request: &Recorded, project: u64, sha: &str) -> Reply {
        let query = |name: &str| request.query(name).and_then(percent_decode);
        let name = query("name");
        let all = query("all").is_some_and(|v| v == "true");
        let number = |name: &str| query(name).and_then(|v| v.parse::<usize>().ok());
        let per_page = number("per_page").unwrap_or(20).clamp(1, 100);
        let page = number("page").unwrap_or(1).max(1);
        let mut matching: Vec<&Value> = self
            .statuses
            .iter()
            .filter(|s| s["project"] == json!(project) && s["sha"] == json!(sha))
            .filter(|s| name.as_ref().is_none_or(|n| s["name"] == json!(n)))
            .collect();
        if !all {
            // The latest status of each name only.
            let mut latest: HashMap<String, &Value> = HashMap::new();
            for s in matching {
                latest.insert(s["name"].as_str().unwrap_or("").to_string(), s);
            }
            matching = latest.into_values().collect();
            matching.sort_by_key(|s| s["id"].as_u64());
        }
        let listed: Vec<Value> = matching
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .cloned()
            .collect();
        self.with_budget(Reply::json(200, Value::Array(listed)))
    }
}

impl ForgeLogic for GitLabFake {
    fn handle(&mut self, request: &Recorded, _now: SystemTime, _mono: Instant) -> Reply {
        let path = request.path_only();
        let Some(rest) = path.strip_prefix("/api/v4/projects/") else {
            return Reply::message(404, "404 Not Found");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let (raw_id, sha, reading) = match parts.as_slice() {
            [raw_id, "statuses", sha] => (*raw_id, *sha, false),
            [raw_id, "repository", "commits", sha, "statuses"] => (*raw_id, *sha, true),
            _ => return Reply::message(404, "404 Not Found"),
        };
        let expected = if reading { "GET" } else { "POST" };
        if request.method != expected {
            return Reply::message(405, "405 Method Not Allowed");
        }
        if !self.authorized(request) {
            return Reply::message(401, "401 Unauthorized");
        }
        let Some(project) = self.project_id(raw_id) else {
            return Reply::message(404, "404 Project Not Found");
        };
        if !is_sha(sha) {
            return Reply::message(404, "404 Commit Not Found");
        }
        if reading {
            return self.list(request, project, sha);
        }
        let body = match object_body(request, Self::bad) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let checked = (|| {
            known_fields(
                &body,
                &[
                    "state",
                    "ref",
                    "name",
                    "context",
                    "target_url",
                    "description",
                    "coverage",
                    "pipeline_id",
                ],
                Self::bad,
            )?;
            let state = string_field(&body, "state", true, None, |_| {
                Reply::json(400, json!({"error": "state is missing"}))
            })?
            .unwrap_or_default();
            if ![
                "pending", "running", "success", "failed", "canceled", "skipped",
            ]
            .contains(&state.as_str())
            {
                return Err(Reply::json(
                    400,
                    json!({"error": "state does not have a valid value"}),
                ));
            }
            let too_long = |m: &str| Reply::json(400, json!({"message": {"base": [m]}}));
            let name = string_field(&body, "name", false, Some(255), too_long)?
                .or(string_field(&body, "context", false, Some(255), too_long)?)
                .unwrap_or_else(|| "default".into());
            for field in ["description", "target_url", "ref"] {
                string_field(&body, field, false, Some(255), too_long)?;
            }
            Ok((state, name))
        })();
        let (state, name) = match checked {
            Ok(v) => v,
            Err(r) => return r,
        };
        let key = (project, sha.to_string(), name.clone());
        if let Some(current) = self.current.get(&key)
            && (current == "pending" || current == "running")
        {
            let event = match state.as_str() {
                "pending" => Some("enqueue"),
                "running" if current == "running" => Some("run"),
                _ => None,
            };
            if let Some(event) = event {
                return Reply::message(
                    400,
                    &format!("Cannot transition status via :{event} from :{current}"),
                );
            }
        }
        self.current.insert(key, state.clone());
        let status = json!({
            "id": self.statuses.len() + 1,
            "project": project,
            "sha": sha,
            "status": state,
            "name": name,
            "description": body.get("description").cloned().unwrap_or(Value::Null),
            "target_url": body.get("target_url").cloned().unwrap_or(Value::Null),
        });
        self.statuses.push(status.clone());
        self.with_budget(Reply::json(201, status))
    }
}

/// The GitLab state stored for `project`/`sha`/`name`.
pub fn state_of(fake: &GitLabFake, project: u64, sha: &str, name: &str) -> Option<Value> {
    fake.current
        .get(&(project, sha.to_string(), name.to_string()))
        .map(|s| json!(s))
}
