//! GitLab (gitlab.com and self-managed).

use std::time::Duration;

use flux_status_exporter::forge::{Clock, DeliveryResult};
use flux_status_exporter::model::CommitState;
use serde_json::json;

use crate::common::{self, CONTEXT, Case, SHA, publish_one};
use crate::read_back;
use crate::support::fake_forges::gitlab::{GitLabFake, state_of};
use crate::support::fake_forges::{Fault, Reply, epoch};

const TOKEN: &str = "glpat-TestToken0123456789";
const PROJECT_ID: u64 = 4242;

fn fake(token: &str) -> GitLabFake {
    GitLabFake::new(token, &[("acme/platform/app", PROJECT_ID)])
}

fn case() -> Case<GitLabFake> {
    Case {
        kind: "gitlab",
        host: "gitlab.com",
        repository: "acme/platform/app",
        token: TOKEN,
        fake,
        api_path: "",
        credentials: |path| format!("{{token: {{file: {path}}}}}"),
        permanent: Reply::json(403, json!({"message": "403 Forbidden"})),
        permanent_error: "gitlab answered 403: 403 Forbidden",
        created: 201,
        read_path: || {
            format!(
                "/api/v4/projects/acme%2Fplatform%2Fapp/repository/commits/{SHA}/statuses?name=flux%2Fprod%2FKustomization%2Fflux-system%2Fapps&per_page=100&page=1"
            )
        },
    }
}

fn with_reason(state: CommitState, reason: &str) -> flux_status_exporter::model::StatusUpdate {
    let mut u = case().update(state);
    u.reason = reason.into();
    u
}

#[tokio::test]
async fn each_neutral_state_posts_the_exact_gitlab_request_for_a_nested_project() {
    let run = case().start().await;
    let updates = vec![
        with_reason(CommitState::Pending, "Queued"),
        with_reason(CommitState::Pending, "Progressing"),
        case().update(CommitState::Success),
        case().update(CommitState::Failure),
        case().update(CommitState::Canceled),
    ];
    let outcomes = run.publishers.publish(&updates).await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered),
        "{outcomes:?}"
    );
    let requests = run.fake.requests();
    let states: Vec<_> = requests.iter().map(|r| r.body["state"].clone()).collect();
    assert_eq!(
        states,
        vec![
            json!("pending"),
            json!("running"),
            json!("success"),
            json!("failed"),
            json!("canceled")
        ]
    );
    for (request, update) in requests.iter().zip(&updates) {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            format!("/api/v4/projects/acme%2Fplatform%2Fapp/statuses/{SHA}")
        );
        assert_eq!(request.header("private-token"), Some(TOKEN));
        assert_eq!(request.header("authorization"), None);
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.body,
            json!({
                "state": request.body["state"],
                "name": CONTEXT,
                "description": update.description,
            })
        );
    }
    assert_eq!(
        run.fake.with(|f| state_of(f, PROJECT_ID, SHA, CONTEXT)),
        Some(json!("canceled"))
    );
}

#[tokio::test]
async fn a_numeric_project_id_is_sent_as_is() {
    let numeric = Case {
        repository: "4242",
        ..case()
    };
    let run = numeric.start().await;
    let outcome = publish_one(&run.publishers, numeric.update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(
        run.fake.requests()[0].path,
        format!("/api/v4/projects/{PROJECT_ID}/statuses/{SHA}")
    );
}

#[tokio::test]
async fn an_unchanged_pending_is_never_re_posted() {
    let run = case().start().await;
    let mut update = with_reason(CommitState::Pending, "DependencyNotReady");
    update.previous = Some(CommitState::Pending);
    let outcome = publish_one(&run.publishers, update).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 0);
    assert!(run.fake.requests().is_empty());
}

