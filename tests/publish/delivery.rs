//! The delivery machinery, shown against the fake GitHub: ordering, pacing, budgets, the
//! circuit breaker, time-outs, dropped connections, shutdown, dry runs and outcomes.

use std::sync::Arc;
use std::time::Duration;

use flux_status_exporter::forge::{
    CredentialSources, DeliveryOutcome, DeliveryPolicy, DeliveryResult, Publishers,
};
use flux_status_exporter::model::CommitState;
use flux_status_exporter::model::StatusUpdate;

use crate::common::{self, Logs, SHA, config, publish_one, secret_file};
use crate::support::fake_forges::github::GitHubFake;
use crate::support::fake_forges::{FakeServer, Fault, Reply, SkipClock};

const TOKEN: &str = "ghp_DeliveryTestToken0123";

struct Setup {
    fake: FakeServer<GitHubFake>,
    publishers: Publishers,
    clock: Arc<SkipClock>,
    logs: Logs,
    _dir: tempfile::TempDir,
}

/// The fake GitHub and publishers whose forge entry ends with `extra` YAML.
async fn setup(fake: GitHubFake, extra: &str, policy: DeliveryPolicy) -> Setup {
    let logs = Logs::capture();
    let clock = SkipClock::new();
    let fake = FakeServer::start(fake, clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "token", TOKEN);
    let config = config(&format!(
        "forges:\n  - type: github\n    apiUrl: {}\n    credentials: {{token: {{file: {token}}}}}\n    repositories: [\"acme/**\"]\n{extra}",
        fake.url()
    ));
    let publishers =
        Publishers::from_config_with(&config, &CredentialSources::new(), policy, clock.clone())
            .unwrap();
    Setup {
        fake,
        publishers,
        clock,
        logs,
        _dir: dir,
    }
}

fn fast() -> &'static str {
    "    rateLimit: {perMinute: 6000, perHour: 100000}\n"
}

fn update(repository: &str, context: &str, state: CommitState) -> StatusUpdate {
    let mut u = common::update("github", "github.com", repository, state);
    u.key.context = context.into();
    u
}

fn results(outcomes: &[DeliveryOutcome]) -> Vec<DeliveryResult> {
    outcomes.iter().map(|o| o.result.clone()).collect()
}

#[tokio::test]
async fn updates_for_one_status_keep_plan_order_while_others_interleave() {
    let s = setup(
        GitHubFake::new(TOKEN),
        "    rateLimit: {perMinute: 6000, perHour: 100000, concurrency: 4}\n",
        common::policy(),
    )
    .await;
    s.fake.set_latency(Duration::from_millis(5));
    let mut updates = Vec::new();
    for state in [
        CommitState::Pending,
        CommitState::Failure,
        CommitState::Success,
    ] {
        for context in ["flux/a", "flux/b", "flux/c"] {
            updates.push(update("acme/app", context, state));
        }
    }
    let outcomes = s.publishers.publish(&updates).await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered)
    );
    for (o, u) in outcomes.iter().zip(&updates) {
        assert_eq!(
            (&o.key, o.state),
            (&u.key, u.state),
            "outcomes follow the input order"
        );
    }
    for context in ["flux/a", "flux/b", "flux/c"] {
        let states: Vec<_> = s
            .fake
            .requests()
            .iter()
            .filter(|r| r.body["context"] == context)
            .map(|r| r.body["state"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(states, ["pending", "failure", "success"], "{context}");
    }
}

#[tokio::test]
async fn a_burst_is_paced_under_githubs_secondary_limit_with_no_refusal() {
    // Default GitHub pacing (80 per minute, 500 per hour) against a fake enforcing 80/minute.
    let s = setup(
        GitHubFake::new(TOKEN).limit_per_minute(80),
        "",
        common::policy(),
    )
    .await;
    let updates: Vec<_> = (0..300)
        .map(|i| update("acme/app", &format!("flux/{i}"), CommitState::Success))
        .collect();
    let outcomes = s.publishers.publish(&updates).await;
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == DeliveryResult::Delivered)
    );
    assert_eq!(s.fake.with(|f| f.rate_limited), 0);
    // Evenly spaced at 60.6 s / 80 = 757.5 ms: 299 gaps.
    let waited: Duration = s.clock.sleeps().iter().sum();
    assert_eq!(waited, Duration::from_micros(757_500) * 299);
}

