//! GitHub and GitHub Enterprise Server.

use std::time::Duration;

use flux_status_exporter::forge::DeliveryResult;
use flux_status_exporter::model::CommitState;
use serde_json::json;

use crate::common::{
    self, CONTEXT, Case, SHA, STATES, config, publish_one, publishers, secret_file,
};
use crate::read_back;
use crate::support::fake_forges::github::{CAP_MESSAGE, GitHubFake};
use crate::support::fake_forges::{FakeServer, Fault, Reply, SkipClock, epoch};

const TOKEN: &str = "ghp_TestToken0123456789";

fn case() -> Case<GitHubFake> {
    Case {
        kind: "github",
        host: "github.com",
        repository: "acme/app",
        token: TOKEN,
        fake: GitHubFake::new,
        api_path: "",
        credentials: |path| format!("{{token: {{file: {path}}}}}"),
        permanent: Reply::json(
            422,
            json!({"message": "Validation Failed", "errors": [{"message": "No commit found for SHA"}]}),
        ),
        permanent_error: "github answered 422: Validation Failed; No commit found for SHA",
        created: 201,
        read_path: || format!("/repos/acme/app/commits/{SHA}/status?per_page=100&page=1"),
    }
}

#[tokio::test]
async fn each_neutral_state_posts_the_exact_github_request() {
    let run = case().start().await;
    let updates: Vec<_> = STATES.iter().map(|s| case().update(*s)).collect();
    let outcomes = run.publishers.publish(&updates).await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered),
        "{outcomes:?}"
    );
    let requests = run.fake.requests();
    assert_eq!(requests.len(), 4);
    let expected = [
        ("pending", "progressing: Running health checks"),
        (
            "success",
            "reconciliation succeeded: Applied revision main@sha1:0123456",
        ),
        (
            "failure",
            "health check failed: timeout waiting for Deployment/apps/web",
        ),
        ("error", "superseded by 89abcde"),
    ];
    for (request, (state, description)) in requests.iter().zip(expected) {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/repos/acme/app/statuses/{SHA}"));
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json")
        );
        assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.body,
            json!({"state": state, "context": CONTEXT, "description": description})
        );
    }
    assert_eq!(
        run.fake.with(|f| f.stored("acme/app", SHA, CONTEXT).len()),
        4
    );
}

#[tokio::test]
async fn enterprise_server_is_reached_under_api_v3() {
    let clock = SkipClock::new();
    let fake = FakeServer::start(GitHubFake::new(TOKEN).enterprise(), clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "token", TOKEN);
    let config = config(&format!(
        "forges:\n  - name: ghes\n    type: github\n    host: github.example.com\n    apiUrl: {}/api/v3\n    credentials: {{token: {{file: {token}}}}}\n",
        fake.url()
    ));
    let publishers = publishers(&config, clock);
    let outcome = publish_one(
        &publishers,
        common::update(
            "ghes",
            "github.example.com",
            "platform/fleet",
            CommitState::Success,
        ),
    )
    .await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(
        fake.requests()[0].path,
        format!("/api/v3/repos/platform/fleet/statuses/{SHA}")
    );
}

#[tokio::test]
async fn long_multibyte_text_is_cut_to_githubs_limits_on_character_boundaries() {
    let run = case().start().await;
    let mut update = case().update(CommitState::Failure);
    update.description = "é".repeat(200);
    update.key.context = format!("flux/prod/Kustomization/{}/apps", "ü".repeat(300));
    update.target_url = Some("https://grafana.example.com/d/flux?var-sha=0123456".into());
    let outcome = publish_one(&run.publishers, update.clone()).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    let body = &run.fake.requests()[0].body;
    let description = body["description"].as_str().unwrap();
    assert_eq!(description, format!("{}…", "é".repeat(139)));
    let context = body["context"].as_str().unwrap();
    assert_eq!(context.chars().count(), 255);
    assert!(context.starts_with("flux/prod/Kustomization/üüü"));
    assert_eq!(
        body["target_url"],
        "https://grafana.example.com/d/flux?var-sha=0123456"
    );
}

#[tokio::test]
async fn github_retries_a_server_error_then_delivers() {
    common::retries_a_server_error_then_delivers(case()).await;
}

#[tokio::test]
async fn github_waits_as_long_as_retry_after_says() {
    common::waits_as_long_as_the_rate_limit_says(case()).await;
}

#[tokio::test]
async fn github_does_not_retry_a_validation_failure() {
    common::does_not_retry_a_permanent_error(case()).await;
}

#[tokio::test]
async fn github_never_receives_statuses_for_other_hosts_or_repositories() {
    common::never_sends_to_an_unconfigured_host(case()).await;
}

