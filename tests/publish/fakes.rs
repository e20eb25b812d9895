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
