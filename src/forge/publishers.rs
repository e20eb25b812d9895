//! Routing updates to their forge and delivering them as a good API citizen: per-forge
//! concurrency and pacing, rate-limit pauses from the forge's own headers, retries with
//! jittered exponential back-off, a per-request time-out, a circuit breaker, and graceful
//! shutdown. Every update ends in a [`DeliveryOutcome`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};

use super::azure_devops::AzureDevOps;
use super::bitbucket_cloud::BitbucketCloud;
use super::bitbucket_server::BitbucketServer;
use super::circuit::{Circuit, CircuitSettings, Refusal};
use super::clock::{Clock, TokioClock};
use super::credentials::CredentialSources;
use super::dry_run::DryRun;
use super::gitea::Gitea;
use super::github::GitHub;
use super::gitlab::GitLab;
use super::http::{Failure, ForgeResponse, HttpClient};
use super::pacing::{Budget, Pacer};
use super::read_back::{MAX_READ_PAGES, ReadBack};
use super::token_auth::{TokenAuth, TokenTransport};
use super::{DeliveryOutcome, DeliveryResult, ForgeSetupError, Prepared, Publisher, StatusRequest};
use crate::config::{Config, Credentials, ForgeConfig, RateLimit, RepositoryAllowlist};
use crate::model::ForgeKind;
use crate::model::StatusKey;
use crate::model::{Delivery, StatusUpdate};

/// How hard delivery tries, and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Requests per update at most (the first and its retries).
    pub max_attempts: u32,
    /// First back-off after a failed request; doubled per attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest back-off.
    pub backoff_max: Duration,
    /// Longest single wait (pacing slot, rate-limit pause, back-off) before giving up on an
    /// update for this tick; the update is then reported `retry_later` without being sent.
    pub max_wait: Duration,
    /// Pause after a rate-limit refusal that says nothing of when to come back (GitHub asks for
    /// at least a minute); doubled on each further refusal in a row.
    pub rate_limit_pause: Duration,
    /// Longest such pause.
    pub rate_limit_pause_max: Duration,
    /// The circuit breaker.
    pub circuit: CircuitSettings,
    /// Seed for the back-off jitter; `None` seeds from the system.
    pub jitter_seed: Option<u64>,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: 4,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_wait: Duration::from_secs(300),
            rate_limit_pause: Duration::from_secs(60),
            rate_limit_pause_max: Duration::from_secs(900),
            circuit: CircuitSettings {
                threshold: 5,
                cooldown: Duration::from_secs(30),
                max_cooldown: Duration::from_secs(600),
            },
            jitter_seed: None,
        }
    }
}

#[derive(Debug)]
struct LaneState {
    pacer: Option<Pacer>,
    circuit: Circuit,
    /// Set by the forge: no request before this.
    paused_until: Option<Instant>,
    pause_reason: String,
    /// Rate-limit refusals in a row.
    rate_limited_streak: u32,
    /// The forge's last `x-ratelimit-remaining`.
    remaining: Option<u64>,
}

/// One forge's publisher and delivery state.
#[derive(Debug)]
struct Lane {
    name: String,
    /// `None` for the catch-all dry-run lane, which no host binds.
    host: Option<String>,
    repositories: Option<RepositoryAllowlist>,
    request_timeout: Duration,
    publisher: Arc<dyn Publisher>,
    dry_run: bool,
    permits: Semaphore,
    state: Mutex<LaneState>,
}

