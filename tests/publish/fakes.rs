//! The fakes refuse what the real APIs refuse, so a test passing against them means something.
//! Raw requests go through the exporter's own HTTP client.

use std::time::SystemTime;

use flux_status_exporter::forge::http::HttpClient;
use http::{HeaderName, HeaderValue, Method};
use serde_json::{Value, json};

use crate::common::SHA;
use crate::support::fake_forges::azure_devops::AzureDevOpsFake;
use crate::support::fake_forges::bitbucket_cloud::BitbucketCloudFake;
use crate::support::fake_forges::bitbucket_server::BitbucketServerFake;
use crate::support::fake_forges::gitea::GiteaFake;
use crate::support::fake_forges::github::GitHubFake;
use crate::support::fake_forges::gitlab::GitLabFake;
use crate::support::fake_forges::{FakeServer, SkipClock};

/// POSTs `body` and returns the status and message.
async fn post(url: String, headers: &[(&str, &str)], body: Value) -> (u16, String) {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    let response = HttpClient::new()
        .unwrap()
        .send_json(Method::POST, &url, headers, &body, &[], SystemTime::now)
        .await
        .unwrap();
    (response.status, response.message)
}

#[tokio::test]
async fn the_github_fake_refuses_what_github_refuses() {
    let fake = FakeServer::start(GitHubFake::new("t"), SkipClock::new()).await;
    let url = format!("{}/repos/acme/app/statuses/{SHA}", fake.url());
    let auth = [("authorization", "Bearer t")];
    let ok = json!({"state": "success", "context": "c"});
    assert_eq!(post(url.clone(), &[], ok.clone()).await.0, 401);
    assert_eq!(
        post(url.clone(), &[("authorization", "Basic dDp0")], ok.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        post(
            format!("{}/repos/acme/statuses/{SHA}", fake.url()),
            &auth,
            ok.clone()
        )
        .await
        .0,
        404
    );
    assert_eq!(
        post(
            format!("{}/repos/acme/app/statuses/main", fake.url()),
            &auth,
            ok.clone()
        )
        .await,
        (422, "Validation Failed; No commit found for SHA".into())
    );
    let refused = [
        (
            json!({"state": "canceled"}),
            "state `canceled` is not one of error, failure, pending, success",
        ),
        (json!({"context": "c"}), "state is missing"),
        (
            json!({"state": "success", "description": "d".repeat(141)}),
            "description is too long (maximum is 140 characters)",
        ),
        (
            json!({"state": "success", "context": "c".repeat(256)}),
            "context is too long (maximum is 255 characters)",
        ),
        (
            json!({"state": "success", "status": "x"}),
            "unknown field `status`",
        ),
    ];
    for (body, message) in refused {
        assert_eq!(
            post(url.clone(), &auth, body).await,
            (422, format!("Validation Failed; {message}"))
        );
    }
    assert_eq!(post(url, &auth, ok).await.0, 201);
}

#[tokio::test]
async fn the_gitlab_fake_refuses_what_gitlab_refuses() {
    let fake = FakeServer::start(GitLabFake::new("t", &[("acme/app", 1)]), SkipClock::new()).await;
    let url = format!("{}/api/v4/projects/acme%2Fapp/statuses/{SHA}", fake.url());
    let auth = [("private-token", "t")];
    let ok = json!({"state": "pending", "name": "c"});
    assert_eq!(
        post(
            format!("{}/api/v4/projects/acme/app/statuses/{SHA}", fake.url()),
            &auth,
            ok.clone()
        )
        .await
        .0,
        404,
        "an unencoded path has the wrong shape"
    );
    assert_eq!(
        post(url.clone(), &[("authorization", "token t")], ok.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        post(url.clone(), &auth, json!({"state": "failure"}))
            .await
            .0,
        400
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"state": "success", "description": "d".repeat(256)})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"state": "success", "name": "n".repeat(256)})
        )
        .await
        .0,
        400
    );
    assert_eq!(post(url.clone(), &auth, ok.clone()).await.0, 201);
    assert_eq!(
        post(url.clone(), &auth, ok).await,
        (
            400,
            "Cannot transition status via :enqueue from :pending".into()
        )
    );
    assert_eq!(
        post(
            url,
            &[("authorization", "Bearer t")],
            json!({"state": "running", "name": "c"})
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn the_bitbucket_cloud_fake_refuses_what_bitbucket_refuses() {
    let mut logic = BitbucketCloudFake::new();
    logic.bearer.push("t".into());
    let fake = FakeServer::start(logic, SkipClock::new()).await;
    let url = format!(
        "{}/2.0/repositories/acme/app/commit/{SHA}/statuses/build",
        fake.url()
    );
    let auth = [("authorization", "Bearer t")];
    let ok = json!({"key": "k", "state": "SUCCESSFUL", "url": "https://x"});
    assert_eq!(post(url.clone(), &[], ok.clone()).await.0, 401);
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"key": "k".repeat(41), "state": "SUCCESSFUL", "url": "https://x"})
        )
        .await,
        (
            400,
            "key: Ensure this value has at most 40 characters".into()
        )
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"key": "k", "state": "SUCCESSFUL"})
        )
        .await,
        (400, "url: This field is required.".into())
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"key": "k", "state": "CANCELLED", "url": "https://x"})
        )
        .await
        .0,
        400
    );
    assert_eq!(post(url, &auth, ok).await.0, 201);
}