#[tokio::test]
async fn gitlabs_refusal_to_re_post_an_in_progress_state_counts_as_delivered() {
    let run = case().start().await;
    // Without a ledger record, the same running status is posted twice; the fake, like
    // GitLab, refuses the second with a 400.
    let running = with_reason(CommitState::Pending, "Progressing");
    publish_one(&run.publishers, running.clone()).await;
    let outcome = publish_one(&run.publishers, running).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.http_status, Some(400));
    assert_eq!(outcome.attempts, 1);
    let requests = run.fake.requests();
    assert_eq!(requests.len(), 2);
    // The fake really did refuse it.
    let refused = run.fake.with(|f| state_of(f, PROJECT_ID, SHA, CONTEXT));
    assert_eq!(refused, Some(json!("running")));
}

#[tokio::test]
async fn long_multibyte_text_is_cut_to_255_characters_and_an_over_long_link_left_out() {
    let run = case().start().await;
    let mut update = case().update(CommitState::Failure);
    update.description = "日本語".repeat(100);
    update.key.context = "ß".repeat(400);
    update.target_url = Some(format!("https://grafana.example.com/{}", "x".repeat(300)));
    let outcome = publish_one(&run.publishers, update).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    let body = &run.fake.requests()[0].body;
    let description = body["description"].as_str().unwrap();
    assert_eq!(description.chars().count(), 255);
    assert!(description.ends_with("日本…"));
    assert_eq!(body["name"].as_str().unwrap().chars().count(), 255);
    assert_eq!(body.get("target_url"), None);
}

#[tokio::test]
async fn a_rate_limit_reset_header_decides_the_wait() {
    let run = case().start().await;
    let reset = epoch(run.clock.wall()) + 45;
    run.fake.inject(Fault::Respond(
        Reply::message(429, "Retry later")
            .header("RateLimit-Remaining", 0)
            .header("RateLimit-Reset", reset),
    ));
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(
        run.clock.sleeps_over(Duration::from_millis(100)),
        vec![Duration::from_secs(46)]
    );
}

#[tokio::test]
async fn gitlab_retries_a_server_error_then_delivers() {
    common::retries_a_server_error_then_delivers(case()).await;
}

#[tokio::test]
async fn gitlab_waits_as_long_as_retry_after_says() {
    common::waits_as_long_as_the_rate_limit_says(case()).await;
}

#[tokio::test]
async fn gitlab_does_not_retry_a_forbidden_project() {
    common::does_not_retry_a_permanent_error(case()).await;
}

#[tokio::test]
async fn gitlab_never_receives_statuses_for_other_hosts_or_repositories() {
    common::never_sends_to_an_unconfigured_host(case()).await;
}

#[tokio::test]
async fn gitlab_token_stays_out_of_errors_and_logs() {
    common::keeps_the_credential_out_of_errors_and_logs(case()).await;
}

#[tokio::test]
async fn gitlab_token_in_any_form_and_cut_stays_out_of_errors_and_logs() {
    common::keeps_every_form_of_the_credential_out_at_every_cut(case()).await;
}

#[tokio::test]
async fn gitlab_read_back_finding_the_same_status_posts_nothing() {
    read_back::skips_the_post_when_the_forge_already_shows_it(case()).await;
}

#[tokio::test]
async fn gitlab_read_back_finding_another_state_or_description_posts() {
    read_back::posts_when_the_forge_shows_something_else(case()).await;
}

#[tokio::test]
async fn gitlab_read_back_that_fails_still_posts() {
    read_back::still_posts_when_the_read_fails(case()).await;
}

#[tokio::test]
async fn gitlab_reads_nothing_back_without_the_flag_or_with_a_ledger_record() {
    read_back::never_reads_without_the_flag_or_with_a_ledger_record(case()).await;
}

#[tokio::test]
async fn gitlab_reads_success_answers_of_200_kb() {
    read_back::reads_success_answers_of_200_kb(case()).await;
}

#[tokio::test]
async fn gitlab_refuses_for_good_when_the_error_document_is_100_kb() {
    common::refuses_for_good_when_the_error_document_is_100_kb(case()).await;
}
