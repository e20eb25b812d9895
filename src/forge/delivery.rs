//! Delivering one update on its lane: read back (when asked), then post with retries, pauses
//! and back-off, each answer judged by [`super::verdict`].

use std::time::{Duration, Instant};

use super::answer::{Failure, ReadAnswer};
use super::credentials::CredentialError;
use super::lane::{Hold, Lane, NoSlot, Pacing};
use super::publishers::{Publishers, log_outcome};
use super::read_back::{MAX_READ_PAGES, ReadBack};
use super::request::{Prepared, StatusRequest};
use super::shutdown::{InFlight, Phase};
use super::verdict::{self, Answer, Asked, SendFailure, Unanswered, whole_seconds};
use crate::backoff::Grain;
use crate::model::StatusUpdate;
use crate::model::{DeliveryOutcome, DeliveryResult};

/// What one answer (or its absence) means for the post.
enum Step {
    Done(DeliveryResult),
    /// Worth retrying after a back-off (at least the forge's `Retry-After`, if given), unless
    /// this failure opened the circuit (`failures` in a row, closed for `cooldown`).
    Transient {
        error: String,
        retry_after: Option<Duration>,
        opened: Option<(u32, Duration)>,
    },
    /// The forge limits our rate (the lane is paused): retry.
    RateLimited(String),
    /// Retry at once (the credential was refused once and has been re-read).
    Again(String),
}

fn stopping() -> DeliveryResult {
    DeliveryResult::RetryLater {
        error: NoSlot::ShuttingDown.to_string(),
    }
}

impl Publishers {
    pub(super) async fn deliver(&self, lane: &Lane, update: &StatusUpdate) -> DeliveryOutcome {
        let mut outcome = DeliveryOutcome {
            key: update.key.clone(),
            forge: update.delivery.forge_name().map(str::to_string),
            state: update.state,
            reason: update.reason.clone(),
            result: DeliveryResult::Delivered,
            http_status: None,
            duration: Duration::ZERO,
            attempts: 0,
        };
        let request = match lane.publisher.dialect().prepare(update) {
            Ok(Prepared::Send(request)) => request,
            Ok(Prepared::Unnecessary(why)) => {
                tracing::debug!(forge = %lane.name, context = %update.key.context, "not sent: {why}");
                log_outcome(update, &outcome);
                return outcome;
            }
            Err(failure) => {
                outcome.result = DeliveryResult::PermanentError {
                    error: failure.to_string(),
                };
                log_outcome(update, &outcome);
                return outcome;
            }
        };
        if lane.dry_run {
            // The dry-run transport only logs; it cannot fail.
            let _ = lane.publisher.send(update, &request).await;
            return outcome;
        }
        let mut held = false;
        outcome.result = self
            .attempts(lane, update, &request, &mut outcome, &mut held)
            .await;
        if held {
            // The refusal itself was logged once; each status it holds back is not.
            tracing::debug!(forge = %lane.name, context = %update.key.context, "not sent: held after the refusal logged before");
        } else {
            log_outcome(update, &outcome);
        }
        outcome
    }