#[tokio::test]
async fn the_bitbucket_server_fake_refuses_what_the_server_refuses() {
    let fake = FakeServer::start(BitbucketServerFake::new("t"), SkipClock::new()).await;
    let url = format!(
        "{}/rest/api/latest/projects/P/repos/r/commits/{SHA}/builds",
        fake.url()
    );
    let auth = [
        ("authorization", "Bearer t"),
        ("x-atlassian-token", "no-check"),
    ];
    let ok = json!({"key": "k", "state": "SUCCESSFUL", "url": "https://x"});
    assert_eq!(
        post(url.clone(), &[("authorization", "Bearer t")], ok.clone()).await,
        (403, "XSRF check failed".into())
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"key": "k", "state": "STOPPED", "url": "https://x"})
        )
        .await,
        (400, "Invalid state: STOPPED".into())
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"key": "k", "state": "FAILED", "url": "u".repeat(451)})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"state": "FAILED", "url": "https://x"})
        )
        .await
        .0,
        400
    );
    assert_eq!(post(url, &auth, ok).await.0, 204);
}

#[tokio::test]
async fn the_azure_devops_fake_refuses_what_azure_devops_refuses() {
    let fake = FakeServer::start(AzureDevOpsFake::new("pat"), SkipClock::new()).await;
    let base = format!(
        "{}/org/proj/_apis/git/repositories/r/commits/{SHA}/statuses",
        fake.url()
    );
    let url = format!("{base}?api-version=7.1");
    let auth = [("authorization", "Basic OnBhdA==")];
    let ok = json!({"state": "succeeded", "context": {"name": "n", "genre": "g"}});
    assert_eq!(post(base, &auth, ok.clone()).await.0, 400);
    assert_eq!(
        post(
            url.clone(),
            &[("authorization", "Basic Onh4eA==")],
            ok.clone()
        )
        .await
        .0,
        203
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"state": "success", "context": {"name": "n"}})
        )
        .await,
        (400, "Value 'success' is not valid for state".into())
    );
    assert_eq!(
        post(
            url.clone(),
            &auth,
            json!({"state": "failed", "context": {"genre": "g"}})
        )
        .await,
        (400, "The context name must be specified.".into())
    );
    assert_eq!(post(url, &auth, ok).await.0, 201);
}

#[tokio::test]
async fn the_gitea_fake_refuses_what_gitea_refuses() {
    let fake = FakeServer::start(GiteaFake::new("t"), SkipClock::new()).await;
    let url = format!("{}/api/v1/repos/acme/app/statuses/{SHA}", fake.url());
    let ok = json!({"state": "success", "context": "c"});
    assert_eq!(
        post(url.clone(), &[("private-token", "t")], ok.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        post(
            url.clone(),
            &[("authorization", "token t")],
            json!({"state": "canceled"})
        )
        .await
        .0,
        422
    );
    assert_eq!(
        post(
            format!("{}/api/v1/repos/acme/statuses/{SHA}", fake.url()),
            &[("authorization", "token t")],
            ok.clone()
        )
        .await
        .0,
        404
    );
    assert_eq!(post(url, &[("authorization", "token t")], ok).await.0, 201);
}

/// GETs `url` and returns the status and the body as JSON (`Null` when not JSON).
async fn get(url: String, headers: &[(&str, &str)]) -> (u16, Value) {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    let answer = HttpClient::new()
        .unwrap()
        .get(&url, headers, &[], SystemTime::now)
        .await
        .unwrap();
    (
        answer.response.status,
        serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_github_fake_reads_back_what_was_posted_and_refuses_bad_reads() {
    let fake = FakeServer::start(GitHubFake::new("t"), SkipClock::new()).await;
    let auth = [("authorization", "Bearer t")];
    let post_url = format!("{}/repos/acme/app/statuses/{SHA}", fake.url());
    for (state, context) in [
        ("pending", "Flux/A"),
        ("success", "flux/a"),
        ("failure", "ci"),
    ] {
        let body = json!({"state": state, "context": context, "description": state});
        assert_eq!(post(post_url.clone(), &auth, body).await.0, 201);
    }
    let combined = format!("{}/repos/acme/app/commits/{SHA}/status", fake.url());
    assert_eq!(get(combined.clone(), &[]).await.0, 401);
    assert_eq!(
        get(combined.clone(), &[("authorization", "Bearer wrong")])
            .await
            .0,
        401
    );
    assert_eq!(
        get(
            format!("{}/repos/acme/commits/{SHA}/status", fake.url()),
            &auth
        )
        .await
        .0,
        404
    );
    assert_eq!(
        get(
            format!("{}/repos/acme/app/commits/main~1/status", fake.url()),
            &auth
        )
        .await
        .0,
        404
    );
    let (status, body) = get(combined.clone(), &auth).await;
    assert_eq!(status, 200);
    // Contexts are one status whatever their case; the latest of each is shown.
    assert_eq!(body["total_count"], 2);
    assert_eq!(body["state"], "failure");
    let shown: Vec<_> = body["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["context"].clone(), s["state"].clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (json!("flux/a"), json!("success")),
            (json!("ci"), json!("failure"))
        ]
    );
    let (_, second) = get(format!("{combined}?per_page=1&page=2"), &auth).await;
    assert_eq!(second["statuses"][0]["context"], "ci");
    let (_, listed) = get(
        format!("{}/repos/acme/app/commits/{SHA}/statuses", fake.url()),
        &auth,
    )
    .await;
    let states: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].clone())
        .collect();
    assert_eq!(
        states,
        vec![json!("failure"), json!("success"), json!("pending")]
    );
}