#[tokio::test]
async fn the_hourly_budget_leaves_the_rest_for_a_later_tick() {
    let s = setup(
        GitHubFake::new(TOKEN),
        "    rateLimit: {perMinute: 6000, perHour: 3}\n",
        common::policy(),
    )
    .await;
    let updates: Vec<_> = (0..5)
        .map(|i| update("acme/app", &format!("flux/{i}"), CommitState::Success))
        .collect();
    let outcomes = s.publishers.publish(&updates).await;
    let delivered = outcomes
        .iter()
        .filter(|o| o.result == DeliveryResult::Delivered)
        .count();
    assert_eq!(delivered, 3);
    for o in &outcomes[3..] {
        let error = o.result.error().unwrap();
        assert!(
            error.starts_with("github: the per-hour budget is used up; next request in 363"),
            "{error}"
        );
        assert!(
            error.ends_with("s, longer than the 300s a tick waits"),
            "{error}"
        );
        assert_eq!(o.attempts, 0);
    }
    assert_eq!(s.fake.requests().len(), 3);
}

#[tokio::test]
async fn a_forge_that_keeps_failing_opens_the_circuit_and_is_left_alone() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    for _ in 0..20 {
        s.fake
            .inject(Fault::Respond(Reply::message(503, "Service Unavailable")));
    }
    let updates: Vec<_> = (0..4)
        .map(|i| update("acme/app", &format!("flux/{i}"), CommitState::Success))
        .collect();
    let outcomes = s.publishers.publish(&updates).await;
    assert_eq!(
        results(&outcomes),
        vec![
            DeliveryResult::RetryLater {
                error: "github answered 503: Service Unavailable (gave up after 4 attempts)"
                    .into()
            },
            DeliveryResult::RetryLater {
                error: "github answered 503: Service Unavailable (github has failed 5 requests in a row; not contacting it for 30s)".into()
            },
            DeliveryResult::RetryLater {
                error: "github is failing (5 requests in a row failed, the last: github answered 503: Service Unavailable); not contacting it for 30s".into()
            },
            DeliveryResult::RetryLater {
                error: "github is failing (5 requests in a row failed, the last: github answered 503: Service Unavailable); not contacting it for 30s".into()
            },
        ]
    );
    let attempts: Vec<_> = outcomes.iter().map(|o| o.attempts).collect();
    assert_eq!(attempts, vec![4, 1, 0, 0]);
    assert_eq!(s.fake.requests().len(), 5);
}

#[tokio::test]
async fn after_the_cooldown_a_successful_probe_closes_the_circuit() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    for _ in 0..5 {
        s.fake.inject(Fault::Drop);
    }
    let updates: Vec<_> = (0..3)
        .map(|i| update("acme/app", &format!("flux/{i}"), CommitState::Success))
        .collect();
    let first = s.publishers.publish(&updates).await;
    assert!(
        first
            .iter()
            .all(|o| matches!(o.result, DeliveryResult::RetryLater { .. }))
    );
    assert_eq!(s.fake.requests().len(), 5);
    s.clock.advance(Duration::from_secs(30));
    let second = s.publishers.publish(&updates).await;
    assert_eq!(
        results(&second),
        vec![DeliveryResult::Delivered; 3],
        "{second:?}"
    );
    assert_eq!(s.fake.requests().len(), 8);
}

#[tokio::test]
async fn a_hung_request_times_out_and_is_retried() {
    let s = setup(
        GitHubFake::new(TOKEN),
        "    rateLimit: {perMinute: 6000, perHour: 100000}\n    requestTimeout: 300ms\n",
        common::policy(),
    )
    .await;
    s.fake.inject(Fault::Hang);
    let outcome = publish_one(
        &s.publishers,
        update("acme/app", "flux/a", CommitState::Success),
    )
    .await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 2);
    assert_eq!(s.fake.requests().len(), 2);
}

