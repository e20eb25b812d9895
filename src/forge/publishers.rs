//! Routing updates to their forge and delivering them as a good API citizen: per-forge
//! concurrency and pacing, rate-limit pauses from the forge's own headers, retries with
//! jittered exponential back-off, a per-request time-out, a circuit breaker, and graceful
//! shutdown. Every update ends in a [`DeliveryOutcome`]; one update's delivery is in
//! [`super::delivery`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::credentials::CredentialSources;
use super::dry_run::{DryRun, NEUTRAL};
use super::factory::{ForgeSetupError, build_publishers};
use super::lane::Lane;
use super::policy::DeliveryPolicy;
use super::shutdown::{Phase, Shutdown};
use super::transport::Publisher;
use crate::clock::{Clock, TokioClock};
use crate::config::Config;
use crate::model::StatusKey;
use crate::model::{Delivery, StatusUpdate};
use crate::model::{DeliveryOutcome, DeliveryResult};

/// Every configured forge's publisher, and the delivery machinery around them.
pub struct Publishers {
    lanes: Vec<Lane>,
    /// Catch-all lane of [`Publishers::dry_run`].
    fallback: Option<Lane>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) policy: DeliveryPolicy,
    /// `statuses.readBack`: read what the forge shows before posting a status the ledger has
    /// no record of.
    pub(super) read_back: bool,
    pub(super) shutdown: Shutdown,
    rng: Mutex<fastrand::Rng>,
    /// Hosts already logged as having no forge: each is logged at INFO once, then at debug.
    unmatched_hosts: Mutex<std::collections::HashSet<String>>,
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
    /// (which also ages cached Kubernetes Secret values and times requests and shutdown).
    /// `statuses.readBack` in `config` turns read-back on.
    pub fn from_config_with(
        config: &Config,
        sources: &CredentialSources,
        policy: DeliveryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Publishers, ForgeSetupError> {
        for forge in &config.forges {
            for reference in forge.credentials.secret_refs() {
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
            for reference in forge.credentials.secret_refs() {
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
        let publisher = Publisher::new(NEUTRAL.at(""), Box::new(DryRun::new("")));
        let lane = Lane::new(None, publisher, true, &policy);
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
                let logger = publisher.with_transport(Box::new(DryRun::new(forge.api_url.clone())));
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
            shutdown: Shutdown::new(),
            rng: Mutex::new(rng),
            unmatched_hosts: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// The back-off jitter's generator.
    pub(super) fn rng(&self) -> MutexGuard<'_, fastrand::Rng> {
        self.rng.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The forge's last reported remaining request budget, per configured forge.
    pub fn rate_limit_remaining(&self) -> Vec<(String, Option<u64>)> {
        self.lanes
            .iter()
            .map(|l| (l.name.clone(), l.state().remaining))
            .collect()
    }

    /// Per forge, why its credential is refused, until the forge accepts it again.
    pub fn credential_refused(&self) -> Vec<(String, Option<String>)> {
        self.lanes
            .iter()
            .map(|l| {
                let refusal = l.state().credential.reason().map(str::to_string);
                (l.name.clone(), refusal)
            })
            .collect()
    }

    /// Whether [`Publishers::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.phase() != Phase::Running
    }

    /// Stops starting requests (waiting updates end as `retry_later`), lets in-flight requests
    /// finish for up to `grace` (a deadline on the clock), then cuts them off. Returns whether
    /// all finished in time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.shutdown.enter(Phase::Draining);
        let drained = self
            .clock
            .timeout(grace, self.shutdown.idle())
            .await
            .is_ok();
        if !drained {
            self.shutdown.enter(Phase::Aborted);
        }
        drained
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
                    if matches!(update.delivery, Delivery::Unmatched) {
                        self.log_unmatched(update);
                    } else {
                        log_outcome(update, &outcome);
                    }
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

    /// Logs a status for a host no forge is configured for: at INFO the first time the host
    /// is seen (a repository on a forge the exporter does not post to is normal, not news every
    /// tick), at debug after that; each such status counts as skipped.
    fn log_unmatched(&self, update: &StatusUpdate) {
        let key = &update.key;
        let first = {
            let mut hosts = self
                .unmatched_hosts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            !hosts.contains(&key.host) && hosts.insert(key.host.clone())
        };
        if first {
            tracing::info!(
                host = %key.host, repository = %key.repository,
                "no forge configured for this host; its statuses are not sent (logged once per host, then at debug; counted as skipped)"
            );
        } else {
            tracing::debug!(
                host = %key.host, repository = %key.repository, sha = %key.sha.short(),
                context = %key.context, "no forge configured for this host; status not sent"
            );
        }
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

pub(super) fn log_outcome(update: &StatusUpdate, outcome: &DeliveryOutcome) {
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

#[cfg(test)]
mod tests;
