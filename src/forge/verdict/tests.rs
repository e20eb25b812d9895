use std::time::UNIX_EPOCH;

use super::*;
use crate::forge::answer::{RateLimitInfo, RetryAfter};
use crate::forge::credentials::CredentialError;

const NOW: u64 = 1_800_000_000;
const PAUSES: RateLimitPause = RateLimitPause {
    first: Duration::from_secs(60),
    max: Duration::from_secs(900),
};
const POST: Asked = Asked::Post {
    already_current: false,
};

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn answer(status: u16, message: &str, rate: RateLimitInfo) -> ForgeResponse {
    ForgeResponse {
        status,
        rate,
        message: message.into(),
    }
}

fn plain(status: u16) -> ForgeResponse {
    answer(status, "", RateLimitInfo::default())
}

fn used_up(reset_in: u64) -> RateLimitInfo {
    RateLimitInfo {
        limit: Some(5000),
        remaining: Some(0),
        reset_epoch: Some(NOW + reset_in),
        retry_after: None,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn judgement(answer: Answer, streak: u32) -> Judgement {
    Judgement {
        answer,
        streak,
        pause: None,
        retry_after: None,
        remaining: None,
    }
}

#[test]
fn every_status_family_has_its_class() {
    let table = [
        (200, Answer::Accepted),
        (201, Answer::Accepted),
        (204, Answer::Accepted),
        (301, Answer::Moved),
        (307, Answer::Moved),
        (400, Answer::Refused),
        (401, Answer::CredentialRefused),
        (403, Answer::Refused),
        (404, Answer::Refused),
        (408, Answer::Unavailable),
        (422, Answer::Refused),
        (429, Answer::RateLimited),
        (500, Answer::Unavailable),
        (502, Answer::Unavailable),
        (503, Answer::Unavailable),
        (599, Answer::Unavailable),
        (600, Answer::Refused),
        (999, Answer::Refused),
    ];
    for (status, class) in table {
        assert_eq!(classify(&plain(status), false), class, "{status}");
    }
}

#[test]
fn a_403_is_a_rate_limit_only_with_its_signs() {
    let retry = RateLimitInfo {
        retry_after: Some(RetryAfter::Seconds(30)),
        ..RateLimitInfo::default()
    };
    let table = [
        (
            answer(403, "Forbidden", RateLimitInfo::default()),
            Answer::Refused,
        ),
        (answer(403, "", retry), Answer::RateLimited),
        (answer(403, "", used_up(60)), Answer::RateLimited),
        (
            answer(403, "API rate limit exceeded", RateLimitInfo::default()),
            Answer::RateLimited,
        ),
        (
            answer(
                403,
                "You have exceeded a secondary RATE LIMIT",
                RateLimitInfo::default(),
            ),
            Answer::RateLimited,
        ),
    ];
    for (response, class) in table {
        assert_eq!(classify(&response, false), class, "{response:?}");
    }
}

#[test]
fn already_current_wins_over_the_refusal_but_not_over_success() {
    assert_eq!(classify(&plain(400), true), Answer::AlreadyCurrent);
    assert_eq!(classify(&plain(200), true), Answer::Accepted);
}

#[test]
fn a_delivered_post_resets_the_streak_and_keeps_the_remaining_budget() {
    let rate = RateLimitInfo {
        remaining: Some(42),
        ..RateLimitInfo::default()
    };
    assert_eq!(
        judge(&answer(201, "", rate), POST, wall(), 3, PAUSES),
        Judgement {
            remaining: Some(42),
            ..judgement(Answer::Accepted, 0)
        }
    );
}

#[test]
fn a_delivered_post_with_the_budget_used_up_pauses_until_the_reset_and_a_second() {
    assert_eq!(
        judge(&answer(201, "", used_up(60)), POST, wall(), 0, PAUSES),
        Judgement {
            pause: Some(Pause {
                wait: secs(61),
                reason: PauseReason::BudgetUsedUp
            }),
            remaining: Some(0),
            ..judgement(Answer::Accepted, 0)
        }
    );
}

#[test]
fn an_already_current_refusal_counts_as_delivered() {
    let asked = Asked::Post {
        already_current: true,
    };
    assert_eq!(
        judge(&plain(400), asked, wall(), 2, PAUSES),
        judgement(Answer::AlreadyCurrent, 0)
    );
}

#[test]
fn retry_after_in_seconds_decides_the_rate_limit_pause() {
    let rate = RateLimitInfo {
        retry_after: Some(RetryAfter::Seconds(30)),
        ..RateLimitInfo::default()
    };
    assert_eq!(
        judge(&answer(429, "slow down", rate), POST, wall(), 0, PAUSES),
        Judgement {
            pause: Some(Pause {
                wait: secs(30),
                reason: PauseReason::RateLimited
            }),
            ..judgement(Answer::RateLimited, 1)
        }
    );
}

#[test]
fn retry_after_as_an_http_date_waits_until_that_time() {
    let rate = RateLimitInfo {
        retry_after: Some(RetryAfter::At(wall() + secs(45))),
        ..RateLimitInfo::default()
    };
    assert_eq!(
        rate_limit_wait(&answer(429, "", rate), wall(), 0, PAUSES),
        secs(45)
    );
    let past = RateLimitInfo {
        retry_after: Some(RetryAfter::At(wall() - secs(5))),
        ..RateLimitInfo::default()
    };
    assert_eq!(
        rate_limit_wait(&answer(429, "", past), wall(), 0, PAUSES),
        secs(0)
    );
}

#[test]
fn retry_after_wins_over_the_reset() {
    let rate = RateLimitInfo {
        retry_after: Some(RetryAfter::Seconds(5)),
        ..used_up(600)
    };
    assert_eq!(
        rate_limit_wait(&answer(403, "", rate), wall(), 0, PAUSES),
        secs(5)
    );
}

#[test]
fn a_used_up_budget_with_a_reset_waits_until_the_reset_and_a_second() {
    assert_eq!(
        rate_limit_wait(&answer(403, "", used_up(120)), wall(), 4, PAUSES),
        secs(121)
    );
}

#[test]
fn a_used_up_budget_without_a_reset_doubles_the_pause_per_refusal() {
    let rate = RateLimitInfo {
        remaining: Some(0),
        ..RateLimitInfo::default()
    };
    let waits: Vec<u64> = [0, 1, 2, 3, 4, 20]
        .into_iter()
        .map(|streak| rate_limit_wait(&answer(403, "", rate), wall(), streak, PAUSES).as_secs())
        .collect();
    assert_eq!(waits, vec![60, 120, 240, 480, 900, 900]);
}

#[test]
fn a_rate_limit_without_signs_pauses_a_minute_then_doubles() {
    let first = judge(&plain(429), POST, wall(), 0, PAUSES);
    let second = judge(&plain(429), Asked::Read, wall(), first.streak, PAUSES);
    assert_eq!(
        (first.streak, first.pause.map(|p| p.wait)),
        (1, Some(secs(60)))
    );
    assert_eq!(
        (second.streak, second.pause.map(|p| p.wait)),
        (2, Some(secs(120)))
    );
}

#[test]
fn a_refused_credential_keeps_the_streak_and_pauses_nothing() {
    assert_eq!(
        judge(&plain(401), POST, wall(), 2, PAUSES),
        judgement(Answer::CredentialRefused, 2)
    );
    assert_eq!(
        judge(
            &answer(401, "", used_up(60)),
            Asked::Read,
            wall(),
            2,
            PAUSES
        ),
        Judgement {
            remaining: Some(0),
            ..judgement(Answer::CredentialRefused, 2)
        }
    );
}

#[test]
fn an_unavailable_forge_carries_its_retry_after_and_counts_as_a_failure() {
    let rate = RateLimitInfo {
        retry_after: Some(RetryAfter::Seconds(7)),
        ..RateLimitInfo::default()
    };
    let verdict = judge(&answer(503, "maintenance", rate), POST, wall(), 1, PAUSES);
    assert_eq!(
        verdict,
        Judgement {
            retry_after: Some(secs(7)),
            ..judgement(Answer::Unavailable, 1)
        }
    );
    assert!(verdict.is_failure());
    assert_eq!(
        judge(&plain(408), POST, wall(), 0, PAUSES),
        judgement(Answer::Unavailable, 0)
    );
}

#[test]
fn a_refused_post_pauses_nothing_but_a_refused_read_waits_for_the_refill() {
    assert_eq!(
        judge(&answer(422, "", used_up(10)), POST, wall(), 1, PAUSES),
        Judgement {
            remaining: Some(0),
            ..judgement(Answer::Refused, 1)
        }
    );
    assert_eq!(
        judge(
            &answer(404, "", used_up(10)),
            Asked::Read,
            wall(),
            1,
            PAUSES
        ),
        Judgement {
            pause: Some(Pause {
                wait: secs(11),
                reason: PauseReason::BudgetUsedUp
            }),
            remaining: Some(0),
            ..judgement(Answer::Refused, 1)
        }
    );
    assert!(!judge(&plain(404), Asked::Read, wall(), 0, PAUSES).is_failure());
}

#[test]
fn refusals_name_the_forge_and_its_message() {
    assert_eq!(refusal("github", &plain(502)), "github answered 502");
    assert_eq!(
        refusal(
            "gitlab",
            &answer(400, "name is too long", RateLimitInfo::default())
        ),
        "gitlab answered 400: name is too long"
    );
}

#[test]
fn requests_without_an_answer_say_why_and_whether_they_were_sent() {
    let table = [
        (SendFailure::CutOff, Unanswered::CutOff),
        (
            SendFailure::TimedOut(Duration::from_millis(200)),
            Unanswered::NoAnswer("no answer within 200ms".into()),
        ),
        (
            SendFailure::Failed(Failure::Transport("connection reset".into())),
            Unanswered::NoAnswer("request failed: connection reset".into()),
        ),
        (
            SendFailure::Failed(Failure::Invalid("bad repository".into())),
            Unanswered::NotSent(Failure::Invalid("bad repository".into())),
        ),
        (
            SendFailure::Failed(Failure::Credential(CredentialError::EnvMissing("T".into()))),
            Unanswered::NotSent(Failure::Credential(CredentialError::EnvMissing("T".into()))),
        ),
    ];
    for (failure, meaning) in table {
        assert_eq!(unanswered(failure), meaning);
    }
}

#[test]
fn waits_are_told_in_whole_seconds_rounded_up() {
    assert_eq!(whole_seconds(Duration::ZERO), 0);
    assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
    assert_eq!(whole_seconds(secs(30)), 30);
    assert_eq!(whole_seconds(Duration::from_millis(30_001)), 31);
}