#[tokio::test]
async fn the_gitlab_fake_reads_back_the_latest_status_of_a_name_and_refuses_bad_reads() {
    let fake = FakeServer::start(GitLabFake::new("t", &[("acme/app", 1)]), SkipClock::new()).await;
    let auth = [("private-token", "t")];
    let post_url = format!("{}/api/v4/projects/acme%2Fapp/statuses/{SHA}", fake.url());
    for (state, name) in [("running", "c"), ("success", "c"), ("failed", "other")] {
        let body = json!({"state": state, "name": name, "description": state});
        assert_eq!(post(post_url.clone(), &auth, body).await.0, 201);
    }
    let url = format!(
        "{}/api/v4/projects/acme%2Fapp/repository/commits/{SHA}/statuses",
        fake.url()
    );
    assert_eq!(get(url.clone(), &[]).await.0, 401);
    assert_eq!(
        get(url.clone(), &[("authorization", "token t")]).await.0,
        401
    );
    assert_eq!(
        get(
            format!(
                "{}/api/v4/projects/acme/app/repository/commits/{SHA}/statuses",
                fake.url()
            ),
            &auth
        )
        .await
        .0,
        404,
        "an unencoded path has the wrong shape"
    );
    assert_eq!(
        get(
            format!(
                "{}/api/v4/projects/acme%2Fother/repository/commits/{SHA}/statuses",
                fake.url()
            ),
            &auth
        )
        .await
        .0,
        404
    );
    assert_eq!(
        get(
            format!("{}/api/v4/projects/1/statuses/{SHA}", fake.url()),
            &auth
        )
        .await
        .0,
        405
    );
    let (status, body) = get(format!("{url}?name=c"), &auth).await;
    assert_eq!(status, 200);
    let shown: Vec<_> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].clone(), s["status"].clone()))
        .collect();
    assert_eq!(shown, vec![(json!(2), json!("success"))]);
    let (_, all) = get(format!("{url}?name=c&all=true"), &auth).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, every_name) = get(url, &[("authorization", "Bearer t")]).await;
    assert_eq!(every_name.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_bitbucket_cloud_fake_reads_one_status_by_key_and_refuses_bad_reads() {
    let mut logic = BitbucketCloudFake::new();
    logic.bearer.push("t".into());
    let fake = FakeServer::start(logic, SkipClock::new()).await;
    let auth = [("authorization", "Bearer t")];
    let base = format!(
        "{}/2.0/repositories/acme/app/commit/{SHA}/statuses/build",
        fake.url()
    );
    let ok =
        json!({"key": "flux/a", "state": "SUCCESSFUL", "url": "https://x", "description": "d"});
    assert_eq!(post(base.clone(), &auth, ok).await.0, 201);
    let url = format!("{base}/flux%2Fa");
    assert_eq!(get(url.clone(), &[]).await.0, 401);
    assert_eq!(
        get(url.clone(), &[("authorization", "Bearer x")]).await.0,
        401
    );
    let (status, body) = get(url, &auth).await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "SUCCESSFUL");
    assert_eq!(body["description"], "d");
    assert_eq!(
        get(format!("{base}/other"), &auth).await,
        (
            404,
            json!({"type": "error", "error": {"message": "No such build status"}})
        )
    );
    assert_eq!(
        get(
            format!(
                "{}/2.0/repositories/acme/commit/{SHA}/statuses/build/k",
                fake.url()
            ),
            &auth
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn the_bitbucket_server_fake_reads_one_build_by_key_and_refuses_bad_reads() {
    let fake = FakeServer::start(BitbucketServerFake::new("t"), SkipClock::new()).await;
    let url = format!(
        "{}/rest/api/latest/projects/P/repos/r/commits/{SHA}/builds",
        fake.url()
    );
    let auth = [("authorization", "Bearer t")];
    let posted =
        json!({"key": "flux/a", "state": "FAILED", "url": "https://x", "description": "d"});
    assert_eq!(
        post(
            url.clone(),
            &[auth[0], ("x-atlassian-token", "no-check")],
            posted.clone()
        )
        .await
        .0,
        204
    );
    assert_eq!(get(format!("{url}?key=flux%2Fa"), &[]).await.0, 401);
    assert_eq!(get(url.clone(), &auth).await.0, 400, "the key is required");
    // Reads need no XSRF header.
    assert_eq!(
        get(format!("{url}?key=flux%2Fa"), &auth).await,
        (200, posted)
    );
    assert_eq!(get(format!("{url}?key=other"), &auth).await.0, 404);
    assert_eq!(
        get(
            format!(
                "{}/rest/api/latest/projects/P/commits/{SHA}/builds?key=k",
                fake.url()
            ),
            &auth
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn the_azure_devops_fake_lists_the_latest_status_per_context_and_refuses_bad_reads() {
    let fake = FakeServer::start(AzureDevOpsFake::new("pat"), SkipClock::new()).await;
    let base = format!(
        "{}/org/proj/_apis/git/repositories/r/commits/{SHA}/statuses",
        fake.url()
    );
    let url = format!("{base}?api-version=7.1");
    let auth = [("authorization", "Basic OnBhdA==")];
    for (state, name) in [("pending", "a"), ("succeeded", "a"), ("failed", "b")] {
        let body =
            json!({"state": state, "description": state, "context": {"name": name, "genre": "g"}});
        assert_eq!(post(url.clone(), &auth, body).await.0, 201);
    }
    assert_eq!(get(base, &auth).await.0, 400, "api-version is required");
    assert_eq!(
        get(url.clone(), &[("authorization", "Basic Onh4eA==")])
            .await
            .0,
        203
    );
    let (status, latest) = get(format!("{url}&latestOnly=true"), &auth).await;
    assert_eq!(status, 200);
    let shown: Vec<_> = latest["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["context"]["name"].clone(), s["state"].clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (json!("b"), json!("failed")),
            (json!("a"), json!("succeeded"))
        ]
    );
    let (_, all) = get(format!("{url}&top=2&skip=1"), &auth).await;
    assert_eq!(all["count"], 2);
    assert_eq!(all["value"][0]["state"], "succeeded");
}

#[tokio::test]
async fn the_gitea_fake_reads_back_the_combined_status_and_refuses_bad_reads() {
    let fake = FakeServer::start(GiteaFake::new("t"), SkipClock::new()).await;
    let auth = [("authorization", "token t")];
    let post_url = format!("{}/api/v1/repos/acme/app/statuses/{SHA}", fake.url());
    for (state, context) in [("pending", "a"), ("success", "a"), ("failure", "b")] {
        let body = json!({"state": state, "context": context, "description": state});
        assert_eq!(post(post_url.clone(), &auth, body).await.0, 201);
    }
    let combined = format!("{}/api/v1/repos/acme/app/commits/{SHA}/status", fake.url());
    assert_eq!(get(combined.clone(), &[]).await.0, 401);
    assert_eq!(
        get(combined.clone(), &[("private-token", "t")]).await.0,
        401
    );
    assert_eq!(
        get(
            format!("{}/api/v1/repos/acme/commits/{SHA}/status", fake.url()),
            &auth
        )
        .await
        .0,
        404
    );
    let (status, body) = get(combined.clone(), &auth).await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "failure");
    let shown: Vec<_> = body["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["context"].clone(), s["status"].clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (json!("b"), json!("failure")),
            (json!("a"), json!("success"))
        ]
    );
    let (_, listed) = get(
        format!(
            "{}/api/v1/repos/acme/app/commits/{SHA}/statuses?limit=2&page=2",
            fake.url()
        ),
        &auth,
    )
    .await;
    assert_eq!(
        listed,
        json!([{"id": 1, "status": "pending", "context": "a", "description": "pending", "target_url": ""}])
    );
}
