//! Fake GitLab: `POST /api/v4/projects/{id}/statuses/{sha}` with the project as a numeric id
//! or a URL-encoded full path, `PRIVATE-TOKEN` or Bearer auth, 255-character limits, and the
//! state machine that refuses re-posting an in-progress state.

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

impl ForgeLogic for GitLabFake {
    fn handle(&mut self, request: &Recorded, _now: SystemTime, _mono: Instant) -> Reply {
        let path = request.path_only();
        let Some(rest) = path.strip_prefix("/api/v4/projects/") else {
            return Reply::message(404, "404 Not Found");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [raw_id, "statuses", sha] = parts.as_slice() else {
            return Reply::message(404, "404 Not Found");
        };
        if request.method != "POST" {
            return Reply::message(405, "405 Method Not Allowed");
        }
        let token = request.header("private-token").or_else(|| {
            request
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
        });
        if !token.is_some_and(|t| self.tokens.contains(t)) {
            return Reply::message(401, "401 Unauthorized");
        }
        let Some(project) = self.project_id(raw_id) else {
            return Reply::message(404, "404 Project Not Found");
        };
        if !is_sha(sha) {
            return Reply::message(404, "404 Commit Not Found");
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
        let reply = Reply::json(
            201,
            json!({"id": 1, "sha": sha, "status": state, "name": name}),
        );
        match self.budget {
            Some((limit, remaining, reset)) => reply
                .header("RateLimit-Limit", limit)
                .header("RateLimit-Remaining", remaining)
                .header("RateLimit-Reset", reset),
            None => reply,
        }
    }
}

/// The GitLab state stored for `project`/`sha`/`name`.
pub fn state_of(fake: &GitLabFake, project: u64, sha: &str, name: &str) -> Option<Value> {
    fake.current
        .get(&(project, sha.to_string(), name.to_string()))
        .map(|s| json!(s))
}
