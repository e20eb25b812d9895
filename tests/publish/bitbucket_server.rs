//! Bitbucket Server / Data Center.

use flux_status_exporter::forge::DeliveryResult;
use flux_status_exporter::model::CommitState;
use serde_json::json;

use crate::common::{self, CONTEXT, Case, SHA, publish_one};
use crate::read_back;
use crate::support::fake_forges::Reply;
use crate::support::fake_forges::bitbucket_server::BitbucketServerFake;

const TOKEN: &str = "BBDC-TestHttpAccessToken0123";

fn fake(token: &str) -> BitbucketServerFake {
    let mut fake = BitbucketServerFake::new(token);
    fake.context = "/bitbucket".into();
    fake.basic.push(("flux-bot".into(), token.into()));
    fake
}

fn case() -> Case<BitbucketServerFake> {
    Case {
        kind: "bitbucketserver",
        host: "bitbucket.example.com",
        repository: "PLAT/app",
        token: TOKEN,
        fake,
        api_path: "/bitbucket",
        credentials: |path| format!("{{token: {{file: {path}}}}}"),
        permanent: Reply::json(
            404,
            json!({"errors": [{"message": "Repository PLAT/app does not exist."}]}),
        ),
        permanent_error: "bitbucketserver answered 404: Repository PLAT/app does not exist.",
        created: 204,
        read_path: || {
            format!(
                "/bitbucket/rest/api/latest/projects/PLAT/repos/app/commits/{SHA}/builds?key=flux%2Fprod%2FKustomization%2Fflux-system%2Fapps"
            )
        },
    }
}

#[tokio::test]
async fn each_neutral_state_posts_the_exact_bitbucket_server_request() {
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
    let states = ["INPROGRESS", "SUCCESSFUL", "FAILED", "CANCELLED"];
    for ((request, update), state) in requests.iter().zip(&updates).zip(states) {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            format!("/bitbucket/rest/api/latest/projects/PLAT/repos/app/commits/{SHA}/builds")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(request.header("x-atlassian-token"), Some("no-check"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.body,
            json!({
                "key": CONTEXT,
                "state": state,
                "name": CONTEXT,
                "description": update.description,
                "url": format!("{}/bitbucket/projects/PLAT/repos/app/commits/{SHA}", run.fake.url()),
            })
        );
    }
    assert!(outcomes.iter().all(|o| o.http_status == Some(204)));
}

#[tokio::test]
async fn long_multibyte_text_fits_the_servers_limits() {
    let run = case().start().await;
    let mut update = case().update(CommitState::Failure);
    update.key.context = format!("flux/prod/HelmRelease/{}/web", "ñ".repeat(300));
    update.description = "€".repeat(256);
    update.target_url = Some(format!("https://grafana.example.com/{}", "y".repeat(450)));
    let outcome = publish_one(&run.publishers, update).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    let body = &run.fake.requests()[0].body;
    assert_eq!(body["key"].as_str().unwrap().len(), 40);
    assert_eq!(body["name"].as_str().unwrap().chars().count(), 255);
    assert_eq!(
        body["description"].as_str().unwrap(),
        format!("{}…", "€".repeat(254))
    );
    // A link over the server's 450 characters falls back to the commit page.
    assert_eq!(
        body["url"],
        format!(
            "{}/bitbucket/projects/PLAT/repos/app/commits/{SHA}",
            run.fake.url()
        )
    );
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
    let header = run.fake.requests()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    assert!(header.starts_with("Basic "), "{header}");
}

#[tokio::test]
async fn bitbucket_server_retries_a_server_error_then_delivers() {
    common::retries_a_server_error_then_delivers(case()).await;
}

#[tokio::test]
async fn bitbucket_server_waits_as_long_as_retry_after_says() {
    common::waits_as_long_as_the_rate_limit_says(case()).await;
}

#[tokio::test]
async fn bitbucket_server_does_not_retry_a_missing_repository() {
    common::does_not_retry_a_permanent_error(case()).await;
}

#[tokio::test]
async fn bitbucket_server_never_receives_statuses_for_other_hosts_or_repositories() {
    common::never_sends_to_an_unconfigured_host(case()).await;
}

#[tokio::test]
async fn bitbucket_server_token_stays_out_of_errors_and_logs() {
    common::keeps_the_credential_out_of_errors_and_logs(case()).await;
}

#[tokio::test]
async fn bitbucket_server_token_in_any_form_and_cut_stays_out_of_errors_and_logs() {
    common::keeps_every_form_of_the_credential_out_at_every_cut(case()).await;
}

#[tokio::test]
async fn bitbucket_server_read_back_finding_the_same_status_posts_nothing() {
    read_back::skips_the_post_when_the_forge_already_shows_it(case()).await;
}

#[tokio::test]
async fn bitbucket_server_read_back_finding_another_state_or_description_posts() {
    read_back::posts_when_the_forge_shows_something_else(case()).await;
}

#[tokio::test]
async fn bitbucket_server_read_back_that_fails_still_posts() {
    read_back::still_posts_when_the_read_fails(case()).await;
}

#[tokio::test]
async fn bitbucket_server_reads_nothing_back_without_the_flag_or_with_a_ledger_record() {
    read_back::never_reads_without_the_flag_or_with_a_ledger_record(case()).await;
}

#[tokio::test]
async fn bitbucket_server_reads_success_answers_of_200_kb() {
    read_back::reads_success_answers_of_200_kb(case()).await;
}

#[tokio::test]
async fn bitbucket_server_refuses_for_good_when_the_error_document_is_100_kb() {
    common::refuses_for_good_when_the_error_document_is_100_kb(case()).await;
}