#[tokio::test]
async fn requests_that_never_answer_end_as_retry_later_naming_the_timeout() {
    let policy = DeliveryPolicy {
        max_attempts: 2,
        ..common::policy()
    };
    let s = setup(
        GitHubFake::new(TOKEN),
        "    rateLimit: {perMinute: 6000, perHour: 100000}\n    requestTimeout: 200ms\n",
        policy,
    )
    .await;
    s.fake.inject(Fault::Hang);
    s.fake.inject(Fault::Hang);
    let outcome = publish_one(
        &s.publishers,
        update("acme/app", "flux/a", CommitState::Success),
    )
    .await;
    assert_eq!(
        outcome.result,
        DeliveryResult::RetryLater {
            error: "no answer within 200ms (gave up after 2 attempts)".into()
        }
    );
    assert_eq!(outcome.http_status, None);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    s.fake.inject(Fault::Drop);
    let outcome = publish_one(
        &s.publishers,
        update("acme/app", "flux/a", CommitState::Success),
    )
    .await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 2);
    s.logs.assert_never_contains(TOKEN);
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_and_starts_no_more() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    s.fake.set_latency(Duration::from_millis(200));
    let updates: Vec<_> = (0..3)
        .map(|i| update("acme/app", &format!("flux/{i}"), CommitState::Success))
        .collect();
    let (outcomes, finished) = tokio::join!(s.publishers.publish(&updates), async {
        while s.fake.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        s.publishers.shutdown(Duration::from_secs(5)).await
    });
    assert!(finished);
    assert!(s.publishers.is_shutting_down());
    let not_sent = DeliveryResult::RetryLater {
        error: "shutting down; not sent".into(),
    };
    assert_eq!(
        results(&outcomes),
        vec![DeliveryResult::Delivered, not_sent.clone(), not_sent]
    );
    assert_eq!(s.fake.requests().len(), 1);
}

#[tokio::test]
async fn shutdown_cuts_off_a_request_that_outlives_the_grace_period() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    s.fake.inject(Fault::Hang);
    let updates = [update("acme/app", "flux/a", CommitState::Success)];
    let (outcomes, finished) = tokio::join!(s.publishers.publish(&updates), async {
        while s.fake.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        s.publishers.shutdown(Duration::from_millis(100)).await
    });
    assert!(!finished);
    assert_eq!(
        results(&outcomes),
        vec![DeliveryResult::RetryLater {
            error: "cut off at shutdown".into()
        }]
    );
}

#[tokio::test]
async fn a_delivered_outcome_carries_forge_state_reason_status_and_attempts() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    let u = update("acme/app", "flux/a", CommitState::Failure);
    let outcome = publish_one(&s.publishers, u.clone()).await;
    assert_eq!(
        outcome,
        DeliveryOutcome {
            key: u.key,
            forge: Some("github".into()),
            state: CommitState::Failure,
            reason: "HealthCheckFailed".into(),
            result: DeliveryResult::Delivered,
            http_status: Some(201),
            duration: Duration::ZERO,
            attempts: 1,
        }
    );
    assert_eq!(outcome.result.as_str(), "delivered");
}

#[tokio::test]
async fn a_repository_github_cannot_address_is_a_permanent_error_without_a_request() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    let outcome = publish_one(
        &s.publishers,
        update("acme/sub/app", "flux/a", CommitState::Success),
    )
    .await;
    assert_eq!(
        outcome.result,
        DeliveryResult::PermanentError {
            error: "repository `acme/sub/app` is not owner/repository".into()
        }
    );
    assert_eq!(outcome.attempts, 0);
    assert!(s.fake.requests().is_empty());
}