    /// Sends until the update is delivered, refused for good, or not worth waiting for.
    async fn attempts(
        &self,
        lane: &Lane,
        update: &StatusUpdate,
        request: &StatusRequest,
        outcome: &mut DeliveryOutcome,
        held: &mut bool,
    ) -> DeliveryResult {
        if self.shutdown.phase() != Phase::Running {
            return stopping();
        }
        let _permit = tokio::select! {
            permit = lane.permits.acquire() => match permit {
                Ok(p) => p,
                Err(_) => return stopping(),
            },
            () = self.shutdown.reached(Phase::Draining) => return stopping(),
        };
        let now = self.clock.now();
        let (credential, moved) = {
            let state = lane.state();
            let active = |hold: &Hold| hold.active(now).map(|(left, why)| (left, why.to_string()));
            // Most forges have no moved repository: no key is built for them.
            let moved = if state.moved.is_empty() {
                None
            } else {
                state.moved.get(&repository_key(update)).and_then(active)
            };
            (active(&state.credential), moved)
        };
        if let Some((left, why)) = credential {
            *held = true;
            return DeliveryResult::RetryLater {
                error: format!(
                    "{} refused the credential ({why}); it is not used again for {}s",
                    lane.name,
                    whole_seconds(left)
                ),
            };
        }
        if let Some((left, why)) = moved {
            *held = true;
            return DeliveryResult::RetryLater {
                error: format!(
                    "{why}; the repository's statuses are not sent again for {}s",
                    whole_seconds(left)
                ),
            };
        }
        let mut started: Option<Instant> = None;
        // Only a status the ledger knows nothing of is read back: for the others the ledger
        // already says what the forge shows.
        if self.read_back && update.previous.is_none() {
            let shown = self
                .already_shown(lane, update, request, outcome, &mut started)
                .await;
            if shown || self.shutdown.phase() != Phase::Running {
                outcome.duration = self.since(started);
                return if shown {
                    DeliveryResult::Delivered
                } else {
                    stopping()
                };
            }
        }
        // Reads do not use up the posts' attempts.
        let reads = outcome.attempts;
        let mut credential_retried = false;
        let result = loop {
            if let Err(refused) = self.wait_for_slot(lane, Pacing::Paced).await {
                break DeliveryResult::RetryLater {
                    error: refused.to_string(),
                };
            }
            outcome.attempts += 1;
            started.get_or_insert_with(|| self.clock.now());
            let step = match self.send_once(lane, update, request).await {
                Err(failure) => self.unanswered_post(lane, failure, outcome),
                Ok(answer) => {
                    outcome.http_status = Some(answer.response.status);
                    self.judge_post(lane, update, &answer, &mut credential_retried)
                }
            };
            let attempts = outcome.attempts - reads;
            let out_of_attempts = attempts >= self.policy.max_attempts;
            let gave_up = |error: &str| DeliveryResult::RetryLater {
                error: format!("{error} (gave up after {attempts} attempts)"),
            };
            match step {
                Step::Done(result) => break result,
                Step::Again(error) if out_of_attempts => break gave_up(&error),
                Step::Again(_) => {}
                Step::RateLimited(error) if out_of_attempts => break gave_up(&error),
                Step::RateLimited(_) => {}
                Step::Transient {
                    error,
                    opened: Some((failures, cooldown)),
                    ..
                } => {
                    break DeliveryResult::RetryLater {
                        error: format!(
                            "{error} ({} has failed {failures} requests in a row; not contacting it for {}s)",
                            lane.name,
                            whole_seconds(cooldown)
                        ),
                    };
                }
                Step::Transient { error, .. } if out_of_attempts => break gave_up(&error),
                Step::Transient {
                    error, retry_after, ..
                } => {
                    let wait = self.backoff(attempts).max(retry_after.unwrap_or_default());
                    tracing::warn!(
                        forge = %lane.name, host = %update.key.host,
                        repository = %update.key.repository, sha = %update.key.sha.short(),
                        context = %update.key.context, attempt = attempts,
                        retry_in_seconds = wait.as_secs_f64(),
                        "{error}; retrying"
                    );
                    if wait > self.policy.max_wait {
                        break DeliveryResult::RetryLater {
                            error: format!(
                                "{error} (the forge asks to wait {}s)",
                                whole_seconds(wait)
                            ),
                        };
                    }
                    if !self.wait(wait).await {
                        break DeliveryResult::RetryLater {
                            error: format!("{error} (shutting down)"),
                        };
                    }
                }
            }
        };
        outcome.duration = self.since(started);
        result
    }

    /// What a post that got no answer means.
    fn unanswered_post(
        &self,
        lane: &Lane,
        failure: SendFailure,
        outcome: &mut DeliveryOutcome,
    ) -> Step {
        match verdict::unanswered(failure) {
            Unanswered::CutOff => {
                lane.state().circuit.abandoned();
                Step::Done(DeliveryResult::RetryLater {
                    error: "cut off at shutdown".into(),
                })
            }
            Unanswered::NoAnswer(error) => Step::Transient {
                opened: self.failed(lane, &error),
                error,
                retry_after: None,
            },
            Unanswered::NotSent(failure) => {
                outcome.attempts -= 1;
                lane.state().circuit.abandoned();
                Step::Done(match failure {
                    Failure::Credential(e @ CredentialError::Unusable(_)) => {
                        // Not the status's fault: it waits, and the forge's other statuses do
                        // not try the credential again meanwhile.
                        let error = format!("{}: credential: {e}", lane.name);
                        let hold = self.hold_credential(lane, &error);
                        DeliveryResult::RetryLater {
                            error: format!(
                                "{error} (the credential is not used again for {}s)",
                                whole_seconds(hold)
                            ),
                        }
                    }
                    Failure::Credential(e) => {
                        let error = format!("credentials: {e}");
                        lane.state().credential.note(self.clock.now(), &error);
                        DeliveryResult::RetryLater { error }
                    }
                    other => DeliveryResult::PermanentError {
                        error: other.to_string(),
                    },
                })
            }
        }
    }

