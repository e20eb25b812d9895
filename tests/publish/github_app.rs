//! GitHub App authentication against a fake that verifies the app's JWTs with its public key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flux_status_exporter::forge::{DeliveryResult, Publishers};
use flux_status_exporter::model::CommitState;
use serde_json::json;

use crate::common::{self, Logs, SHA, config, publish_one, publishers};
use crate::support::fake_forges::github::{FakeApp, GitHubFake};
use crate::support::fake_forges::{FakeServer, SkipClock};

const APP_ID: u64 = 424_242;
const INSTALLATION: u64 = 77;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/github-app")
            .join(name),
    )
    .unwrap()
}

fn fake() -> GitHubFake {
    GitHubFake::new("ghp_unused").with_app(FakeApp {
        app_id: APP_ID,
        public_key_pem: fixture("public-key.pem"),
        installations: HashMap::from([("acme".to_string(), INSTALLATION)]),
        token_lifetime: Duration::from_secs(3600),
        issued: Vec::new(),
        requested_permissions: Vec::new(),
    })
}

struct App {
    fake: FakeServer<GitHubFake>,
    publishers: Publishers,
    clock: Arc<SkipClock>,
    logs: Logs,
    dir: tempfile::TempDir,
}

async fn start(installation: Option<u64>, key: &str) -> App {
    start_with(installation, key, false).await
}

async fn start_with(installation: Option<u64>, key: &str, read_back: bool) -> App {
    let logs = Logs::capture();
    let clock = SkipClock::new();
    let fake = FakeServer::start(fake(), clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("app.pem");
    std::fs::write(&key_path, key).unwrap();
    let installation = installation.map_or(String::new(), |i| format!(", installationId: {i}"));
    let config = config(&format!(
        "statuses: {{readBack: {read_back}}}\nforges:\n  - type: github\n    apiUrl: {}\n    credentials:\n      githubApp: {{appId: {APP_ID}{installation}, privateKey: {{file: {}}}}}\n    rateLimit: {{perMinute: 6000, perHour: 100000}}\n",
        fake.url(),
        key_path.display()
    ));
    let publishers = publishers(&config, clock.clone());
    App {
        fake,
        publishers,
        clock,
        logs,
        dir,
    }
}

fn update(repository: &str) -> flux_status_exporter::model::StatusUpdate {
    common::update("github", "github.com", repository, CommitState::Success)
}

#[tokio::test]
async fn a_configured_installation_exchanges_a_verified_jwt_for_a_status_only_token() {
    let app = start(Some(INSTALLATION), &fixture("private-key.pem")).await;
    let outcome = publish_one(&app.publishers, update("acme/app")).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(outcome.attempts, 1);
    let requests = app.fake.requests();
    let lines: Vec<_> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        lines,
        vec![
            format!("POST /app/installations/{INSTALLATION}/access_tokens"),
            format!("POST /repos/acme/app/statuses/{SHA}"),
        ]
    );
    assert!(
        requests[0]
            .header("authorization")
            .unwrap()
            .starts_with("Bearer ey")
    );
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer ghs_fake0001")
    );
    app.fake.with(|f| {
        let app = f.app.as_ref().unwrap();
        assert_eq!(
            app.requested_permissions,
            vec![json!({"statuses": "write"})]
        );
    });
    app.logs.assert_never_contains("ghs_fake0001");
    app.logs.assert_never_contains("PRIVATE KEY");
}

#[tokio::test]
async fn without_an_installation_id_it_is_looked_up_once_per_owner() {
    let app = start(None, &fixture("private-key.pem")).await;
    let outcomes = app
        .publishers
        .publish(&[update("acme/app"), update("acme/other")])
        .await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered)
    );
    let lines: Vec<_> = app
        .fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        lines,
        vec![
            "GET /repos/acme/app/installation".to_string(),
            format!("POST /app/installations/{INSTALLATION}/access_tokens"),
            format!("POST /repos/acme/app/statuses/{SHA}"),
            format!("POST /repos/acme/other/statuses/{SHA}"),
        ]
    );
}

