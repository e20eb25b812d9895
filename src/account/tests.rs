use std::collections::HashSet;
use std::time::Duration;

use super::*;
use crate::flux::revision::CommitSha;
use crate::flux::{FluxKind, ResourceRef};

fn key(host: &str, repository: &str, sha: char) -> StatusKey {
    StatusKey {
        host: host.to_string(),
        repository: repository.to_string(),
        sha: CommitSha::from_hex(&sha.to_string().repeat(40)).unwrap(),
        context: "flux/prod/Kustomization/apps/app".to_string(),
    }
}

fn outcome(
    key: StatusKey,
    forge: Option<&str>,
    result: DeliveryResult,
    attempts: u32,
) -> DeliveryOutcome {
    DeliveryOutcome {
        key,
        forge: forge.map(str::to_string),
        state: CommitState::Success,
        reason: "ReconciliationSucceeded".to_string(),
        result,
        http_status: None,
        duration: Duration::from_millis(40),
        attempts,
    }
}

fn update(key: StatusKey, delivery: Delivery) -> StatusUpdate {
    StatusUpdate {
        key,
        delivery,
        state: CommitState::Success,
        reason: "ReconciliationSucceeded".to_string(),
        description: String::new(),
        target_url: None,
        resource: ResourceRef::new(FluxKind::Kustomization, "apps", "app"),
        previous: None,
    }
}

#[test]
fn each_result_is_counted_in_its_column_and_permanent_refusals_are_listed_with_their_error() {
    let outcomes = [
        outcome(
            key("github.com", "acme/a", 'a'),
            Some("hub"),
            DeliveryResult::Delivered,
            1,
        ),
        outcome(
            key("github.com", "acme/a", 'b'),
            Some("hub"),
            DeliveryResult::RetryLater {
                error: "502".into(),
            },
            3,
        ),
        outcome(
            key("github.com", "acme/a", 'c'),
            Some("hub"),
            DeliveryResult::PermanentError {
                error: "422 too many statuses".into(),
            },
            1,
        ),
    ];
    let tally = account(&outcomes, &HashSet::new(), &[]);
    assert_eq!(
        (
            tally.delivered,
            tally.retry_later,
            tally.permanent_errors,
            tally.skipped
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(
        tally.refused,
        vec![(&outcomes[2].key, "422 too many statuses")]
    );
    assert_eq!(
        tally.counted[1],
        CountedDelivery {
            forge: "hub",
            state: "success",
            result: "retry_later",
            duration: Some(Duration::from_millis(40)),
        }
    );
}

#[test]
fn a_skipped_status_is_counted_once_while_it_stays_skipped_and_again_after_it_was_not() {
    let unmatched = key("example.org", "acme/x", 'a');
    let outcomes = [outcome(
        unmatched.clone(),
        None,
        DeliveryResult::SkippedUnmatched,
        0,
    )];
    let first = account(&outcomes, &HashSet::new(), &[]);
    assert_eq!(
        first.counted,
        vec![CountedDelivery {
            forge: "none",
            state: "success",
            result: "skipped_unmatched",
            duration: None,
        }]
    );
    let second = account(&outcomes, &first.skips, &[]);
    assert_eq!(second.counted, vec![]);
    assert_eq!(second.skipped, 1, "still reported as skipped in this tick");
    // A tick in which it was not skipped forgets it: the next skip is counted again.
    let between = account(&[], &second.skips, &[]);
    assert!(between.skips.is_empty());
    assert_eq!(account(&outcomes, &between.skips, &[]).counted.len(), 1);
}

#[test]
fn unmatched_repositories_are_counted_once_per_host_and_repository() {
    let updates = [
        update(key("example.org", "acme/x", 'a'), Delivery::Unmatched),
        update(key("example.org", "acme/x", 'b'), Delivery::Unmatched),
        update(key("example.org", "acme/y", 'a'), Delivery::Unmatched),
        update(
            key("github.com", "acme/a", 'a'),
            Delivery::Forge {
                forge: "hub".into(),
            },
        ),
    ];
    assert_eq!(
        account(&[], &HashSet::new(), &updates).unmatched_repositories,
        2
    );
}

#[test]
fn a_repository_the_forge_does_not_allow_is_skipped_and_counted_under_its_forge() {
    let outcomes = [outcome(
        key("github.com", "other/x", 'a'),
        Some("hub"),
        DeliveryResult::SkippedNotAllowed,
        0,
    )];
    let tally = account(&outcomes, &HashSet::new(), &[]);
    assert_eq!(
        (tally.skipped, tally.delivered, tally.retry_later),
        (1, 0, 0)
    );
    assert_eq!(
        tally.counted,
        vec![CountedDelivery {
            forge: "hub",
            state: "success",
            result: "skipped_not_allowed",
            duration: None,
        }]
    );
    assert!(tally.refused.is_empty());
}
