//! `statuses.readBack`: the checks every forge must pass. A status the ledger has no record of
//! is read back first and only posted when the forge does not already show it.

use std::time::Duration;

use flux_status_exporter::forge::DeliveryResult;
use flux_status_exporter::model::CommitState;

use crate::common::{Case, publish_one};
use crate::support::fake_forges::{Fault, ForgeLogic, Recorded, Reply};

/// The header carrying the credential, whichever the forge uses.
fn credential(request: &Recorded) -> Option<&str> {
    request
        .header("authorization")
        .or_else(|| request.header("private-token"))
}

/// The methods of every request the fake received, in order.
fn methods<L: ForgeLogic>(run: &crate::common::Running<L>) -> Vec<String> {
    run.fake.requests().into_iter().map(|r| r.method).collect()
}

/// Checks `read` is exactly the case's read-back: a `GET` of its path, with the credential the
/// post used, and no body.
fn assert_is_the_read<L: ForgeLogic>(case: &Case<L>, read: &Recorded, post: &Recorded) {
    assert_eq!(read.method, "GET");
    assert_eq!(read.path, (case.read_path)());
    assert!(credential(read).is_some());
    assert_eq!(credential(read), credential(post));
    assert_eq!(read.raw_body, "");
    assert_eq!(read.header("content-type"), None);
}

/// Nothing shown: read, then post. Posted: the next update saying the same (with no ledger
/// record) is read back, found, and not posted; it is delivered with the read as its attempt.
pub async fn skips_the_post_when_the_forge_already_shows_it<L: ForgeLogic>(case: Case<L>) {
    let run = case.start_reading_back().await;
    let first = publish_one(&run.publishers, case.update(CommitState::Success)).await;
    assert_eq!(first.result, DeliveryResult::Delivered, "{first:?}");
    assert_eq!(first.attempts, 2);
    assert_eq!(first.http_status, Some(case.created));

    let again = publish_one(&run.publishers, case.update(CommitState::Success)).await;
    assert_eq!(again.result, DeliveryResult::Delivered, "{again:?}");
    assert_eq!(again.attempts, 1);
    assert_eq!(again.http_status, Some(200));
    assert_eq!(methods(&run), ["GET", "POST", "GET"]);
    let requests = run.fake.requests();
    assert_is_the_read(&case, &requests[0], &requests[1]);
    assert_eq!(requests[2], requests[0]);
    let logs = run.logs.text();
    assert!(
        logs.contains("the forge already shows this status; not posted again"),
        "{logs}"
    );
    run.logs.assert_never_contains(case.token);
}

/// The forge shows another state, then the same state with another description: each time the
/// read is followed by the post.
pub async fn posts_when_the_forge_shows_something_else<L: ForgeLogic>(case: Case<L>) {
    let run = case.start_reading_back().await;
    publish_one(&run.publishers, case.update(CommitState::Failure)).await;
    let success = publish_one(&run.publishers, case.update(CommitState::Success)).await;
    assert_eq!(success.result, DeliveryResult::Delivered, "{success:?}");
    assert_eq!(success.attempts, 2);
    let mut reworded = case.update(CommitState::Success);
    reworded.description =
        "reconciliation succeeded: Applied revision main@sha1:0123456 again".into();
    let outcome = publish_one(&run.publishers, reworded).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(outcome.attempts, 2);
    assert_eq!(methods(&run), ["GET", "POST", "GET", "POST", "GET", "POST"]);
    let requests = run.fake.requests();
    for read in [&requests[2], &requests[4]] {
        assert_is_the_read(&case, read, &requests[1]);
    }
    assert_eq!(
        requests[5].body["description"],
        "reconciliation succeeded: Applied revision main@sha1:0123456 again"
    );
}

/// A read answered with a 502 does not hold the post back: it is sent at once (no back-off),
/// and the failure is logged at debug.
pub async fn still_posts_when_the_read_fails<L: ForgeLogic>(case: Case<L>) {
    let run = case.start_reading_back().await;
    run.fake
        .inject(Fault::Respond(Reply::message(502, "Bad Gateway")));
    let outcome = publish_one(&run.publishers, case.update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(outcome.attempts, 2);
    assert_eq!(outcome.http_status, Some(case.created));
    assert_eq!(methods(&run), ["GET", "POST"]);
    assert!(
        run.clock.sleeps_over(Duration::from_millis(100)).is_empty(),
        "{:?}",
        run.clock.sleeps()
    );
    let logs = run.logs.text();
    assert!(
        logs.contains(&format!(
            "read-back failed, posting anyway: {} answered 502: Bad Gateway",
            case.kind
        )),
        "{logs}"
    );
    run.logs.assert_never_contains(case.token);
}

/// Without `readBack`, or with a ledger record, nothing is read: every update is posted.
pub async fn never_reads_without_the_flag_or_with_a_ledger_record<L: ForgeLogic>(case: Case<L>) {
    let run = case.start().await;
    for _ in 0..2 {
        let outcome = publish_one(&run.publishers, case.update(CommitState::Success)).await;
        assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
        assert_eq!(outcome.attempts, 1);
    }
    assert_eq!(methods(&run), ["POST", "POST"]);

    let reading = case.start_reading_back().await;
    let mut recorded = case.update(CommitState::Success);
    recorded.previous = Some(CommitState::Failure);
    let outcome = publish_one(&reading.publishers, recorded).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(methods(&reading), ["POST"]);
}

/// Answers of a few hundred KB, as a busy commit's status pages are: the post is delivered on
/// its first attempt, and the read-back still finds what the forge shows and posts nothing.
pub async fn reads_success_answers_of_200_kb<L: ForgeLogic>(case: Case<L>) {
    let run = case.start_reading_back().await;
    run.fake.pad_success_bodies(200_000);
    let first = publish_one(&run.publishers, case.update(CommitState::Success)).await;
    assert_eq!(first.result, DeliveryResult::Delivered, "{first:?}");
    assert_eq!(first.attempts, 2);
    let again = publish_one(&run.publishers, case.update(CommitState::Success)).await;
    assert_eq!(again.result, DeliveryResult::Delivered, "{again:?}");
    assert_eq!(again.attempts, 1);
    assert_eq!(methods(&run), ["GET", "POST", "GET"]);
}