    /// What the forge's answer to a post means; the lane learns from it.
    fn judge_post(
        &self,
        lane: &Lane,
        update: &StatusUpdate,
        answer: &ReadAnswer,
        credential_retried: &mut bool,
    ) -> Step {
        let response = &answer.response;
        let already_current = lane.publisher.dialect().already_current(update, response);
        let (judgement, error) = self.judge(lane, answer, Asked::Post { already_current });
        match judgement.answer {
            Answer::Accepted | Answer::AlreadyCurrent => Step::Done(DeliveryResult::Delivered),
            Answer::RateLimited => Step::RateLimited(error),
            Answer::CredentialRefused if *credential_retried => {
                // The credential, not the status, is refused: the status waits (never recorded
                // as posted) and no other status of this forge uses the credential meanwhile.
                let hold = self.hold_credential(lane, &error);
                Step::Done(DeliveryResult::RetryLater {
                    error: format!(
                        "{error} (the credential is not used again for {}s)",
                        whole_seconds(hold)
                    ),
                })
            }
            Answer::CredentialRefused => {
                *credential_retried = true;
                Step::Again(error)
            }
            Answer::Unavailable => Step::Transient {
                opened: self.failed(lane, &error),
                error,
                retry_after: judgement.retry_after,
            },
            Answer::Moved => {
                // The repository was renamed or moved: the status is fine, the configuration
                // names the repository where it was. It waits (never recorded as posted).
                let error = format!(
                    "{error}: the repository {} was renamed or moved; name it where it is now \
                     in the forge's `repositories` (and the Flux source's URL)",
                    update.key.repository
                );
                let hold = lane
                    .state()
                    .moved
                    .entry(repository_key(update))
                    .or_default()
                    .hold(self.clock.now(), &error);
                tracing::error!(
                    forge = %lane.name, repository = %update.key.repository,
                    "{error}; its statuses are not sent again for {}s",
                    whole_seconds(hold)
                );
                Step::Done(DeliveryResult::RetryLater { error })
            }
            Answer::Refused => Step::Done(DeliveryResult::PermanentError { error }),
        }
    }

    /// Holds `lane`'s credential after `error` and logs it once; for how long.
    fn hold_credential(&self, lane: &Lane, error: &str) -> Duration {
        let hold = lane.state().credential.hold(self.clock.now(), error);
        tracing::error!(
            forge = %lane.name,
            "{error}; the credential is refused and not used again for {}s (fix or rotate it; every held status is delivered then)",
            whole_seconds(hold)
        );
        hold
    }

    /// Judges `answer` to `asked` and lets the lane learn from it: its budget, pauses and
    /// circuit, and a refused credential is forgotten. Returns the judgement and the refusal's
    /// text.
    fn judge(
        &self,
        lane: &Lane,
        answer: &ReadAnswer,
        asked: Asked,
    ) -> (verdict::Judgement, String) {
        let response = &answer.response;
        let error = verdict::refusal(&lane.name, response);
        let now = self.clock.now();
        let judgement = {
            let mut state = lane.state();
            let judgement = verdict::judge(
                response,
                asked,
                self.clock.wall(),
                state.rate_limited_streak,
                self.policy.rate_limit_pauses(),
            );
            state.learn(&judgement, now, &error);
            judgement
        };
        if judgement.answer == Answer::CredentialRefused {
            // The next attempt reads the credential again.
            lane.publisher.credential_refused();
        }
        (judgement, error)
    }

    /// Records a failed request; the circuit's failures and cool-down when this opened it.
    fn failed(&self, lane: &Lane, why: &str) -> Option<(u32, Duration)> {
        let mut state = lane.state();
        state.last_failure = why.to_string();
        state
            .circuit
            .failed(self.clock.now())
            .map(|cooldown| (state.circuit.failures(), cooldown))
    }