#[tokio::test]
async fn an_unreadable_credential_is_retried_next_tick_without_a_request() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    std::fs::remove_file(s._dir.path().join("token")).unwrap();
    let outcome = publish_one(
        &s.publishers,
        update("acme/app", "flux/a", CommitState::Success),
    )
    .await;
    let expected = format!(
        "credentials: cannot read credential file {}: entity not found",
        s._dir.path().join("token").display()
    );
    assert_eq!(
        outcome.result,
        DeliveryResult::RetryLater {
            error: expected.clone()
        }
    );
    assert_eq!(outcome.attempts, 0);
    assert!(s.fake.requests().is_empty());
    assert_eq!(
        s.publishers.credential_refused(),
        [("github".to_string(), Some(expected))],
        "the reason shows (metric, /readyz) until the forge accepts a request"
    );
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_logs_the_request_it_would_send() {
    let logs = Logs::capture();
    let clock = SkipClock::new();
    let fake = FakeServer::start(GitHubFake::new(TOKEN), clock).await;
    let config = config(&format!(
        "forges:\n  - type: github\n    apiUrl: {}\n    credentials: {{token: {{env: FSE_DRY_RUN_TOKEN_NEVER_READ}}}}\n",
        fake.url()
    ));
    let publishers = Publishers::dry_run_for(&config).unwrap();
    let outcome = publish_one(
        &publishers,
        update("acme/app", "flux/a", CommitState::Success),
    )
    .await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 0);
    assert!(fake.requests().is_empty());
    let text = logs.text();
    assert!(text.contains("dry run: would post this status"), "{text}");
    assert!(
        text.contains(&format!("{}/repos/acme/app/statuses/{SHA}", fake.url())),
        "{text}"
    );
    assert!(text.contains(r#""state":"success""#), "{text}");
}

#[tokio::test]
async fn a_dry_run_without_configuration_logs_every_deliverable_update() {
    let logs = Logs::capture();
    let publishers = Publishers::dry_run();
    let mut unmatched = update("acme/app", "flux/b", CommitState::Pending);
    unmatched.delivery = flux_status_exporter::model::Delivery::Unmatched;
    let outcomes = publishers
        .publish(&[
            update("acme/app", "flux/a", CommitState::Success),
            unmatched,
        ])
        .await;
    assert_eq!(
        results(&outcomes),
        vec![DeliveryResult::Delivered, DeliveryResult::SkippedUnmatched]
    );
    let text = logs.text();
    assert!(text.contains("dry run: would post this status"), "{text}");
    assert!(text.contains("flux/a"), "{text}");
}

#[tokio::test]
async fn a_refused_credential_is_tried_twice_per_forge_then_held_with_backoff_and_every_status_waits()
 {
    // The fake accepts another token than the one configured: every request gets 401.
    let s = setup(
        GitHubFake::new("ghp_TheRotatedToken"),
        fast(),
        common::policy(),
    )
    .await;
    let updates: Vec<_> = (0..4)
        .map(|i| update("acme/app", &format!("flux/{i}"), CommitState::Success))
        .collect();
    let outcomes = s.publishers.publish(&updates).await;
    assert_eq!(
        s.fake.requests().len(),
        2,
        "one request, and one with the credential read again"
    );
    let held = "github refused the credential (github answered 401: Bad credentials); it is not used again for 60s";
    assert_eq!(
        results(&outcomes),
        vec![
            DeliveryResult::RetryLater {
                error: "github answered 401: Bad credentials (the credential is not used again for 60s)".into()
            },
            DeliveryResult::RetryLater { error: held.into() },
            DeliveryResult::RetryLater { error: held.into() },
            DeliveryResult::RetryLater { error: held.into() },
        ]
    );
    assert_eq!(
        s.publishers.credential_refused(),
        [(
            "github".to_string(),
            Some("github answered 401: Bad credentials".to_string())
        )]
    );

    // Still refused once the hold ends: the next hold is twice as long.
    s.clock.advance(Duration::from_secs(61));
    let again = s.publishers.publish(&updates).await;
    assert_eq!(s.fake.requests().len(), 4);
    assert_eq!(
        results(&again)[0],
        DeliveryResult::RetryLater {
            error:
                "github answered 401: Bad credentials (the credential is not used again for 120s)"
                    .into()
        }
    );

    // Fixed: after the hold, every held status is delivered.
    secret_file(s._dir.path(), "token", "ghp_TheRotatedToken");
    s.clock.advance(Duration::from_secs(121));
    let fixed = s.publishers.publish(&updates).await;
    assert_eq!(results(&fixed), vec![DeliveryResult::Delivered; 4]);
    assert_eq!(
        s.publishers.credential_refused(),
        [("github".to_string(), None)]
    );
}

#[tokio::test]
async fn a_host_without_a_forge_is_logged_once_however_many_statuses_and_ticks_name_it() {
    let s = setup(GitHubFake::new(TOKEN), fast(), common::policy()).await;
    let unmatched = |sha_context: &str| {
        let mut update = update("acme/app", sha_context, CommitState::Success);
        update.key.host = "git.example.org".into();
        update.delivery = flux_status_exporter::model::Delivery::Unmatched;
        update
    };
    for _tick in 0..3 {
        let outcomes = s
            .publishers
            .publish(&[unmatched("flux/a"), unmatched("flux/b")])
            .await;
        assert!(
            outcomes
                .iter()
                .all(|o| o.result == DeliveryResult::SkippedUnmatched)
        );
    }
    let text = s.logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("no forge configured for this host") && l.contains("INFO"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("host=git.example.org"), "{lines:?}");
}
