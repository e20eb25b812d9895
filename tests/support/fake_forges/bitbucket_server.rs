//! Fake Bitbucket Server / Data Center:
//! `POST {ctx}/rest/api/latest/projects/{key}/repos/{slug}/commits/{sha}/builds`, requiring
//! `X-Atlassian-Token: no-check`, Bearer or Basic auth, a key, a valid state and a `url` of at
//! most 450 characters, answering 204; and `GET` on the same path with `?key=` (required),
//! answering the build status or 404.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::{
    ForgeLogic, Recorded, Reply, basic_credentials, is_sha, known_fields, object_body,
    percent_decode, string_field,
};

/// The fake's state.
#[derive(Debug)]
pub struct BitbucketServerFake {
    /// Path before `/rest` (e.g. `/bitbucket`), or empty.
    pub context: String,
    pub bearer: Vec<String>,
    pub basic: Vec<(String, String)>,
    /// Latest build status per (PROJECT/slug, sha, key).
    pub builds: HashMap<(String, String, String), Value>,
}

impl BitbucketServerFake {
    pub fn new(token: &str) -> BitbucketServerFake {
        BitbucketServerFake {
            context: String::new(),
            bearer: vec![token.to_string()],
            basic: Vec::new(),
            builds: HashMap::new(),
        }
    }

    fn errors(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"errors": [{"context": null, "message": message}]}),
        )
    }
}

impl ForgeLogic for BitbucketServerFake {
    fn handle(&mut self, request: &Recorded, _now: SystemTime, _mono: Instant) -> Reply {
        let Some(path) = request.path_only().strip_prefix(self.context.as_str()) else {
            return Self::errors(404, "Not found");
        };
        let parts: Vec<&str> = path.split('/').collect();
        let [
            "",
            "rest",
            "api",
            "latest",
            "projects",
            project,
            "repos",
            slug,
            "commits",
            sha,
            "builds",
        ] = parts.as_slice()
        else {
            return Self::errors(404, "Not found");
        };
        if request.method != "POST" && request.method != "GET" {
            return Self::errors(405, "Method not allowed");
        }
        // The XSRF check guards changes only.
        if request.method == "POST" && request.header("x-atlassian-token") != Some("no-check") {
            return Reply {
                raw: Some(("text/plain".into(), "XSRF check failed".into())),
                ..Reply::empty(403)
            };
        }
        let authorized = match request.header("authorization") {
            Some(h) if h.starts_with("Bearer ") => self
                .bearer
                .iter()
                .any(|t| Some(t.as_str()) == h.strip_prefix("Bearer ")),
            Some(h) => basic_credentials(h).is_some_and(|p| self.basic.contains(&p)),
            None => false,
        };
        if !authorized {
            return Self::errors(
                401,
                "Authentication failed. Please check your credentials and try again.",
            );
        }
        if !is_sha(sha) {
            return Self::errors(404, "Commit not found");
        }
        if request.method == "GET" {
            let Some(key) = request.query("key").and_then(percent_decode) else {
                return Self::errors(400, "A build status key is required.");
            };
            return match self.builds.get(&(
                format!("{project}/{slug}"),
                sha.to_string(),
                key.clone(),
            )) {
                Some(build) => Reply::json(200, build.clone()),
                None => Self::errors(
                    404,
                    &format!("No build status with key '{key}' exists on commit {sha}."),
                ),
            };
        }
        let bad = |m: &str| Self::errors(400, m);
        let body = match object_body(request, bad) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let checked = (|| {
            known_fields(
                &body,
                &[
                    "key",
                    "state",
                    "url",
                    "name",
                    "description",
                    "ref",
                    "buildNumber",
                    "duration",
                    "parent",
                    "testResults",
                ],
                bad,
            )?;
            let key = string_field(&body, "key", true, Some(255), bad)?.unwrap_or_default();
            let state = string_field(&body, "state", true, None, bad)?.unwrap_or_default();
            if !["INPROGRESS", "SUCCESSFUL", "FAILED", "CANCELLED", "UNKNOWN"]
                .contains(&state.as_str())
            {
                return Err(bad(&format!("Invalid state: {state}")));
            }
            string_field(&body, "url", true, Some(450), bad)?;
            string_field(&body, "name", false, Some(255), bad)?;
            string_field(&body, "description", false, Some(255), bad)?;
            Ok(key)
        })();
        let key = match checked {
            Ok(k) => k,
            Err(r) => return r,
        };
        self.builds.insert(
            (format!("{project}/{slug}"), sha.to_string(), key),
            Value::Object(body),
        );
        Reply::empty(204)
    }
}