impl Lane {
    fn new(
        forge: Option<&ForgeConfig>,
        publisher: Arc<dyn Publisher>,
        dry_run: bool,
        policy: &DeliveryPolicy,
    ) -> Lane {
        let rate = forge.map(|f| f.rate_limit);
        Lane {
            name: forge.map_or_else(|| "dry-run".to_string(), |f| f.name.clone()),
            host: forge.map(|f| f.host.clone()),
            repositories: forge.map(|f| f.repositories.clone()),
            request_timeout: forge.map_or(Duration::from_secs(10), |f| f.request_timeout),
            publisher,
            dry_run,
            permits: Semaphore::new(rate.map_or(1, |r: RateLimit| {
                usize::try_from(r.concurrency).unwrap_or(1)
            })),
            state: Mutex::new(LaneState {
                pacer: rate.filter(|_| !dry_run).map(Pacer::new),
                circuit: Circuit::new(policy.circuit),
                paused_until: None,
                pause_reason: String::new(),
                rate_limited_streak: 0,
                remaining: None,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, LaneState> {
        // The state stays consistent under a panic elsewhere (every update is one assignment).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// No new request starts; in-flight ones finish.
    Draining,
    /// In-flight requests are cut off.
    Aborted,
}

#[derive(Debug)]
struct Shutdown {
    phase: watch::Sender<Phase>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Shutdown {
    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    async fn reached(&self, phase: Phase) {
        let mut rx = self.phase.subscribe();
        // The sender lives as long as `self`, so the wait ends only by reaching the phase.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }
}

/// Counts a request as in flight while it lives.
struct InFlight<'a>(&'a Shutdown);

impl<'a> InFlight<'a> {
    fn new(shutdown: &'a Shutdown) -> InFlight<'a> {
        shutdown.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(shutdown)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What one answer (or its absence) means for the update.
enum Step {
    Done(DeliveryResult),
    /// Worth retrying after a back-off (at least the forge's `Retry-After`, if given).
    Transient(String, Option<Duration>),
    /// The forge limits our rate: pause the forge, then retry.
    RateLimited(String, Duration),
    /// Retry at once (the credential was refused once and has been re-read).
    Again(String),
}

/// Every configured forge's publisher, and the delivery machinery around them.
pub struct Publishers {
    lanes: Vec<Lane>,
    /// Catch-all lane of [`Publishers::dry_run`].
    fallback: Option<Lane>,
    clock: Arc<dyn Clock>,
    policy: DeliveryPolicy,
    /// `statuses.readBack`: read what the forge shows before posting a status the ledger has
    /// no record of.
    read_back: bool,
    shutdown: Shutdown,
    rng: Mutex<fastrand::Rng>,
}

impl std::fmt::Debug for Publishers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publishers")
            .field(
                "forges",
                &self
                    .lanes
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("dry_run", &self.fallback.is_some())
            .field("read_back", &self.read_back)
            .finish_non_exhaustive()
    }
}

impl Publishers {
    /// A publisher for every configured forge, with the default policy and the real clock.
    pub fn from_config(
        config: &Config,
        sources: &CredentialSources,
    ) -> Result<Publishers, ForgeSetupError> {
        Publishers::from_config_with(
            config,
            sources,
            DeliveryPolicy::default(),
            Arc::new(TokioClock),
        )
    }

    /// As [`Publishers::from_config`], with a policy and a clock of the caller's choosing
    /// (which also ages cached Kubernetes Secret values). `statuses.readBack` in `config`
    /// turns read-back on.
    pub fn from_config_with(
        config: &Config,
        sources: &CredentialSources,
        policy: DeliveryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Publishers, ForgeSetupError> {
        for forge in &config.forges {
            for reference in secret_refs(&forge.credentials) {
                sources
                    .check(reference)
                    .map_err(|source| ForgeSetupError::Credential {
                        forge: forge.name.clone(),
                        source,
                    })?;
            }
        }
        let sources = sources.clone().with_clock(clock.clone());
        let publishers = build_publishers(config, &sources, &clock)?;
        let lanes = config
            .forges
            .iter()
            .zip(publishers)
            .map(|(forge, publisher)| Lane::new(Some(forge), publisher, false, &policy))
            .collect();
        let mut publishers = Publishers::assemble(lanes, None, policy, clock);
        publishers.read_back = config.statuses.read_back;
        Ok(publishers)
    }

    /// Reads every configured forge's credential once, so that a missing environment
    /// variable, file, Secret or Secret key is one setup error naming it, rather than a failed
    /// delivery per status. For a command that runs once (`publish`); a long-running exporter
    /// may rather start and retry each tick, since a Secret can be created after it starts.
    pub async fn read_credentials(
        config: &Config,
        sources: &CredentialSources,
    ) -> Result<(), ForgeSetupError> {
        for forge in &config.forges {
            for reference in secret_refs(&forge.credentials) {
                sources.source(reference).get().await.map_err(|source| {
                    ForgeSetupError::Credential {
                        forge: forge.name.clone(),
                        source,
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Publishers that send nothing and log each update, whatever its forge.
    pub fn dry_run() -> Publishers {
        let policy = DeliveryPolicy::default();
        let lane = Lane::new(None, Arc::new(DryRun::neutral()), true, &policy);
        Publishers::assemble(Vec::new(), Some(lane), policy, Arc::new(TokioClock))
    }

    /// Publishers that send nothing and log the exact request each configured forge would get
    /// (credentials are not read).
    pub fn dry_run_for(config: &Config) -> Result<Publishers, ForgeSetupError> {
        let policy = DeliveryPolicy::default();
        let clock: Arc<dyn Clock> = Arc::new(TokioClock);
        let publishers = build_publishers(config, &CredentialSources::new(), &clock)?;
        let lanes = config
            .forges
            .iter()
            .zip(publishers)
            .map(|(forge, publisher)| {
                let logger: Arc<dyn Publisher> =
                    Arc::new(DryRun::new(publisher, forge.api_url.clone()));
                Lane::new(Some(forge), logger, true, &policy)
            })
            .collect();
        Ok(Publishers::assemble(lanes, None, policy, clock))
    }

    fn assemble(
        lanes: Vec<Lane>,
        fallback: Option<Lane>,
        policy: DeliveryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Publishers {
        let rng = match policy.jitter_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Publishers {
            lanes,
            fallback,
            clock,
            policy,
            read_back: false,
            shutdown: Shutdown {
                phase: watch::Sender::new(Phase::Running),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
            },
            rng: Mutex::new(rng),
        }
    }

    /// The forge's last reported remaining request budget, per configured forge.
    pub fn rate_limit_remaining(&self) -> Vec<(String, Option<u64>)> {
        self.lanes
            .iter()
            .map(|l| (l.name.clone(), l.state().remaining))
            .collect()
    }

    /// Whether [`Publishers::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.phase() != Phase::Running
    }

    /// Stops starting requests (waiting updates end as `retry_later`), lets in-flight requests
    /// finish for up to `grace`, then cuts them off. Returns whether all finished in time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.shutdown.phase.send_replace(Phase::Draining);
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            let idle = self.shutdown.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.shutdown.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            tokio::select! {
                () = &mut idle => {}
                () = &mut deadline => {
                    self.shutdown.phase.send_replace(Phase::Aborted);
                    return false;
                }
            }
        }
    }

    /// Delivers `updates`, returning one outcome per update in the same order. Updates for one
    /// (host, repository, sha, context) are sent in the order given; others may interleave.
    pub async fn publish(&self, updates: &[StatusUpdate]) -> Vec<DeliveryOutcome> {
        self.publish_each(updates, &|_, _| {}).await
    }

    /// As [`Publishers::publish`], and calls `done` with each update's index and outcome as
    /// soon as that update is finished, so that the caller can record deliveries while others
    /// are still in flight (a crash then repeats only what was not recorded yet).
    pub async fn publish_each(
        &self,
        updates: &[StatusUpdate],
        done: &(dyn Fn(usize, &DeliveryOutcome) + Sync),
    ) -> Vec<DeliveryOutcome> {
        let mut outcomes: Vec<Option<DeliveryOutcome>> = vec![None; updates.len()];
        let mut chains: Vec<(&Lane, Vec<usize>)> = Vec::new();
        let mut chain_of: HashMap<&StatusKey, usize> = HashMap::new();
        for (i, update) in updates.iter().enumerate() {
            match self.route(update) {
                Ok(lane) => {
                    let next = chains.len();
                    let c = *chain_of.entry(&update.key).or_insert(next);
                    if c == next {
                        chains.push((lane, Vec::new()));
                    }
                    chains[c].1.push(i);
                }
                Err((forge, result)) => {
                    let outcome = skipped(update, forge, result);
                    log_outcome(update, &outcome);
                    done(i, &outcome);
                    outcomes[i] = Some(outcome);
                }
            }
        }
        let runs = chains.into_iter().map(|(lane, indices)| async move {
            let mut finished = Vec::with_capacity(indices.len());
            for i in indices {
                let outcome = self.deliver(lane, &updates[i]).await;
                done(i, &outcome);
                finished.push((i, outcome));
            }
            finished
        });
        for (i, outcome) in futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
        {
            outcomes[i] = Some(outcome);
        }
        outcomes.into_iter().flatten().collect()
    }

    /// The lane for an update, or why it is not sent. The forge named by the plan is checked
    /// again here: its host must be the repository's and its allowlist must admit the
    /// repository, so a credential can only reach the host it is configured for.
    fn route(&self, update: &StatusUpdate) -> Result<&Lane, (Option<String>, DeliveryResult)> {
        let forge = match &update.delivery {
            Delivery::Unmatched => return Err((None, DeliveryResult::SkippedUnmatched)),
            Delivery::NotAllowed { forge } => {
                return Err((Some(forge.clone()), DeliveryResult::SkippedNotAllowed));
            }
            Delivery::Forge { forge } => forge,
        };
        if let Some(fallback) = &self.fallback {
            return Ok(fallback);
        }
        let Some(lane) = self.lanes.iter().find(|l| l.name == *forge) else {
            tracing::warn!(forge = %forge, "the plan names a forge that is not configured; not sent");
            return Err((None, DeliveryResult::SkippedUnmatched));
        };
        if lane.host.as_deref() != Some(update.key.host.as_str()) {
            tracing::warn!(
                forge = %forge,
                host = %update.key.host,
                "the repository is not on this forge's host; its credential is not sent there"
            );
            return Err((None, DeliveryResult::SkippedUnmatched));
        }
        if lane
            .repositories
            .as_ref()
            .is_some_and(|r| !r.allows(&update.key.repository))
        {
            return Err((Some(forge.clone()), DeliveryResult::SkippedNotAllowed));
        }
        Ok(lane)
    }

    async fn deliver(&self, lane: &Lane, update: &StatusUpdate) -> DeliveryOutcome {
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
        let request = match lane.publisher.prepare(update) {
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
            // The dry-run publisher only logs; it cannot fail.
            let _ = lane.publisher.send(update, &request).await;
            return outcome;
        }
        outcome.result = self.attempts(lane, update, &request, &mut outcome).await;
        log_outcome(update, &outcome);
        outcome
    }

    /// Sends until the update is delivered, refused for good, or not worth waiting for.
    async fn attempts(
        &self,
        lane: &Lane,
        update: &StatusUpdate,
        request: &StatusRequest,
        outcome: &mut DeliveryOutcome,
    ) -> DeliveryResult {
        let stopping = || DeliveryResult::RetryLater {
            error: "shutting down; not sent".into(),
        };
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
        let mut started: Option<Instant> = None;
        // Only a status the ledger knows nothing of is read back: for the others the ledger
        // already says what the forge shows.
        if self.read_back && update.previous.is_none() {
            let shown = self
                .already_shown(lane, update, request, outcome, &mut started)
                .await;
            if shown || self.shutdown.phase() != Phase::Running {
                outcome.duration = started.map_or(Duration::ZERO, |s| {
                    self.clock.now().saturating_duration_since(s)
                });
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
            if let Err(error) = self.wait_for_slot(lane, Pacing::Paced).await {
                break DeliveryResult::RetryLater { error };
            }
            outcome.attempts += 1;
            started.get_or_insert_with(|| self.clock.now());
            let sent = {
                let _in_flight = InFlight::new(&self.shutdown);
                tokio::select! {
                    r = tokio::time::timeout(lane.request_timeout, lane.publisher.send(update, request)) => Some(r),
                    () = self.shutdown.reached(Phase::Aborted) => None,
                }
            };
            let step = match sent {
                None => {
                    lane.state().circuit.abandoned();
                    Step::Done(DeliveryResult::RetryLater {
                        error: "cut off at shutdown".into(),
                    })
                }
                Some(Err(_)) => Step::Transient(
                    format!(
                        "no answer within {}",
                        crate::config::HumanDuration(lane.request_timeout)
                    ),
                    None,
                ),
                Some(Ok(Err(Failure::Transport(e)))) => {
                    Step::Transient(format!("request failed: {e}"), None)
                }
                Some(Ok(Err(Failure::Credential(e)))) => {
                    // Nothing was sent.
                    outcome.attempts -= 1;
                    lane.state().circuit.abandoned();
                    Step::Done(DeliveryResult::RetryLater {
                        error: format!("credentials: {e}"),
                    })
                }
                Some(Ok(Err(Failure::Invalid(e)))) => {
                    outcome.attempts -= 1;
                    lane.state().circuit.abandoned();
                    Step::Done(DeliveryResult::PermanentError { error: e })
                }
                Some(Ok(Ok(response))) => {
                    outcome.http_status = Some(response.status);
                    self.judge(lane, update, &response, &mut credential_retried)
                }
            };
            let attempts = outcome.attempts - reads;
            let out_of_attempts = attempts >= self.policy.max_attempts;
            match step {
                Step::Done(result) => break result,
                Step::Again(error) if out_of_attempts => {
                    break DeliveryResult::PermanentError { error };
                }
                Step::Again(_) => {}
                Step::RateLimited(error, wait) => {
                    self.pause(lane, wait, &error);
                    if out_of_attempts {
                        break DeliveryResult::RetryLater {
                            error: format!("{error} (gave up after {attempts} attempts)"),
                        };
                    }
                }
                Step::Transient(error, retry_after) => {
                    let opened = {
                        let mut state = lane.state();
                        state
                            .circuit
                            .failed(self.clock.now())
                            .map(|cooldown| (state.circuit.failures(), cooldown))
                    };
                    if let Some((failures, cooldown)) = opened {
                        break DeliveryResult::RetryLater {
                            error: format!(
                                "{error} ({} has failed {failures} requests in a row; not contacting it for {}s)",
                                lane.name,
                                whole_seconds(cooldown)
                            ),
                        };
                    }
                    if out_of_attempts {
                        break DeliveryResult::RetryLater {
                            error: format!("{error} (gave up after {attempts} attempts)"),
                        };
                    }
                    let wait = self.backoff(attempts).max(retry_after.unwrap_or_default());
                    if wait > self.policy.max_wait {
                        break DeliveryResult::RetryLater {
                            error: format!(
                                "{error} (the forge asks to wait {}s)",
                                whole_seconds(wait)
                            ),
                        };
                    }
                    tokio::select! {
                        () = self.clock.sleep(wait) => {}
                        () = self.shutdown.reached(Phase::Draining) => {
                            break DeliveryResult::RetryLater { error: format!("{error} (shutting down)") };
                        }
                    }
                }
            }
        };
        outcome.duration = started.map_or(Duration::ZERO, |s| {
            self.clock.now().saturating_duration_since(s)
        });
        result
    }

    /// Waits until the forge may get a request: its pause is over, pacing allows one (for a
    /// paced request) and its circuit is closed (or lets a probe through). Records a paced
    /// request's start. Fails when the wait would exceed the policy's `max_wait`, the circuit
    /// is open, or shutdown began.
    async fn wait_for_slot(&self, lane: &Lane, pacing: Pacing) -> Result<(), String> {
        loop {
            let now = self.clock.now();
            let (wait, why) = {
                let mut state = lane.state();
                let pause = state
                    .paused_until
                    .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
                let (pace, budget) = match (state.pacer.as_mut(), pacing) {
                    (Some(pacer), Pacing::Paced) => pacer.wait(now),
                    _ => (Duration::ZERO, Budget::Minute),
                };
                if pause.is_zero() && pace.is_zero() {
                    return match state.circuit.begin(now) {
                        Ok(()) => {
                            if let (Some(pacer), Pacing::Paced) = (state.pacer.as_mut(), pacing) {
                                pacer.record(now);
                            }
                            Ok(())
                        }
                        Err(Refusal::Open { until, failures }) => Err(format!(
                            "{} is failing ({failures} requests in a row got no answer); not contacting it for {}s",
                            lane.name,
                            whole_seconds(until.saturating_duration_since(now))
                        )),
                        Err(Refusal::Probing) => Err(format!(
                            "{} is failing; waiting for a probe request to succeed",
                            lane.name
                        )),
                    };
                }
                if pause >= pace {
                    (pause, state.pause_reason.clone())
                } else {
                    let why = match budget {
                        Budget::Minute => "pacing within the per-minute budget".to_string(),
                        Budget::Hour => "the per-hour budget is used up".to_string(),
                    };
                    (pace, why)
                }
            };
            if wait > self.policy.max_wait {
                return Err(format!(
                    "{}: {why}; next request in {}s, longer than the {}s a tick waits",
                    lane.name,
                    whole_seconds(wait),
                    whole_seconds(self.policy.max_wait)
                ));
            }
            tokio::select! {
                () = self.clock.sleep(wait) => {}
                () = self.shutdown.reached(Phase::Draining) => {
                    return Err("shutting down; not sent".into());
                }
            }
        }
    }

    /// What an answer means.
    fn judge(
        &self,
        lane: &Lane,
        update: &StatusUpdate,
        response: &ForgeResponse,
        credential_retried: &mut bool,
    ) -> Step {
        let wall = self.clock.wall();
        let now = self.clock.now();
        let mut state = lane.state();
        if let Some(remaining) = response.rate.remaining {
            state.remaining = Some(remaining);
        }
        if response.is_success() || lane.publisher.already_current(update, response) {
            state.circuit.answered();
            state.rate_limited_streak = 0;
            pause_while_exhausted(&mut state, response, now, wall);
            return Step::Done(DeliveryResult::Delivered);
        }
        let error = answered_error(lane, response);
        if is_rate_limited(response) {
            state.circuit.answered();
            let wait = self.rate_limit_wait(&mut state, response, wall);
            return Step::RateLimited(error, wait);
        }
        match response.status {
            401 => {
                state.circuit.answered();
                drop(state);
                lane.publisher.credential_refused();
                if *credential_retried {
                    return Step::Done(DeliveryResult::PermanentError { error });
                }
                *credential_retried = true;
                Step::Again(error)
            }
            408 | 500..=599 => Step::Transient(error, response.rate.retry_after_wait(wall)),
            _ => {
                state.circuit.answered();
                Step::Done(DeliveryResult::PermanentError { error })
            }
        }
    }

    /// What a read-back's answer means for the forge: its rate-limit signals, circuit and
    /// credential are handled as for a post. `Err` when the read told nothing (the update is
    /// then posted as usual); `Ok` when the publisher should read the answer (a 404 included:
    /// Bitbucket's way of saying there is no such status).
    fn judge_read(&self, lane: &Lane, response: &ForgeResponse) -> Result<(), String> {
        let wall = self.clock.wall();
        let now = self.clock.now();
        let mut state = lane.state();
        if let Some(remaining) = response.rate.remaining {
            state.remaining = Some(remaining);
        }
        let error = answered_error(lane, response);
        if is_rate_limited(response) {
            state.circuit.answered();
            let wait = self.rate_limit_wait(&mut state, response, wall);
            pause_lane(&mut state, now + wait, format!("rate limited ({error})"));
            return Err(error);
        }
        match response.status {
            401 => {
                state.circuit.answered();
                drop(state);
                // The post that follows reads the credential again.
                lane.publisher.credential_refused();
                Err(error)
            }
            408 | 500..=599 => {
                // Counts towards opening the circuit; the post then finds it open or not.
                let _ = state.circuit.failed(now);
                Err(error)
            }
            _ => {
                state.circuit.answered();
                if response.is_success() {
                    state.rate_limited_streak = 0;
                }
                pause_while_exhausted(&mut state, response, now, wall);
                Ok(())
            }
        }
    }

    /// How long to pause after a rate-limit refusal: the forge's word on when to come back
    /// wins; else until the budget resets; else a minute, doubling while refusals continue.
    fn rate_limit_wait(
        &self,
        state: &mut LaneState,
        response: &ForgeResponse,
        wall: std::time::SystemTime,
    ) -> Duration {
        let streak = state.rate_limited_streak;
        state.rate_limited_streak = streak.saturating_add(1);
        response
            .rate
            .retry_after_wait(wall)
            .or_else(|| {
                response
                    .rate
                    .exhausted()
                    .then(|| response.rate.reset_wait(wall))
                    .flatten()
                    .map(|w| w + Duration::from_secs(1))
            })
            .unwrap_or_else(|| {
                let factor = 2u32.saturating_pow(streak.min(16));
                (self.policy.rate_limit_pause * factor).min(self.policy.rate_limit_pause_max)
            })
    }

    fn pause(&self, lane: &Lane, wait: Duration, error: &str) {
        let until = self.clock.now() + wait;
        pause_lane(&mut lane.state(), until, format!("rate limited ({error})"));
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
        for page in 1..=MAX_READ_PAGES {
            let read = match lane.publisher.prepare_read(update, page) {
                Ok(Some(read)) => read,
                Ok(None) => return false,
                Err(failure) => return not_read(&failure.to_string()),
            };
            if let Err(why) = self.wait_for_slot(lane, Pacing::Unpaced).await {
                return not_read(&why);
            }
            outcome.attempts += 1;
            started.get_or_insert_with(|| self.clock.now());
            let sent = {
                let _in_flight = InFlight::new(&self.shutdown);
                tokio::select! {
                    r = tokio::time::timeout(lane.request_timeout, lane.publisher.read(update, &read)) => Some(r),
                    () = self.shutdown.reached(Phase::Aborted) => None,
                }
            };
            let answer = match sent {
                None => {
                    lane.state().circuit.abandoned();
                    return not_read("cut off at shutdown");
                }
                Some(Err(_)) => {
                    let _ = lane.state().circuit.failed(self.clock.now());
                    return not_read(&format!(
                        "no answer within {}",
                        crate::config::HumanDuration(lane.request_timeout)
                    ));
                }
                Some(Ok(Err(Failure::Transport(e)))) => {
                    let _ = lane.state().circuit.failed(self.clock.now());
                    return not_read(&format!("request failed: {e}"));
                }
                Some(Ok(Err(failure))) => {
                    // Nothing was sent.
                    outcome.attempts -= 1;
                    lane.state().circuit.abandoned();
                    return not_read(&failure.to_string());
                }
                Some(Ok(Ok(answer))) => answer,
            };
            outcome.http_status = Some(answer.response.status);
            if let Err(error) = self.judge_read(lane, &answer.response) {
                return not_read(&error);
            }
            match lane.publisher.read_back(update, page, &answer) {
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

    /// Exponential back-off with equal jitter: half the step, plus up to half again at random.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        let step = (self.policy.backoff_base * factor).min(self.policy.backoff_max);
        let half = step / 2;
        let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = self
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .u64(0..=millis);
        half + Duration::from_millis(jitter)
    }
}

/// Whether a request was paced within the forge's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pacing {
    /// A post: spaced within `perMinute` and counted against `perMinute` and `perHour`.
    Paced,
    /// A read-back: neither spaced nor counted.
    Unpaced,
}

/// Whether the forge refused the request for our rate: 429, or 403 with rate-limit signs.
fn is_rate_limited(response: &ForgeResponse) -> bool {
    match response.status {
        429 => true,
        403 => {
            response.rate.retry_after.is_some()
                || response.rate.exhausted()
                || response.message.to_ascii_lowercase().contains("rate limit")
        }
        _ => false,
    }
}

/// The error text of a refusal.
fn answered_error(lane: &Lane, response: &ForgeResponse) -> String {
    if response.message.is_empty() {
        format!("{} answered {}", lane.name, response.status)
    } else {
        format!(
            "{} answered {}: {}",
            lane.name, response.status, response.message
        )
    }
}

/// Pauses the forge until `until`, unless it is already paused longer.
fn pause_lane(state: &mut LaneState, until: Instant, reason: String) {
    if state.paused_until.is_none_or(|u| u < until) {
        state.paused_until = Some(until);
        state.pause_reason = reason;
    }
}

/// Spends no request we know will be refused: after an answer saying the budget is used up,
/// waits for it to refill.
fn pause_while_exhausted(
    state: &mut LaneState,
    response: &ForgeResponse,
    now: Instant,
    wall: std::time::SystemTime,
) {
    if response.rate.exhausted()
        && let Some(wait) = response.rate.reset_wait(wall)
    {
        pause_lane(
            state,
            now + wait + Duration::from_secs(1),
            "the rate-limit budget is used up until its reset".into(),
        );
    }
}

/// A wait in whole seconds, rounded up so that "0s" never describes a real wait.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn secret_refs(credentials: &Credentials) -> Vec<&crate::config::SecretRef> {
    match credentials {
        Credentials::Token(r) => vec![r],
        Credentials::Basic { password, .. } => vec![password],
        Credentials::GitHubApp { private_key, .. } => vec![private_key],
    }
}

fn build_publishers(
    config: &Config,
    sources: &CredentialSources,
    clock: &Arc<dyn Clock>,
) -> Result<Vec<Arc<dyn Publisher>>, ForgeSetupError> {
    let mut client: Option<HttpClient> = None;
    let mut out: Vec<Arc<dyn Publisher>> = Vec::with_capacity(config.forges.len());
    for forge in &config.forges {
        let setup = |problem: String| ForgeSetupError::Client {
            forge: forge.name.clone(),
            problem,
        };
        if forge.kind == ForgeKind::GitHub {
            out.push(Arc::new(
                GitHub::new(forge, sources, clock.clone()).map_err(setup)?,
            ));
            continue;
        }
        let http = match &client {
            Some(c) => c.clone(),
            None => {
                let c = HttpClient::new().map_err(|e| setup(e.to_string()))?;
                client = Some(c.clone());
                c
            }
        };
        let auth = TokenAuth::for_forge(forge, sources).map_err(setup)?;
        let transport = TokenTransport::new(http, &forge.api_url, auth, clock.clone());
        let publisher: Arc<dyn Publisher> = match forge.kind {
            ForgeKind::GitLab => Arc::new(GitLab::new(transport)),
            ForgeKind::BitbucketCloud => Arc::new(BitbucketCloud::new(transport)),
            ForgeKind::BitbucketServer => Arc::new(BitbucketServer::new(transport)),
            ForgeKind::AzureDevOps => Arc::new(AzureDevOps::new(transport)),
            ForgeKind::Gitea => Arc::new(Gitea::new(transport)),
            ForgeKind::GitHub => unreachable!("handled above"),
        };
        out.push(publisher);
    }
    Ok(out)
}

fn skipped(
    update: &StatusUpdate,
    forge: Option<String>,
    result: DeliveryResult,
) -> DeliveryOutcome {
    DeliveryOutcome {
        key: update.key.clone(),
        forge,
        state: update.state,
        reason: update.reason.clone(),
        result,
        http_status: None,
        duration: Duration::ZERO,
        attempts: 0,
    }
}

fn log_outcome(update: &StatusUpdate, outcome: &DeliveryOutcome) {
    let forge = outcome.forge.as_deref().unwrap_or("-");
    let key = &update.key;
    let status = outcome
        .http_status
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    match &outcome.result {
        DeliveryResult::Delivered => tracing::info!(
            forge, host = %key.host, repository = %key.repository, sha = %key.sha.short(),
            context = %key.context, state = %update.state, http_status = %status,
            attempts = outcome.attempts, "status delivered"
        ),
        DeliveryResult::RetryLater { error } => tracing::warn!(
            forge, host = %key.host, repository = %key.repository, sha = %key.sha.short(),
            context = %key.context, state = %update.state, http_status = %status,
            attempts = outcome.attempts, %error, "status not delivered; will retry next tick"
        ),
        DeliveryResult::PermanentError { error } => tracing::error!(
            forge, host = %key.host, repository = %key.repository, sha = %key.sha.short(),
            context = %key.context, state = %update.state, http_status = %status,
            attempts = outcome.attempts, %error, "status refused by the forge"
        ),
        DeliveryResult::SkippedUnmatched => tracing::info!(
            host = %key.host, repository = %key.repository, sha = %key.sha.short(),
            context = %key.context, "no forge configured for this host; status not sent"
        ),
        DeliveryResult::SkippedNotAllowed => tracing::warn!(
            forge, host = %key.host, repository = %key.repository, sha = %key.sha.short(),
            context = %key.context, "repository not in the forge's allowlist; status not sent"
        ),
    }
}