#[tokio::test]
async fn github_token_stays_out_of_errors_and_logs() {
    common::keeps_the_credential_out_of_errors_and_logs(case()).await;
}

#[tokio::test]
async fn github_token_in_any_form_and_cut_stays_out_of_errors_and_logs() {
    common::keeps_every_form_of_the_credential_out_at_every_cut(case()).await;
}

#[tokio::test]
async fn a_primary_rate_limit_waits_until_the_budget_resets() {
    let run = case().start().await;
    let reset = epoch(run.clock_wall()) + 120;
    run.fake.inject(Fault::Respond(
        Reply::message(403, "API rate limit exceeded for user ID 1.")
            .header("x-ratelimit-limit", 5000)
            .header("x-ratelimit-remaining", 0)
            .header("x-ratelimit-reset", reset),
    ));
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    // Until the reset second has passed: 120 s plus one.
    assert_eq!(
        run.clock.sleeps_over(Duration::from_millis(100)),
        vec![Duration::from_secs(121)]
    );
}

#[tokio::test]
async fn a_secondary_rate_limit_without_hints_waits_a_minute_then_twice_that() {
    let run = case().start().await;
    for _ in 0..2 {
        run.fake.inject(Fault::Respond(Reply::message(
            403,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        )));
    }
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 3);
    assert_eq!(
        run.clock.sleeps_over(Duration::from_millis(100)),
        vec![Duration::from_secs(60), Duration::from_secs(120)]
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_a_tick_waits_is_left_for_the_next_tick() {
    let run = case().start().await;
    run.fake.inject(Fault::Respond(
        Reply::message(429, "Too Many Requests").header("retry-after", 3600),
    ));
    let updates = [case().update(CommitState::Success), {
        let mut other = case().update(CommitState::Success);
        other.key.context = "flux/prod/Kustomization/flux-system/infra".into();
        other
    }];
    let outcomes = run.publishers.publish(&updates).await;
    for outcome in &outcomes {
        assert_eq!(
            outcome.result,
            DeliveryResult::RetryLater {
                error: "github: rate limited (github answered 429: Too Many Requests); next request in 3600s, longer than the 300s a tick waits".into()
            }
        );
    }
    assert_eq!(outcomes[0].attempts, 1);
    assert_eq!(outcomes[1].attempts, 0);
    assert_eq!(run.fake.requests().len(), 1);
    assert!(run.clock.sleeps_over(Duration::from_millis(100)).is_empty());
}

#[tokio::test]
async fn an_exhausted_budget_pauses_the_next_post_until_the_reset() {
    let run = case().start().await;
    let reset = epoch(run.clock_wall()) + 90;
    run.fake.with(|f| f.budget = Some((5000, 1, reset)));
    let updates = [case().update(CommitState::Success), {
        let mut other = case().update(CommitState::Success);
        other.key.context = "flux/prod/Kustomization/flux-system/infra".into();
        other
    }];
    let outcomes = run.publishers.publish(&updates).await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered)
    );
    assert_eq!(
        run.clock.sleeps_over(Duration::from_millis(100)),
        vec![Duration::from_secs(91)]
    );
    assert_eq!(
        run.publishers.rate_limit_remaining(),
        vec![("github".to_string(), Some(0))]
    );
}

#[tokio::test]
async fn the_remaining_budget_is_reported_per_forge() {
    let run = case().start().await;
    assert_eq!(
        run.publishers.rate_limit_remaining(),
        vec![("github".to_string(), None)]
    );
    run.fake
        .with(|f| f.budget = Some((5000, 4321, 1_900_000_000)));
    publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(
        run.publishers.rate_limit_remaining(),
        vec![("github".to_string(), Some(4320))]
    );
}

#[tokio::test]
async fn the_thousand_and_first_status_for_a_context_is_a_permanent_error() {
    let run = case().start().await;
    run.fake.with(|f| {
        let key = (
            "acme/app".to_string(),
            SHA.to_string(),
            CONTEXT.to_lowercase(),
        );
        f.statuses.insert(key, vec![json!({}); 1000]);
    });
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(
        outcome.result,
        DeliveryResult::PermanentError {
            error: format!("github answered 422: Validation Failed; {CAP_MESSAGE}")
        }
    );
    assert_eq!(outcome.attempts, 1);
    assert_eq!(outcome.http_status, Some(422));
}

#[tokio::test]
async fn a_rotated_token_file_is_used_from_the_next_request() {
    let run = case().start().await;
    publish_one(&run.publishers, case().update(CommitState::Pending)).await;
    let rotated = "ghp_RotatedToken_9876543210";
    run.fake.with(|f| f.tokens.insert(rotated.to_string()));
    secret_file(run.dir.path(), "token", rotated);
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    let requests = run.fake.requests();
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Bearer {rotated}").as_str())
    );
}

