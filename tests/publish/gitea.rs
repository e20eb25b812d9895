//! Gitea and Forgejo.

use flux_status_exporter::forge::DeliveryResult;
use flux_status_exporter::model::CommitState;
use serde_json::json;

use crate::common::{self, CONTEXT, Case, SHA, publish_one};
use crate::read_back;
use crate::support::fake_forges::Reply;
use crate::support::fake_forges::gitea::GiteaFake;

const TOKEN: &str = "giteaTestToken0123456789abcdef";

fn fake(token: &str) -> GiteaFake {
    let mut fake = GiteaFake::new(token);
    fake.prefix = "/git".into();
    fake.basic.push(("flux-bot".into(), token.into()));
    fake
}

fn case() -> Case<GiteaFake> {
    Case {
        kind: "gitea",
        host: "git.example.com",
        repository: "acme/app",
        token: TOKEN,
        fake,
        api_path: "/git",
        credentials: |path| format!("{{token: {{file: {path}}}}}"),
        permanent: Reply::message(403, "user does not have write access to this repository"),
        permanent_error: "gitea answered 403: user does not have write access to this repository",
        created: 201,
        read_path: || format!("/git/api/v1/repos/acme/app/commits/{SHA}/status?page=1&limit=50"),
    }
}

#[tokio::test]
async fn each_neutral_state_posts_the_exact_gitea_request() {
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
    assert_eq!(requests.len(), 4);
    let states = ["pending", "success", "failure", "error"];
    for ((request, update), state) in requests.iter().zip(&updates).zip(states) {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            format!("/git/api/v1/repos/acme/app/statuses/{SHA}")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("token {TOKEN}").as_str())
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.body,
            json!({"state": state, "context": CONTEXT, "description": update.description})
        );
    }
}

#[tokio::test]
async fn long_multibyte_text_is_cut_to_255_characters() {
    let run = case().start().await;
    let mut update = case().update(CommitState::Canceled);
    update.description = "🚀".repeat(300);
    let outcome = publish_one(&run.publishers, update).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    let description = run.fake.requests()[0].body["description"]
        .as_str()
        .unwrap()
        .to_string();
    // Canceled says "superseded" first, and the whole still fits 255 characters.
    assert!(description.starts_with("superseded: 🚀"));
    assert_eq!(description.chars().count(), 255);
    assert!(description.ends_with("🚀…"));
}

#[tokio::test]
async fn basic_credentials_are_sent_as_basic() {
    let basic = Case {
        credentials: |path| {
            format!("{{basic: {{username: flux-bot, password: {{file: {path}}}}}}}")
        },
        ..case()
    };
    let run = basic.start().await;
    let outcome = publish_one(&run.publishers, basic.update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("flux-bot:{TOKEN}"))
    );
    assert_eq!(
        run.fake.requests()[0].header("authorization"),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn gitea_retries_a_server_error_then_delivers() {
    common::retries_a_server_error_then_delivers(case()).await;
}

#[tokio::test]
async fn gitea_waits_as_long_as_retry_after_says() {
    common::waits_as_long_as_the_rate_limit_says(case()).await;
}

#[tokio::test]
async fn gitea_does_not_retry_a_forbidden_repository() {
    common::does_not_retry_a_permanent_error(case()).await;
}

#[tokio::test]
async fn gitea_never_receives_statuses_for_other_hosts_or_repositories() {
    common::never_sends_to_an_unconfigured_host(case()).await;
}

#[tokio::test]
async fn gitea_token_stays_out_of_errors_and_logs() {
    common::keeps_the_credential_out_of_errors_and_logs(case()).await;
}

#[tokio::test]
async fn gitea_token_in_any_form_and_cut_stays_out_of_errors_and_logs() {
    common::keeps_every_form_of_the_credential_out_at_every_cut(case()).await;
}

#[tokio::test]
async fn gitea_read_back_finding_the_same_status_posts_nothing() {
    read_back::skips_the_post_when_the_forge_already_shows_it(case()).await;
}

#[tokio::test]
async fn gitea_read_back_finding_another_state_or_description_posts() {
    read_back::posts_when_the_forge_shows_something_else(case()).await;
}

#[tokio::test]
async fn gitea_read_back_that_fails_still_posts() {
    read_back::still_posts_when_the_read_fails(case()).await;
}

#[tokio::test]
async fn gitea_reads_nothing_back_without_the_flag_or_with_a_ledger_record() {
    read_back::never_reads_without_the_flag_or_with_a_ledger_record(case()).await;
}

#[tokio::test]
async fn gitea_reads_success_answers_of_200_kb() {
    read_back::reads_success_answers_of_200_kb(case()).await;
}

#[tokio::test]
async fn gitea_refuses_for_good_when_the_error_document_is_100_kb() {
    common::refuses_for_good_when_the_error_document_is_100_kb(case()).await;
}