    /// Reads back what the forge shows for `update`'s status, page by page, and says whether
    /// it already shows what `request` would post. Reads wait for the forge's pauses and
    /// circuit and hold the update's concurrency permit like posts, and their answers' rate
    /// limits, failures and refused credentials count as a post's would; they are not paced
    /// within `perMinute`/`perHour`, which budget content-creating requests. Each read counts
    /// as an attempt. A read that fails is logged at debug and answers `false`: the update is
    /// then posted as usual.
    async fn already_shown(
        &self,
        lane: &Lane,
        update: &StatusUpdate,
        request: &StatusRequest,
        outcome: &mut DeliveryOutcome,
        started: &mut Option<Instant>,
    ) -> bool {
        let key = &update.key;
        let not_read = |why: &str| {
            tracing::debug!(
                forge = %lane.name, repository = %key.repository, sha = %key.sha.short(),
                context = %key.context, "read-back failed, posting anyway: {why}"
            );
            false
        };
        let dialect = lane.publisher.dialect();
        for page in 1..=MAX_READ_PAGES {
            let read = match dialect.prepare_read(update, page) {
                Ok(Some(read)) => read,
                Ok(None) => return false,
                Err(failure) => return not_read(&failure.to_string()),
            };
            if let Err(refused) = self.wait_for_slot(lane, Pacing::Unpaced).await {
                return not_read(&refused.to_string());
            }
            outcome.attempts += 1;
            started.get_or_insert_with(|| self.clock.now());
            let answer = match self.send_once(lane, update, &read).await {
                Ok(answer) => answer,
                Err(failure) => {
                    let why = match verdict::unanswered(failure) {
                        Unanswered::CutOff => {
                            lane.state().circuit.abandoned();
                            "cut off at shutdown".to_string()
                        }
                        Unanswered::NoAnswer(why) => {
                            let _ = self.failed(lane, &why);
                            why
                        }
                        Unanswered::NotSent(failure) => {
                            outcome.attempts -= 1;
                            lane.state().circuit.abandoned();
                            failure.to_string()
                        }
                    };
                    return not_read(&why);
                }
            };
            outcome.http_status = Some(answer.response.status);
            let (judgement, error) = self.judge(lane, &answer, Asked::Read);
            match judgement.answer {
                Answer::Accepted | Answer::Refused => {}
                Answer::Unavailable => {
                    // Counts towards opening the circuit; the post then finds it open or not.
                    let _ = self.failed(lane, &error);
                    return not_read(&error);
                }
                Answer::RateLimited
                | Answer::CredentialRefused
                | Answer::Moved
                | Answer::AlreadyCurrent => {
                    return not_read(&error);
                }
            }
            match dialect.read_back(update, page, &answer) {
                Ok(ReadBack::Shows(shown)) => {
                    let same = shown.matches(request);
                    if same {
                        tracing::info!(
                            forge = %lane.name, repository = %key.repository, sha = %key.sha.short(),
                            context = %key.context, shown = %shown.state,
                            "the forge already shows this status; not posted again"
                        );
                    } else {
                        tracing::debug!(
                            forge = %lane.name, repository = %key.repository, sha = %key.sha.short(),
                            context = %key.context, shown = %shown.state,
                            "the forge shows another status; posting"
                        );
                    }
                    return same;
                }
                Ok(ReadBack::Nothing) => return false,
                Ok(ReadBack::NextPage) => {}
                Err(unreadable) => return not_read(&unreadable.to_string()),
            }
        }
        not_read(&format!(
            "the context is not in the first {MAX_READ_PAGES} pages"
        ))
    }

    /// Sends `request` once, in flight for shutdown, within the lane's request timeout on the
    /// clock, and cut off when shutdown aborts.
    async fn send_once(
        &self,
        lane: &Lane,
        update: &StatusUpdate,
        request: &StatusRequest,
    ) -> Result<ReadAnswer, SendFailure> {
        let _in_flight = InFlight::new(&self.shutdown);
        let send = self
            .clock
            .timeout(lane.request_timeout, lane.publisher.send(update, request));
        tokio::select! {
            sent = send => match sent {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(failure)) => Err(SendFailure::Failed(failure)),
                Err(_) => Err(SendFailure::TimedOut(lane.request_timeout)),
            },
            () = self.shutdown.reached(Phase::Aborted) => Err(SendFailure::CutOff),
        }
    }

    /// Waits until the forge may get a request: its pause is over, pacing allows one (for a
    /// paced request) and its circuit is closed (or lets a probe through). Records a paced
    /// request's start. Fails when the wait would exceed the policy's `max_wait`, the circuit
    /// is open, or shutdown began.
    async fn wait_for_slot(&self, lane: &Lane, pacing: Pacing) -> Result<(), NoSlot> {
        while let Some(wait) = lane.slot(self.clock.now(), pacing, self.policy.max_wait)? {
            if !self.wait(wait).await {
                return Err(NoSlot::ShuttingDown);
            }
        }
        Ok(())
    }

    /// Waits `wait` on the clock; `false` when shutdown began first.
    async fn wait(&self, wait: Duration) -> bool {
        tokio::select! {
            () = self.clock.sleep(wait) => true,
            () = self.shutdown.reached(Phase::Draining) => false,
        }
    }

    /// Time on the clock since `started`; zero when nothing was sent.
    fn since(&self, started: Option<Instant>) -> Duration {
        started.map_or(Duration::ZERO, |s| {
            self.clock.now().saturating_duration_since(s)
        })
    }

    /// Exponential back-off with equal jitter before retry after attempt `attempt` (from 1).
    fn backoff(&self, attempt: u32) -> Duration {
        self.policy
            .backoff()
            .jittered(attempt.saturating_sub(1), Grain::Millis, |range| {
                self.rng().u64(range)
            })
    }
}

/// The key of `update`'s repository among a lane's moved repositories.
fn repository_key(update: &StatusUpdate) -> String {
    update.key.repository.to_lowercase()
}