#[tokio::test]
async fn a_refused_token_is_read_again_and_retried_once() {
    let run = case().start().await;
    run.fake
        .inject(Fault::Respond(Reply::message(401, "Bad credentials")));
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 2);

    run.fake.with(|f| f.tokens.clear());
    let outcome = publish_one(&run.publishers, case().update(CommitState::Failure)).await;
    assert_eq!(
        outcome.result,
        DeliveryResult::RetryLater {
            error:
                "github answered 401: Bad credentials (the credential is not used again for 60s)"
                    .into()
        }
    );
    assert_eq!(outcome.attempts, 2);
}

#[tokio::test]
async fn a_missing_token_variable_fails_setup_naming_the_variable() {
    let config = config(
        "forges:\n  - type: github\n    credentials: {token: {env: FSE_TEST_UNSET_GITHUB_TOKEN}}\n",
    );
    let err = flux_status_exporter::forge::Publishers::from_config(
        &config,
        &flux_status_exporter::forge::CredentialSources::new().with_env(Default::default()),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "forge `github`: credentials: environment variable FSE_TEST_UNSET_GITHUB_TOKEN is not set"
    );
}

#[tokio::test]
async fn a_token_from_an_environment_variable_is_sent() {
    let clock = SkipClock::new();
    let fake = FakeServer::start(GitHubFake::new(TOKEN), clock.clone()).await;
    let config = config(&format!(
        "forges:\n  - type: github\n    apiUrl: {}\n    credentials: {{token: {{env: GITHUB_TOKEN}}}}\n",
        fake.url()
    ));
    let sources = flux_status_exporter::forge::CredentialSources::new()
        .with_env([("GITHUB_TOKEN".to_string(), TOKEN.to_string())].into());
    let publishers = flux_status_exporter::forge::Publishers::from_config_with(
        &config,
        &sources,
        common::policy(),
        clock,
    )
    .unwrap();
    let outcome = publish_one(&publishers, case().update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

impl common::Running<GitHubFake> {
    fn clock_wall(&self) -> std::time::SystemTime {
        use flux_status_exporter::forge::Clock;
        self.clock.wall()
    }
}

#[tokio::test]
async fn github_read_back_finding_the_same_status_posts_nothing() {
    read_back::skips_the_post_when_the_forge_already_shows_it(case()).await;
}

#[tokio::test]
async fn github_read_back_finding_another_state_or_description_posts() {
    read_back::posts_when_the_forge_shows_something_else(case()).await;
}

#[tokio::test]
async fn github_read_back_that_fails_still_posts() {
    read_back::still_posts_when_the_read_fails(case()).await;
}

#[tokio::test]
async fn github_reads_nothing_back_without_the_flag_or_with_a_ledger_record() {
    read_back::never_reads_without_the_flag_or_with_a_ledger_record(case()).await;
}

/// Seeds the fake with a status for `context`, as if posted with id `id`.
fn seed(run: &common::Running<GitHubFake>, id: u64, context: &str, state: &str, description: &str) {
    run.fake.with(|f| {
        f.statuses.insert(
            (
                "acme/app".to_string(),
                SHA.to_string(),
                context.to_lowercase(),
            ),
            vec![json!({"id": id, "state": state, "context": context, "description": description})],
        )
    });
}

#[tokio::test]
async fn read_back_finds_a_context_whatever_its_case_as_github_compares_them() {
    let run = case().start_reading_back().await;
    let update = case().update(CommitState::Success);
    seed(
        &run,
        1,
        &CONTEXT.to_uppercase(),
        "success",
        &update.description,
    );
    let outcome = publish_one(&run.publishers, update).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 1);
    let requests = run.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].path,
        format!("/repos/acme/app/commits/{SHA}/status?per_page=100&page=1")
    );
}

#[tokio::test]
async fn read_back_pages_through_a_commit_with_many_contexts() {
    let run = case().start_reading_back().await;
    for i in 0..150 {
        seed(&run, i + 1, &format!("ci/job-{i}"), "success", "");
    }
    let update = case().update(CommitState::Failure);
    seed(&run, 151, CONTEXT, "failure", &update.description);
    let outcome = publish_one(&run.publishers, update).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 2);
    let paths: Vec<_> = run.fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            format!("/repos/acme/app/commits/{SHA}/status?per_page=100&page=1"),
            format!("/repos/acme/app/commits/{SHA}/status?per_page=100&page=2"),
        ]
    );
}

