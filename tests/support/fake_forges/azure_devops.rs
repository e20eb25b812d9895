//! Fake Azure DevOps: `POST /{org}/{project}/_apis/git/repositories/{repo}/commits/{sha}/statuses`
//! (collection paths allowed in front) requiring `api-version=7.1`, a PAT as Basic auth with
//! any user, `context.name`, and a valid state; `GET` on the same path lists the commit's
//! statuses newest first (`latestOnly`, `top`, `skip`). Like the real service, a bad PAT gets a
//! 203 sign-in page rather than a 401.

use std::collections::HashSet;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::{
    ForgeLogic, Recorded, Reply, basic_credentials, is_sha, known_fields, object_body, string_field,
};

/// The fake's state.
#[derive(Debug)]
pub struct AzureDevOpsFake {
    pub pat: String,
    /// Statuses posted: (org/project..., repo, sha, body).
    pub statuses: Vec<(String, String, String, Value)>,
}

impl AzureDevOpsFake {
    pub fn new(pat: &str) -> AzureDevOpsFake {
        AzureDevOpsFake {
            pat: pat.to_string(),
            statuses: Vec::new(),
        }
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"$id": "1", "message": message, "typeKey": "InvalidArgumentValueException"}),
        )
    }
}

impl AzureDevOpsFake {
    /// `GET .../commits/{sha}/statuses`: newest first; with `latestOnly=true` only the newest
    /// of each (genre, name).
    fn list(&self, request: &Recorded, scope: &str, repo: &str, sha: &str) -> Reply {
        let number = |name: &str| request.query(name).and_then(|v| v.parse::<usize>().ok());
        let top = number("top").unwrap_or(1000);
        let skip = number("skip").unwrap_or(0);
        let latest_only = request.query("latestOnly") == Some("true");
        let mut seen = HashSet::new();
        let listed: Vec<Value> = self
            .statuses
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, (s, r, c, _))| s == scope && r == repo && c == sha)
            .filter(|(_, (_, _, _, body))| {
                !latest_only
                    || seen.insert((
                        body["context"]["genre"].as_str().unwrap_or("").to_string(),
                        body["context"]["name"].as_str().unwrap_or("").to_string(),
                    ))
            })
            .map(|(i, (_, _, _, body))| {
                let mut status = body.clone();
                status["id"] = json!(i + 1);
                status
            })
            .skip(skip)
            .take(top)
            .collect();
        Reply::json(200, json!({"count": listed.len(), "value": listed}))
    }
}

impl ForgeLogic for AzureDevOpsFake {
    fn handle(&mut self, request: &Recorded, _now: SystemTime, _mono: Instant) -> Reply {
        let path = request.path_only();
        let Some((scope, rest)) = path.split_once("/_apis/git/repositories/") else {
            return Self::error(404, "The resource cannot be found.");
        };
        let scope_parts: Vec<&str> = scope.trim_start_matches('/').split('/').collect();
        let rest_parts: Vec<&str> = rest.split('/').collect();
        let [repo, "commits", sha, "statuses"] = rest_parts.as_slice() else {
            return Self::error(404, "The resource cannot be found.");
        };
        if scope_parts.len() < 2 || scope_parts.iter().any(|p| p.is_empty()) {
            return Self::error(404, "The resource cannot be found.");
        }
        match request.query("api-version") {
            Some("7.1") => {}
            Some(v) => {
                return Self::error(
                    400,
                    &format!(
                        "The requested REST API version of {v} is out of range for this server."
                    ),
                );
            }
            None => return Self::error(400, "No api-version was supplied for the POST request."),
        }
        if request.method != "POST" && request.method != "GET" {
            return Self::error(405, "Method not allowed");
        }
        let pat_ok = request
            .header("authorization")
            .and_then(basic_credentials)
            .is_some_and(|(_, password)| password == self.pat);
        if !pat_ok {
            return Reply {
                raw: Some((
                    "text/html".into(),
                    "<html><title>Azure DevOps Services | Sign In</title></html>".into(),
                )),
                ..Reply::empty(203)
            };
        }
        if !is_sha(sha) {
            return Self::error(404, "The commit cannot be found.");
        }
        let scope = scope.trim_start_matches('/');
        if request.method == "GET" {
            return self.list(request, scope, repo, sha);
        }
        let bad = |m: &str| Self::error(400, m);
        let body = match object_body(request, bad) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let checked = (|| {
            known_fields(
                &body,
                &["state", "description", "targetUrl", "context", "creator"],
                bad,
            )?;
            let state = string_field(&body, "state", true, None, bad)?.unwrap_or_default();
            if ![
                "notSet",
                "pending",
                "succeeded",
                "failed",
                "error",
                "notApplicable",
                "partiallySucceeded",
            ]
            .contains(&state.as_str())
            {
                return Err(bad(&format!("Value '{state}' is not valid for state")));
            }
            string_field(&body, "description", false, None, bad)?;
            string_field(&body, "targetUrl", false, None, bad)?;
            let Some(Value::Object(context)) = body.get("context") else {
                return Err(bad("The context name must be specified."));
            };
            known_fields(context, &["name", "genre"], bad)?;
            string_field(context, "name", true, None, |_| {
                bad("The context name must be specified.")
            })?;
            string_field(context, "genre", false, None, bad)?;
            Ok(())
        })();
        if let Err(r) = checked {
            return r;
        }
        self.statuses.push((
            scope.to_string(),
            repo.to_string(),
            sha.to_string(),
            Value::Object(body.clone()),
        ));
        let mut answer = Value::Object(body);
        answer["id"] = json!(self.statuses.len());
        Reply::json(201, answer)
    }
}