#[tokio::test]
async fn the_installation_token_is_reused_then_refreshed_before_it_expires() {
    let app = start(Some(INSTALLATION), &fixture("private-key.pem")).await;
    publish_one(&app.publishers, update("acme/app")).await;
    // 50 minutes on, 10 minutes are left: the token is reused.
    app.clock.advance(Duration::from_secs(50 * 60));
    publish_one(&app.publishers, update("acme/app")).await;
    // 56 minutes on, only 4 are left: a new token is bought before the post.
    app.clock.advance(Duration::from_secs(6 * 60));
    let outcome = publish_one(&app.publishers, update("acme/app")).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    let auth: Vec<_> = app
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/repos/"))
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    assert_eq!(
        auth,
        vec![
            "Bearer ghs_fake0001",
            "Bearer ghs_fake0001",
            "Bearer ghs_fake0002"
        ]
    );
    assert_eq!(app.fake.with(|f| f.app.as_ref().unwrap().issued.len()), 2);
}

#[tokio::test]
async fn a_key_the_app_does_not_have_holds_the_credential_naming_the_app() {
    // A valid RSA key, but not the app's: the fake cannot verify the JWT.
    let app = start(Some(INSTALLATION), &fixture("other-private-key.pem")).await;
    let outcome = publish_one(&app.publishers, update("acme/app")).await;
    assert_eq!(
        outcome.result,
        DeliveryResult::RetryLater {
            error: format!(
                "github answered 401: GitHub App {APP_ID}: exchanging a token for installation {INSTALLATION}: A JSON web token could not be decoded (the credential is not used again for 60s)"
            )
        }
    );
    // The refusal drops cached credentials and tries once more, then gives up.
    assert_eq!(outcome.attempts, 2);
    assert!(
        app.fake
            .requests()
            .iter()
            .all(|r| r.path.starts_with("/app/"))
    );
}

#[tokio::test]
async fn a_private_key_that_is_not_pem_holds_the_credential_without_its_content_until_it_is_fixed()
{
    let app = start(Some(INSTALLATION), "not-a-key-but-secret-material").await;
    let outcome = publish_one(&app.publishers, update("acme/app")).await;
    assert_eq!(
        outcome.result,
        DeliveryResult::RetryLater {
            error: format!(
                "github: credential: GitHub App {APP_ID}: the private key is not an RSA private key in PEM form (the credential is not used again for 60s)"
            )
        }
    );
    assert_eq!(app.fake.requests().len(), 0);
    assert_eq!(
        app.publishers.credential_refused(),
        [(
            "github".to_string(),
            Some(format!(
                "github: credential: GitHub App {APP_ID}: the private key is not an RSA private key in PEM form"
            ))
        )]
    );
    app.logs.assert_never_contains("secret-material");

    std::fs::write(app.dir.path().join("app.pem"), fixture("private-key.pem")).unwrap();
    app.clock.advance(Duration::from_secs(61));
    let fixed = publish_one(&app.publishers, update("acme/app")).await;
    assert_eq!(fixed.result, DeliveryResult::Delivered, "{fixed:?}");
    assert_eq!(
        app.publishers.credential_refused(),
        [("github".to_string(), None)]
    );
}

#[tokio::test]
async fn an_app_reads_back_with_the_same_installation_token_it_posts_with() {
    let app = start_with(Some(INSTALLATION), &fixture("private-key.pem"), true).await;
    let outcome = publish_one(&app.publishers, update("acme/app")).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(outcome.attempts, 2);
    let again = publish_one(&app.publishers, update("acme/app")).await;
    assert_eq!(again.result, DeliveryResult::Delivered, "{again:?}");
    assert_eq!(again.attempts, 1);
    let requests = app.fake.requests();
    let lines: Vec<_> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let read = format!("GET /repos/acme/app/commits/{SHA}/status?per_page=100&page=1");
    assert_eq!(
        lines,
        vec![
            format!("POST /app/installations/{INSTALLATION}/access_tokens"),
            read.clone(),
            format!("POST /repos/acme/app/statuses/{SHA}"),
            read,
        ]
    );
    for request in &requests[1..] {
        assert_eq!(request.header("authorization"), Some("Bearer ghs_fake0001"));
    }
}