#[tokio::test]
async fn a_rate_limited_read_pauses_the_post_as_long_as_github_asks() {
    let run = case().start_reading_back().await;
    run.fake.inject(Fault::Respond(
        Reply::message(429, "Too Many Requests").header("retry-after", 30),
    ));
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 2);
    let methods: Vec<_> = run.fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["GET", "POST"]);
    assert_eq!(
        run.clock.sleeps_over(Duration::from_millis(100)),
        vec![Duration::from_secs(30)]
    );
}

#[tokio::test]
async fn a_token_refused_on_read_is_read_again_for_the_post() {
    let run = case().start_reading_back().await;
    run.fake
        .inject(Fault::Respond(Reply::message(401, "Bad credentials")));
    let rotated = "ghp_RotatedToken_9876543210";
    run.fake.with(|f| f.tokens.insert(rotated.to_string()));
    secret_file(run.dir.path(), "token", rotated);
    let outcome = publish_one(&run.publishers, case().update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 2);
    let requests = run.fake.requests();
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Bearer {rotated}").as_str())
    );
}

#[tokio::test]
async fn reads_are_not_paced_within_the_budget_for_posts() {
    let clock = SkipClock::new();
    let fake = FakeServer::start(GitHubFake::new(TOKEN), clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "token", TOKEN);
    let config = config(&format!(
        "statuses: {{readBack: true}}\nforges:\n  - type: github\n    apiUrl: {}\n    credentials: {{token: {{file: {token}}}}}\n    rateLimit: {{perMinute: 1, perHour: 10}}\n",
        fake.url()
    ));
    let publishers = publishers(&config, clock.clone());
    let contexts = ["flux/a", "flux/b", "flux/c"];
    let updates: Vec<_> = contexts
        .iter()
        .map(|context| {
            let mut u = case().update(CommitState::Success);
            u.key.context = (*context).into();
            u
        })
        .collect();
    fake.with(|f| {
        for (i, u) in updates.iter().take(2).enumerate() {
            f.statuses.insert(
                ("acme/app".into(), SHA.into(), u.key.context.clone()),
                vec![json!({"id": i + 1, "state": "success", "context": u.key.context, "description": u.description})],
            );
        }
    });
    let outcomes = publishers.publish(&updates).await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered)
    );
    let methods: Vec<_> = fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["GET", "GET", "GET", "POST"]);
    // Three reads and one post within a budget of one request a minute, without a wait.
    assert_eq!(clock.sleeps(), Vec::<Duration>::new());
}

#[tokio::test]
async fn github_reads_success_answers_of_200_kb() {
    read_back::reads_success_answers_of_200_kb(case()).await;
}

#[tokio::test]
async fn github_refuses_for_good_when_the_error_document_is_100_kb() {
    common::refuses_for_good_when_the_error_document_is_100_kb(case()).await;
}

#[tokio::test]
async fn a_redirect_for_a_renamed_repository_waits_naming_where_it_moved_and_holds_its_statuses() {
    let run = case().start().await;
    let token = secret_file(run.dir.path(), "token", TOKEN);
    let yaml = case()
        .yaml(&run.fake.url(), &token, false)
        .replace("[\"acme/app\"]", "[\"acme/*\"]");
    let publishers = publishers(&config(&yaml), run.clock.clone());
    run.fake
        .set_outage(Some(Reply::message(307, "Temporary Redirect").header(
            "location",
            "https://api.github.com/repositories/4242/statuses/x",
        )));
    let moved = publish_one(&publishers, case().update(CommitState::Success)).await;
    assert_eq!(
        moved.result,
        DeliveryResult::RetryLater {
            error: "github answered 307: Temporary Redirect; moved to \
                    https://api.github.com/repositories/4242/statuses/x: the repository acme/app \
                    was renamed or moved; name it where it is now in the forge's `repositories` \
                    (and the Flux source's URL)"
                .into()
        }
    );
    assert_eq!(moved.attempts, 1, "a redirect is not retried at once");
    let held = publish_one(&publishers, case().update(CommitState::Failure)).await;
    assert_eq!(
        held.result,
        DeliveryResult::RetryLater {
            error: "github answered 307: Temporary Redirect; moved to \
                    https://api.github.com/repositories/4242/statuses/x: the repository acme/app \
                    was renamed or moved; name it where it is now in the forge's `repositories` \
                    (and the Flux source's URL); the repository's statuses are not sent again \
                    for 60s"
                .into()
        }
    );
    assert_eq!(run.fake.requests().len(), 1);
    let mut other = case().update(CommitState::Success);
    other.key.repository = "acme/other".into();
    run.fake.set_outage(None);
    let unaffected = publish_one(&publishers, other).await;
    assert_eq!(
        unaffected.result,
        DeliveryResult::Delivered,
        "{unaffected:?}"
    );
}
