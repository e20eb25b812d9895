//! Bitbucket Cloud.

use flux_status_exporter::forge::DeliveryResult;
use flux_status_exporter::forge::text::sha1_hex;
use flux_status_exporter::model::CommitState;
use serde_json::json;

use crate::common::{self, CONTEXT, Case, SHA, publish_one};
use crate::read_back;
use crate::support::fake_forges::Reply;
use crate::support::fake_forges::bitbucket_cloud::BitbucketCloudFake;

const USER: &str = "flux-bot";
const APP_PASSWORD: &str = "ATBBTestAppPassword0123";
const ACCESS_TOKEN: &str = "ATCTTestAccessToken0123";

fn fake(password: &str) -> BitbucketCloudFake {
    let mut fake = BitbucketCloudFake::new();
    fake.basic.push((USER.into(), password.into()));
    fake.bearer.push(ACCESS_TOKEN.into());
    fake
}

fn case() -> Case<BitbucketCloudFake> {
    Case {
        kind: "bitbucket",
        host: "bitbucket.org",
        repository: "acme/app",
        token: APP_PASSWORD,
        fake,
        api_path: "",
        credentials: |path| format!("{{basic: {{username: {USER}, password: {{file: {path}}}}}}}"),
        permanent: Reply::json(
            404,
            json!({"type": "error", "error": {"message": "Repository not found"}}),
        ),
        permanent_error: "bitbucket answered 404: Repository not found",
        created: 201,
        read_path: || {
            format!(
                "/2.0/repositories/acme/app/commit/{SHA}/statuses/build/flux%2Fprod%2FKustomization%2Fflux-system%2Fapps"
            )
        },
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn each_neutral_state_posts_the_exact_bitbucket_cloud_request() {
    let run = case().start().await;
    let updates: Vec<_> = common::STATES.iter().map(|s| case().update(*s)).collect();
    let outcomes = run.publishers.publish(&updates).await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered),
        "{outcomes:?}"
    );
    let requests = run.fake.requests();
    let states = ["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"];
    assert_eq!(requests.len(), 4);
    for ((request, update), state) in requests.iter().zip(&updates).zip(states) {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            format!("/2.0/repositories/acme/app/commit/{SHA}/statuses/build")
        );
        assert_eq!(
            request.header("authorization"),
            Some(basic(USER, APP_PASSWORD).as_str())
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        // The 40-character context is its own key.
        assert_eq!(
            request.body,
            json!({
                "key": CONTEXT,
                "state": state,
                "name": CONTEXT,
                "description": update.description,
                "url": format!("https://bitbucket.org/acme/app/commits/{SHA}"),
            })
        );
    }
    // Posting the same key replaced the status each time.
    assert_eq!(run.fake.with(|f| f.statuses.len()), 1);
}

#[tokio::test]
async fn a_context_over_40_characters_is_keyed_by_its_sha1_and_named_in_full() {
    let run = case().start().await;
    let mut update = case().update(CommitState::Success);
    update.key.context = "flux/production/Kustomization/flux-system/äpps".into();
    update.description = "ü".repeat(300);
    update.target_url = Some("https://grafana.example.com/d/flux".into());
    let outcome = publish_one(&run.publishers, update.clone()).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    let body = &run.fake.requests()[0].body;
    assert_eq!(body["key"], json!(sha1_hex(&update.key.context)));
    assert_eq!(body["name"], json!(update.key.context));
    assert_eq!(body["url"], "https://grafana.example.com/d/flux");
    assert_eq!(
        body["description"].as_str().unwrap(),
        format!("{}…", "ü".repeat(254))
    );
}

#[tokio::test]
async fn an_access_token_is_sent_as_bearer() {
    let bearer = Case {
        token: ACCESS_TOKEN,
        credentials: |path| format!("{{token: {{file: {path}}}}}"),
        ..case()
    };
    let run = bearer.start().await;
    let outcome = publish_one(&run.publishers, bearer.update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(
        run.fake.requests()[0].header("authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn bitbucket_cloud_retries_a_server_error_then_delivers() {
    common::retries_a_server_error_then_delivers(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_waits_as_long_as_retry_after_says() {
    common::waits_as_long_as_the_rate_limit_says(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_does_not_retry_a_missing_repository() {
    common::does_not_retry_a_permanent_error(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_never_receives_statuses_for_other_hosts_or_repositories() {
    common::never_sends_to_an_unconfigured_host(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_password_stays_out_of_errors_and_logs() {
    common::keeps_the_credential_out_of_errors_and_logs(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_password_in_any_form_and_cut_stays_out_of_errors_and_logs() {
    common::keeps_every_form_of_the_credential_out_at_every_cut(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_read_back_finding_the_same_status_posts_nothing() {
    read_back::skips_the_post_when_the_forge_already_shows_it(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_read_back_finding_another_state_or_description_posts() {
    read_back::posts_when_the_forge_shows_something_else(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_read_back_that_fails_still_posts() {
    read_back::still_posts_when_the_read_fails(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_reads_nothing_back_without_the_flag_or_with_a_ledger_record() {
    read_back::never_reads_without_the_flag_or_with_a_ledger_record(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_reads_success_answers_of_200_kb() {
    read_back::reads_success_answers_of_200_kb(case()).await;
}

#[tokio::test]
async fn bitbucket_cloud_refuses_for_good_when_the_error_document_is_100_kb() {
    common::refuses_for_good_when_the_error_document_is_100_kb(case()).await;
}
