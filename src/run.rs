//! The exporter: one tick is read → assess → plan → publish → record → save, and the two ways
//! users deploy it: `run` (a Deployment: ticks on the schedule, serves HTTP, leader election,
//! SIGHUP reload, graceful SIGTERM) and `once` (a CronJob: one tick, push metrics, exit code).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jiff::Timestamp;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::assess::assess;
use crate::cli::read_snapshot;
use crate::cluster::client::{ConnectError, ConnectOptions, Connection, connect};
use crate::cluster::kube::KubeReader;
use crate::cluster::{Snapshot, UndecodableObject};
use crate::config::{Config, ConfigError, Credentials, LedgerBackend, SecretRef};
use crate::flux::{FluxKind, ResourceRef};
use crate::forge::{
    CredentialSources, DeliveryOutcome, DeliveryResult, ForgeSetupError, Publishers,
};
use crate::leader::{Elector, Leadership};
use crate::ledger::{ConfigMapStore, FileStore, Ledger, LedgerError, Loaded, encode};
use crate::metrics::{Metrics, MetricsError};
use crate::model::StatusKey;
use crate::model::{Assessment, CommitState};
use crate::model::{Delivery, StatusUpdate};
use crate::plan::{observed_keys, plan};
use crate::schedule::Ticker;
use crate::server::{Readiness, ServeError, Server, ServerState};
use crate::status::{LedgerSummary, PollSummary, StatusInputs};

/// After the shutdown grace period (when in-flight deliveries are cut off), how long a
/// stopping tick may still take to record and save before it is abandoned.
const STOP_MARGIN: Duration = Duration::from_secs(2);

/// Shortest time between two saves of a ConfigMap ledger during one tick.
pub const CONFIGMAP_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// During a tick's deliveries, the wait before the next ledger checkpoint is at least this
/// many times the last save's duration, so checkpoints take at most a tenth of the time.
const CHECKPOINT_COST_FACTOR: u32 = 9;

/// How `run` and `once` were asked to work.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The configuration file; built-in defaults when absent.
    pub config_path: Option<PathBuf>,
    /// Read the cluster from this dump (re-read every tick) instead of the API.
    pub snapshot: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Log what would be posted; never post, never write the ledger.
    pub dry_run: bool,
    /// Overrides `http.listen` (`run` only).
    pub listen: Option<SocketAddr>,
}

/// Why `run` or `once` could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Forge(#[from] ForgeSetupError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("interrupted by a second signal; exiting without waiting")]
    Interrupted,
}

impl RunError {
    /// Whether the error is the caller's input (configuration, kubeconfig, credentials).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RunError::Config(_) | RunError::Connect(_) | RunError::Forge(_)
        )
    }
}

/// Where a tick reads the cluster from.
pub enum ClusterSource {
    /// A dump, re-read every tick so that a test or a demo can change it between ticks.
    Snapshot(PathBuf),
    Kube(KubeReader),
}

/// Where the ledger lives.
pub enum LedgerStore {
    Memory,
    File(FileStore),
    ConfigMap(Box<ConfigMapStore>),
}

impl LedgerStore {
    /// The backend's name, for `/status`.
    pub fn name(&self) -> &'static str {
        match self {
            LedgerStore::Memory => "memory",
            LedgerStore::File(_) => "file",
            LedgerStore::ConfigMap(_) => "configmap",
        }
    }

    async fn load(&self) -> Result<Loaded, LedgerError> {
        match self {
            LedgerStore::Memory => Ok(Loaded {
                ledger: Ledger::new(),
                discarded: None,
                bytes: None,
            }),
            LedgerStore::File(store) => store.load(),
            LedgerStore::ConfigMap(store) => store.load().await,
        }
    }

    /// How often the ledger may be saved while a tick's deliveries go on: after every delivery
    /// for a file (a local write), at most every few seconds for ConfigMaps (each save is a
    /// write to the API server, and a burst of deliveries must not become a burst of writes),
    /// never for memory.
    fn checkpoint_interval(&self) -> Option<Duration> {
        match self {
            LedgerStore::Memory => None,
            LedgerStore::File(_) => Some(Duration::ZERO),
            LedgerStore::ConfigMap(_) => Some(CONFIGMAP_CHECKPOINT_INTERVAL),
        }
    }

    /// Saves and returns the stored size in bytes.
    async fn save(&self, ledger: &mut Ledger) -> Result<usize, LedgerError> {
        match self {
            LedgerStore::Memory => {
                ledger.mark_saved();
                Ok(encode(ledger).len())
            }
            LedgerStore::File(store) => {
                let bytes = encode(ledger).len();
                store.save(ledger)?;
                Ok(bytes)
            }
            LedgerStore::ConfigMap(store) => Ok(store.save(ledger).await?.bytes),
        }
    }
}

/// How a tick ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// The cluster was read and every update was delivered, deferred or skipped.
    Completed,
    /// The cluster could not be read completely; nothing was planned or posted.
    ReadFailed(String),
    /// Updates were delivered but the ledger could not be saved (it is retried next tick).
    SaveFailed(String),
    /// The ledger to be loaded in this tick could not be read; nothing was planned or posted.
    LedgerUnreadable(String),
    /// Stopped by a signal before it finished within the shutdown grace period (typically
    /// while still reading a slow API server); what was delivered is recorded.
    Abandoned,
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub outcome: TickOutcome,
    pub planned: usize,
    pub delivered: usize,
    /// Failed for now; planned again next tick.
    pub retry_later: usize,
    pub permanent_errors: usize,
    pub skipped: usize,
}

impl TickReport {
    fn failed(outcome: TickOutcome) -> TickReport {
        TickReport {
            outcome,
            planned: 0,
            delivered: 0,
            retry_later: 0,
            permanent_errors: 0,
            skipped: 0,
        }
    }
}

/// The exporter's state between ticks.
pub struct Exporter {
    config: Arc<Config>,
    source: ClusterSource,
    store: LedgerStore,
    publishers: Arc<Publishers>,
    ledger: Ledger,
    metrics: Arc<Metrics>,
    server: Option<Arc<ServerState>>,
    leadership: Leadership,
    was_leader: bool,
    dry_run: bool,
    /// `once` saves the counters every run so that a CronJob's counters continue.
    save_every_tick: bool,
    logged_unattributed: HashSet<ResourceRef>,
    last_deliveries: HashMap<StatusKey, DeliveryOutcome>,
    /// Statuses (and the state planned for them) whose skip (no forge, or not allowed) was
    /// already counted.
    counted_skips: HashSet<(StatusKey, CommitState)>,
    ledger_bytes: Option<usize>,
    /// The ledger is loaded by the first tick, once its snapshot is assessed and dropped.
    ledger_deferred: bool,
    /// Why the deferred load failed, for `once` to report as it reports a failed load.
    ledger_load_error: Option<LedgerError>,
}

/// The parts of an exporter that depend on the configuration.
pub struct Parts {
    pub source: ClusterSource,
    pub store: LedgerStore,
    pub publishers: Arc<Publishers>,
    pub connection: Option<Connection>,
}

fn uses_secret_credentials(config: &Config) -> bool {
    config.forges.iter().any(|f| {
        let reference = match &f.credentials {
            Credentials::Token(r) => r,
            Credentials::Basic { password, .. } => password,
            Credentials::GitHubApp { private_key, .. } => private_key,
        };
        matches!(reference, SecretRef::KubernetesSecret { .. })
    })
}

/// Connects to the cluster when anything needs it, and builds the reader, the ledger store and
/// the publishers. A dry run from a snapshot needs no cluster: its ledger is in memory.
pub async fn build_parts(
    config: &Config,
    options: &RunOptions,
    leader_election: bool,
) -> Result<Parts, RunError> {
    let configmap_ledger = matches!(config.ledger.backend, LedgerBackend::ConfigMap { .. });
    let snapshot_dry_run = options.snapshot.is_some() && options.dry_run;
    let needs_kube = options.snapshot.is_none()
        || (configmap_ledger && !snapshot_dry_run)
        || (uses_secret_credentials(config) && !options.dry_run)
        || leader_election;
    let connection = if needs_kube {
        let connect_options = ConnectOptions {
            kubeconfig: options.kubeconfig.clone(),
            context: options.context.clone(),
            request_timeout: config.kube.request_timeout,
        };
        Some(connect(&connect_options).await?)
    } else {
        None
    };
    let source = match (&options.snapshot, &connection) {
        (Some(path), _) => ClusterSource::Snapshot(path.clone()),
        (None, Some(c)) => ClusterSource::Kube(KubeReader::new(c.client.clone(), config)),
        (None, None) => return Err(RunError::Connect(ConnectError::NotFound)),
    };
    let store = match (&config.ledger.backend, &connection) {
        (LedgerBackend::ConfigMap { .. }, _) if snapshot_dry_run => {
            tracing::info!("dry run from a snapshot: the ledger is kept in memory only");
            LedgerStore::Memory
        }
        (LedgerBackend::ConfigMap { name, namespace }, Some(c)) => {
            let namespace = namespace
                .clone()
                .unwrap_or_else(|| c.default_namespace.clone());
            LedgerStore::ConfigMap(Box::new(ConfigMapStore::new(
                c.client.clone(),
                &namespace,
                name,
            )))
        }
        (LedgerBackend::ConfigMap { .. }, None) => {
            return Err(RunError::Connect(ConnectError::NotFound));
        }
        (LedgerBackend::File(path), _) => LedgerStore::File(FileStore::new(path.clone())),
        (LedgerBackend::Memory, _) => LedgerStore::Memory,
    };
    let publishers = if options.dry_run {
        Publishers::dry_run_for(config)?
    } else {
        let mut sources = CredentialSources::new();
        if let Some(c) = &connection {
            sources = sources.with_kube(c.client.clone(), c.default_namespace.clone());
        }
        Publishers::from_config(config, &sources)?
    };
    Ok(Parts {
        source,
        store,
        publishers: Arc::new(publishers),
        connection,
    })
}

impl Exporter {
    /// An exporter with an empty ledger; call [`Exporter::load_ledger`] before the first tick.
    pub fn new(
        config: Arc<Config>,
        parts: Parts,
        metrics: Arc<Metrics>,
        leadership: Leadership,
        dry_run: bool,
    ) -> Exporter {
        Exporter {
            config,
            source: parts.source,
            store: parts.store,
            publishers: parts.publishers,
            ledger: Ledger::new(),
            metrics,
            server: None,
            leadership,
            was_leader: false,
            dry_run,
            save_every_tick: false,
            logged_unattributed: HashSet::new(),
            last_deliveries: HashMap::new(),
            counted_skips: HashSet::new(),
            ledger_bytes: None,
            ledger_deferred: false,
            ledger_load_error: None,
        }
    }

    /// Publishes `/status` and readiness to this server state after each tick.
    pub fn with_server(mut self, server: Arc<ServerState>) -> Exporter {
        self.server = Some(server);
        self
    }

    /// Saves the ledger (with the exporter's counters) after every tick, as `once` must.
    pub fn saving_every_tick(mut self) -> Exporter {
        self.save_every_tick = true;
        self
    }

    /// Loads the ledger in the first tick, after the cluster is read and assessed, instead of
    /// before it: the snapshot and the ledger are then never in memory together, which lowers
    /// a CronJob run's peak memory by the ledger's size.
    pub fn loading_ledger_in_first_tick(mut self) -> Exporter {
        self.ledger_deferred = true;
        self
    }

    /// Why the ledger could not be loaded in the first tick, once.
    pub fn take_ledger_load_error(&mut self) -> Option<LedgerError> {
        self.ledger_load_error.take()
    }

    /// Loads the ledger if it was deferred to this tick. On failure the error is kept for
    /// [`Exporter::take_ledger_load_error`] (the caller reports it; it is not logged here) and
    /// its text returned.
    async fn load_deferred_ledger(&mut self) -> Result<(), String> {
        if !self.ledger_deferred {
            return Ok(());
        }
        match self.load_ledger().await {
            Ok(()) => {
                self.ledger_deferred = false;
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                self.ledger_load_error = Some(e);
                Err(message)
            }
        }
    }

    /// The ledger as it stands.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The publishers, to drain them on shutdown.
    pub fn publishers(&self) -> Arc<Publishers> {
        Arc::clone(&self.publishers)
    }

    /// Reads the ledger from its store. An unreadable one is logged and replaced by a fresh
    /// ledger (the catch-up rules then post only the current truth). Counters saved by an
    /// earlier run are restored into the metrics.
    pub async fn load_ledger(&mut self) -> Result<(), LedgerError> {
        let loaded = self.store.load().await?;
        if let Some(why) = &loaded.discarded {
            tracing::warn!("{why}");
        }
        self.ledger = loaded.ledger;
        self.ledger_bytes = loaded.bytes;
        // What was just loaded is the saved ledger: the first tick need not read it again
        // unless leadership is gained after this.
        self.was_leader = self.leadership.is_leader();
        for (name, labels, value) in self.ledger.counters() {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            if self.ledger_deferred {
                // This run has counted its reads already.
                self.metrics.add_restored_counter(name, &labels, *value);
            } else {
                self.metrics.restore_counter(name, &labels, *value);
            }
        }
        tracing::info!(
            backend = self.store.name(),
            entries = self.ledger.len(),
            "loaded the ledger"
        );
        Ok(())
    }

    /// Applies a reloaded configuration's parts (schedule and HTTP settings are the caller's).
    /// The ledger and its store stay: the records are what was posted, whatever the
    /// configuration; the backend cannot change without a restart; and the store knows the
    /// stored ledger's version, which a new store would have to rediscover through a conflict.
    pub fn reconfigure(&mut self, config: Arc<Config>, parts: Parts) {
        self.config = config;
        self.source = parts.source;
        self.publishers = parts.publishers;
    }

    async fn read(&self) -> Result<Snapshot, String> {
        match &self.source {
            ClusterSource::Snapshot(path) => {
                let path = path.clone();
                let config = Arc::clone(&self.config);
                // A large dump takes a while to parse; keep the runtime (and /metrics) free.
                tokio::task::spawn_blocking(move || read_snapshot(&path, &config))
                    .await
                    .map_err(|e| format!("reading the snapshot: {e}"))?
                    .map_err(|e| e.to_string())
            }
            ClusterSource::Kube(reader) => {
                let result = reader.read().await;
                let requests = match &result {
                    Ok(outcome) => &outcome.requests,
                    Err(err) => &err.requests,
                };
                for r in requests {
                    self.metrics
                        .record_kube_request(r.resource, r.verb, r.code, r.duration);
                }
                match result {
                    Ok(outcome) => {
                        for object in &outcome.snapshot.undecodable {
                            tracing::warn!("skipping {object}");
                        }
                        Ok(outcome.snapshot)
                    }
                    Err(err) => Err(format!("{} ({})", err, err.kind().as_str())),
                }
            }
        }
    }

    fn log_unattributed(&mut self, assessment: &Assessment) {
        let mut seen = HashSet::with_capacity(self.logged_unattributed.len());
        for r in &assessment.resources {
            if let Some(why) = &r.unattributed {
                if !self.logged_unattributed.contains(&r.resource) {
                    tracing::info!(resource = %r.resource, "no commit status: {why}");
                }
                seen.insert(r.resource.clone());
            }
        }
        self.logged_unattributed = seen;
    }

    /// One tick. Never panics and never returns early with work half-recorded: a failed read
    /// posts nothing; delivered updates are recorded before the ledger is saved.
    pub async fn tick(&mut self) -> TickReport {
        let started = Instant::now();
        let now = Timestamp::now();
        let leading = self.leadership.is_leader();
        if leading
            && !self.was_leader
            && !self.ledger_deferred
            && !matches!(self.store, LedgerStore::Memory)
        {
            // A new leader continues from what the previous one saved.
            if let Err(e) = self.load_ledger().await {
                tracing::warn!("cannot reload the ledger on becoming leader: {e}");
            }
        }
        self.was_leader = leading;

        let snapshot = match self.read().await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!("poll failed, nothing posted: {error}");
                // The counters the failure adds to continue from the saved ones.
                if let Err(unreadable) = self.load_deferred_ledger().await {
                    return TickReport::failed(TickOutcome::LedgerUnreadable(unreadable));
                }
                self.metrics.record_poll("failure", started.elapsed(), None);
                self.publish_status(
                    now,
                    "failure",
                    started.elapsed(),
                    Some(error.clone()),
                    // The objects as last read: a failed read says nothing about them.
                    &self.metrics.assessment(),
                );
                return TickReport::failed(TickOutcome::ReadFailed(error));
            }
        };
        let undecodable = undecodable_counts(&snapshot.undecodable);
        let assessment = Arc::new(assess(&snapshot, &self.config));
        drop(snapshot);
        if let Err(error) = self.load_deferred_ledger().await {
            return TickReport::failed(TickOutcome::LedgerUnreadable(error));
        }
        self.log_unattributed(&assessment);

        if !leading && !matches!(self.store, LedgerStore::Memory) {
            // Followers show the leader's ledger; they never write it.
            match self.store.load().await {
                Ok(loaded) => self.ledger = loaded.ledger,
                Err(e) => tracing::warn!("cannot read the leader's ledger: {e}"),
            }
        }
        self.ledger.observe(&assessment, now);
        let planned = plan(&assessment, &self.ledger, &self.config);
        let outcomes = if leading {
            self.deliver(&planned.updates).await
        } else {
            Vec::new()
        };

        let mut report = TickReport {
            outcome: TickOutcome::Completed,
            planned: planned.updates.len(),
            delivered: 0,
            retry_later: 0,
            permanent_errors: 0,
            skipped: 0,
        };
        let mut still_skipped = HashSet::new();
        for outcome in &outcomes {
            let forge = outcome.forge.as_deref().unwrap_or("none");
            let duration = (outcome.attempts > 0).then_some(outcome.duration);
            let skipped = matches!(
                outcome.result,
                DeliveryResult::SkippedUnmatched | DeliveryResult::SkippedNotAllowed
            );
            // An undeliverable status is planned again every poll; count it once, not once per
            // poll, so the counter says how many statuses were skipped.
            let skip = (outcome.key.clone(), outcome.state);
            let first_skip = skipped && !self.counted_skips.contains(&skip);
            if skipped {
                still_skipped.insert(skip);
            }
            if !skipped || first_skip {
                self.metrics.record_delivery(
                    forge,
                    outcome.state.as_str(),
                    outcome.result.as_str(),
                    duration,
                );
            }
            match &outcome.result {
                DeliveryResult::Delivered => report.delivered += 1,
                DeliveryResult::PermanentError { error } => {
                    report.permanent_errors += 1;
                    tracing::error!(repository = %outcome.key.repository, sha = %outcome.key.sha, context = %outcome.key.context, "the forge refused this status for good; it is not retried until the state changes: {error}");
                }
                DeliveryResult::RetryLater { .. } => report.retry_later += 1,
                DeliveryResult::SkippedUnmatched | DeliveryResult::SkippedNotAllowed => {
                    report.skipped += 1
                }
            }
        }
        self.counted_skips = still_skipped;
        self.metrics.set_pending_retries(report.retry_later);
        for (forge, remaining) in self.publishers.rate_limit_remaining() {
            self.metrics.set_rate_limit_remaining(&forge, remaining);
        }
        let mut unmatched: Vec<(&str, &str)> = planned
            .updates
            .iter()
            .filter(|u| u.delivery == Delivery::Unmatched)
            .map(|u| (u.key.host.as_str(), u.key.repository.as_str()))
            .collect();
        unmatched.sort_unstable();
        unmatched.dedup();
        self.metrics.set_unmatched_repositories(unmatched.len());
        self.metrics.set_undecodable(&undecodable);
        self.remember_deliveries(outcomes, &assessment);

        self.prune(now, &assessment);
        let mut save_error = None;
        if leading && !self.dry_run && (self.ledger.is_dirty() || self.save_every_tick) {
            let mut counters = self.metrics.counter_values();
            // The counters saved include this poll, counted as the success it is if the save
            // works (if it does not, nothing is saved at all).
            *saved_value(&mut counters, "flux_status_polls_total", &["success"]) += 1;
            *saved_value(&mut counters, crate::metrics::LAST_SUCCESS, &[]) =
                u64::try_from(Timestamp::now().as_second()).unwrap_or(0);
            self.ledger.set_counters(counters);
            match self.store.save(&mut self.ledger).await {
                Ok(bytes) => self.ledger_bytes = Some(bytes),
                Err(e) => {
                    tracing::error!("ledger not saved (retried next tick): {e}");
                    save_error = Some(e.to_string());
                }
            }
        }
        if let Some(bytes) = self.ledger_bytes {
            self.metrics.set_ledger_size(self.ledger.len(), bytes);
        }
        self.metrics
            .update_objects(Arc::clone(&assessment), &self.ledger, &self.config.kinds);
        let elapsed = started.elapsed();
        let finished = Timestamp::now();
        match save_error {
            None => {
                self.metrics.record_poll("success", elapsed, Some(finished));
                if let Some(server) = &self.server {
                    server.readiness.poll_succeeded(finished);
                }
                self.publish_status(finished, "success", elapsed, None, &assessment);
            }
            Some(error) => {
                self.metrics.record_poll("failure", elapsed, None);
                self.publish_status(
                    finished,
                    "failure",
                    elapsed,
                    Some(error.clone()),
                    &assessment,
                );
                report.outcome = TickOutcome::SaveFailed(error);
            }
        }
        tracing::info!(
            planned = report.planned,
            delivered = report.delivered,
            retry_later = report.retry_later,
            permanent_errors = report.permanent_errors,
            skipped = report.skipped,
            seconds = elapsed.as_secs_f64(),
            leader = leading,
            "poll finished"
        );
        report
    }

    /// Delivers a plan's updates, recording each one in the ledger as soon as its outcome is
    /// known and saving the ledger as often as the store allows meanwhile, so that a crash in
    /// the middle of a long tick repeats only the deliveries that were not saved yet.
    async fn deliver(&mut self, updates: &[StatusUpdate]) -> Vec<DeliveryOutcome> {
        let publishers = Arc::clone(&self.publishers);
        let (finished, mut outcomes_so_far) = mpsc::unbounded_channel::<DeliveryOutcome>();
        let report = move |_: usize, outcome: &DeliveryOutcome| {
            let _ = finished.send(outcome.clone());
        };
        let publishing = publishers.publish_each(updates, &report);
        tokio::pin!(publishing);
        let checkpoints = if self.dry_run {
            None
        } else {
            self.store.checkpoint_interval()
        };
        let mut saved_at = Instant::now();
        let mut gap = checkpoints.unwrap_or_default();
        let outcomes = loop {
            tokio::select! {
                outcomes = &mut publishing => break outcomes,
                Some(outcome) = outcomes_so_far.recv() => {
                    self.record_outcome(&outcome);
                    if let Some(every) = checkpoints
                        && self.ledger.is_dirty()
                        && saved_at.elapsed() >= gap
                    {
                        let started = Instant::now();
                        match self.store.save(&mut self.ledger).await {
                            Ok(bytes) => self.ledger_bytes = Some(bytes),
                            Err(e) => tracing::warn!("ledger not saved during the poll (tried again at its end): {e}"),
                        }
                        // A large ledger saved after every delivery of a storm would cost more
                        // than the deliveries: keep checkpoints to a fraction of the time.
                        gap = every.max(started.elapsed() * CHECKPOINT_COST_FACTOR);
                        saved_at = Instant::now();
                    }
                }
            }
        };
        while let Ok(outcome) = outcomes_so_far.try_recv() {
            self.record_outcome(&outcome);
        }
        outcomes
    }

    /// Records a delivered status; a status the forge refused for good is recorded as if
    /// posted, so the same refusal is not retried every tick. Anything else stays pending in
    /// the plan and is offered again next tick.
    fn record_outcome(&mut self, outcome: &DeliveryOutcome) {
        if matches!(
            outcome.result,
            DeliveryResult::Delivered | DeliveryResult::PermanentError { .. }
        ) {
            self.ledger.record(
                outcome.key.clone(),
                outcome.state,
                &outcome.reason,
                Timestamp::now(),
            );
        }
    }

    /// Keeps the last delivery outcome of each status still observed, for `/status`.
    fn remember_deliveries(&mut self, outcomes: Vec<DeliveryOutcome>, assessment: &Assessment) {
        for outcome in outcomes {
            self.last_deliveries.insert(outcome.key.clone(), outcome);
        }
        if !self.last_deliveries.is_empty() {
            let keys = observed_keys(assessment, &self.config);
            self.last_deliveries.retain(|k, _| keys.contains(k));
        }
    }

    fn prune(&mut self, now: Timestamp, assessment: &Assessment) {
        let Ok(span) = jiff::SignedDuration::try_from(self.config.ledger.prune_after) else {
            return;
        };
        let Ok(cutoff) = now.checked_sub(span) else {
            return;
        };
        let has_candidates = self.ledger.statuses().any(|(_, p)| p.posted_at < cutoff)
            || self
                .ledger
                .resources()
                .any(|(_, r)| r.gone_since.is_some_and(|g| g < cutoff));
        if !has_candidates {
            return;
        }
        let keys = observed_keys(assessment, &self.config);
        let dropped = self.ledger.prune(cutoff, |k| keys.contains(k));
        if dropped > 0 {
            tracing::info!(
                dropped,
                "pruned ledger records of commits no longer observed"
            );
        }
    }

    fn publish_status(
        &self,
        finished: Timestamp,
        outcome: &'static str,
        elapsed: Duration,
        error: Option<String>,
        assessment: &Arc<Assessment>,
    ) {
        let Some(server) = &self.server else { return };
        let contexts: Vec<String> = assessment
            .resources
            .iter()
            .map(|r| crate::plan::context_for(&r.resource, &self.config))
            .collect();
        let document = crate::status::render(&StatusInputs {
            cluster: &self.config.cluster,
            leader: self.leadership.is_leader(),
            dry_run: self.dry_run,
            assessment,
            contexts: &contexts,
            ledger: &self.ledger,
            last_deliveries: &self.last_deliveries,
            last_poll: &PollSummary {
                outcome,
                finished_at: finished,
                duration_seconds: elapsed.as_secs_f64(),
                error,
            },
            ledger_summary: &LedgerSummary {
                backend: self.store.name(),
                entries: self.ledger.len(),
                bytes: self.ledger_bytes,
            },
        });
        server.set_status(Bytes::from(document));
    }

    /// Saves the ledger if it changed (on shutdown).
    pub async fn save_if_dirty(&mut self) -> Result<(), LedgerError> {
        if self.dry_run || !self.leadership.is_leader() || !self.ledger.is_dirty() {
            return Ok(());
        }
        self.ledger.set_counters(self.metrics.counter_values());
        let bytes = self.store.save(&mut self.ledger).await?;
        self.ledger_bytes = Some(bytes);
        Ok(())
    }
}

/// The saved value of a counter (0 when it was never saved), to change before saving.
fn saved_value<'a>(
    counters: &'a mut Vec<(String, Vec<String>, u64)>,
    name: &str,
    labels: &[&str],
) -> &'a mut u64 {
    let position = counters
        .iter()
        .position(|(n, l, _)| n == name && l.iter().map(String::as_str).eq(labels.iter().copied()));
    let index = match position {
        Some(index) => index,
        None => {
            counters.push((
                name.to_string(),
                labels.iter().map(|s| s.to_string()).collect(),
                0,
            ));
            counters.len() - 1
        }
    };
    &mut counters[index].2
}

fn undecodable_counts(objects: &[UndecodableObject]) -> Vec<(FluxKind, usize)> {
    let mut counts: Vec<(FluxKind, usize)> = Vec::new();
    for object in objects {
        match counts.iter_mut().find(|(k, _)| *k == object.kind) {
            Some(entry) => entry.1 += 1,
            None => counts.push((object.kind, 1)),
        }
    }
    counts
}

/// The signals the exporter acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    Stop,
    Reload,
}

struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> Result<Signals, RunError> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).map_err(RunError::Signals)?,
            interrupt: signal(SignalKind::interrupt()).map_err(RunError::Signals)?,
            hangup: signal(SignalKind::hangup()).map_err(RunError::Signals)?,
        })
    }

    async fn recv(&mut self) -> Received {
        tokio::select! {
            _ = self.terminate.recv() => Received::Stop,
            _ = self.interrupt.recv() => Received::Stop,
            _ = self.hangup.recv() => Received::Reload,
        }
    }

    async fn stop(&mut self) {
        while self.recv().await != Received::Stop {}
    }
}

/// Runs one tick, and on a stop signal lets in-flight deliveries finish within `grace` (the
/// rest are left for the next run). A second stop signal gives up at once.
async fn tick_until_stopped(
    exporter: &mut Exporter,
    signals: &mut Signals,
    grace: Duration,
    reload: &mut bool,
) -> Result<(TickReport, bool), RunError> {
    let publishers = exporter.publishers();
    let tick = exporter.tick();
    tokio::pin!(tick);
    loop {
        tokio::select! {
            report = &mut tick => return Ok((report, false)),
            received = signals.recv() => match received {
                Received::Reload => *reload = true,
                Received::Stop => {
                    tracing::info!(grace_seconds = grace.as_secs(), "stopping: letting in-flight deliveries finish");
                    let drain = async {
                        let (_, report) = tokio::join!(publishers.shutdown(grace), &mut tick);
                        report
                    };
                    // Deliveries are cut off at `grace`; the rest of the tick (a read of a slow
                    // API server, above all) must not hold the process past its deadline
                    // either. Recording is incremental, so nothing delivered is lost.
                    return tokio::select! {
                        report = drain => Ok((report, true)),
                        () = tokio::time::sleep(grace + STOP_MARGIN) => {
                            tracing::warn!(grace_seconds = grace.as_secs(), "the poll did not finish within the shutdown grace period; abandoning it");
                            Ok((TickReport::failed(TickOutcome::Abandoned), true))
                        }
                        () = signals.stop() => Err(RunError::Interrupted),
                    };
                }
            }
        }
    }
}

fn metrics_for(config: &Config) -> Result<Arc<Metrics>, MetricsError> {
    Ok(Arc::new(Metrics::new(
        &config.cluster,
        crate::cli::VERSION,
        crate::cli::BUILD_COMMIT,
    )?))
}

/// The result of `once`, mapped to the process exit code by the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnceOutcome {
    /// Everything planned was delivered or skipped (exit 0).
    Completed,
    /// Some deliveries failed and wait for the next run (exit 3).
    DeliveriesLeft(usize),
    /// The cluster could not be read (exit 1).
    ReadFailed(String),
    /// The ledger could not be saved (exit 1).
    SaveFailed(String),
    /// The tick completed but its metrics could not be pushed (exit 4).
    PushFailed(String),
    /// A signal stopped the tick before it finished within the grace period (exit 1); what
    /// was delivered is saved.
    Stopped,
}

/// One tick as a CronJob runs it: load the ledger, tick, save, push metrics.
pub async fn once(options: &RunOptions) -> Result<OnceOutcome, RunError> {
    let config = Arc::new(crate::cli::load_config(options.config_path.as_deref())?);
    let mut signals = Signals::install()?;
    let metrics = metrics_for(&config)?;
    let parts = build_parts(&config, options, false).await?;
    let mut exporter = Exporter::new(
        Arc::clone(&config),
        parts,
        Arc::clone(&metrics),
        Leadership::always(),
        options.dry_run,
    )
    .saving_every_tick()
    .loading_ledger_in_first_tick();
    let mut reload = false;
    let (report, _stopped) = tick_until_stopped(
        &mut exporter,
        &mut signals,
        config.shutdown_grace_period,
        &mut reload,
    )
    .await?;
    let mut outcome = match report.outcome {
        TickOutcome::ReadFailed(e) => OnceOutcome::ReadFailed(e),
        TickOutcome::SaveFailed(e) => OnceOutcome::SaveFailed(e),
        TickOutcome::LedgerUnreadable(e) => match exporter.take_ledger_load_error() {
            Some(error) => return Err(RunError::Ledger(error)),
            None => OnceOutcome::ReadFailed(e),
        },
        TickOutcome::Abandoned => match exporter.save_if_dirty().await {
            Ok(()) => OnceOutcome::Stopped,
            Err(e) => OnceOutcome::SaveFailed(e.to_string()),
        },
        TickOutcome::Completed if report.retry_later > 0 => {
            OnceOutcome::DeliveriesLeft(report.retry_later)
        }
        TickOutcome::Completed => OnceOutcome::Completed,
    };
    if let Some(pushgateway) = &config.pushgateway {
        if options.dry_run {
            tracing::info!(url = %crate::pushgateway::group_url(pushgateway, &config.cluster), "dry run: metrics not pushed");
        } else if let Err(e) = crate::pushgateway::push(
            pushgateway,
            &config.cluster,
            metrics.render(Timestamp::now()),
        )
        .await
        {
            tracing::error!("{e}");
            if outcome == OnceOutcome::Completed {
                outcome = OnceOutcome::PushFailed(e.to_string());
            }
        }
    }
    Ok(outcome)
}

fn readiness_age(config: &Config) -> Duration {
    config
        .schedule
        .period(Timestamp::now())
        .saturating_mul(config.http.ready_max_age_periods)
}

/// Checks a reloaded configuration changes nothing that needs a restart.
fn reloadable(old: &Config, new: &Config) -> Result<(), String> {
    let mut fixed = Vec::new();
    if old.cluster != new.cluster {
        fixed.push("cluster");
    }
    // readyMaxAgePeriods is applied on reload; only the listening socket is bound once.
    if old.http.listen != new.http.listen {
        fixed.push("http.listen");
    }
    if old.ledger.backend != new.ledger.backend {
        fixed.push("ledger.backend");
    }
    if old.leader_election != new.leader_election {
        fixed.push("leaderElection");
    }
    if fixed.is_empty() {
        Ok(())
    } else {
        Err(format!("changing {} needs a restart", fixed.join(", ")))
    }
}

/// The Deployment mode: ticks on the schedule until SIGTERM/SIGINT, serving HTTP throughout.
pub async fn run(options: &RunOptions) -> Result<(), RunError> {
    let mut config = Arc::new(crate::cli::load_config(options.config_path.as_deref())?);
    let mut signals = Signals::install()?;
    let metrics = metrics_for(&config)?;
    let readiness = Arc::new(Readiness::new(readiness_age(&config)));
    let server_state = Arc::new(ServerState::new(
        Arc::clone(&metrics),
        Arc::clone(&readiness),
    ));
    let listen = options.listen.unwrap_or(config.http.listen);
    let server = Server::bind(listen, Arc::clone(&server_state)).await?;
    tracing::info!(address = %server.local_addr().unwrap_or(listen), "serving /metrics, /healthz, /readyz and /status");
    let (stop_tx, stop_rx) = watch::channel(false);
    let server_task = tokio::spawn(server.serve(stop_rx.clone(), Duration::from_secs(5)));

    let parts = build_parts(&config, options, config.leader_election.enabled).await?;
    let (leadership, elector_task) = match (&parts.connection, config.leader_election.enabled) {
        (Some(connection), true) => {
            let namespace = config
                .leader_election
                .namespace
                .clone()
                .unwrap_or_else(|| connection.default_namespace.clone());
            let identity = crate::leader::identity();
            tracing::info!(lease = %format!("{namespace}/{}", config.leader_election.lease_name), %identity, "campaigning for leadership");
            let (mut elector, leadership) = Elector::new(
                connection.client.clone(),
                &namespace,
                &config.leader_election.lease_name,
                &identity,
                config.leader_election.lease_duration,
            );
            // One round before the first tick, so a replica that can lead does so from the
            // start instead of one schedule period late.
            if let Err(e) = elector.round().await {
                tracing::warn!("leader election: {e}");
            }
            (leadership, Some(tokio::spawn(elector.run(stop_rx.clone()))))
        }
        _ => (Leadership::always(), None),
    };
    let mut exporter = Exporter::new(
        Arc::clone(&config),
        parts,
        Arc::clone(&metrics),
        leadership,
        options.dry_run,
    )
    .with_server(Arc::clone(&server_state));
    exporter.load_ledger().await?;

    let mut ticker = Ticker::new(config.schedule.clone(), config.schedule_jitter);
    let mut next = ticker.first(Timestamp::now(), fastrand::f64());
    let mut reload = false;
    let mut stopped = false;
    while !stopped {
        let Some(due) = next else {
            tracing::error!(schedule = %config.schedule, "the schedule never fires again; stopping");
            break;
        };
        let wait =
            Duration::try_from(due.at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            received = signals.recv() => match received {
                Received::Stop => break,
                Received::Reload => {
                    reload = true;
                }
            }
        }
        if reload {
            reload = false;
            match crate::cli::load_config(options.config_path.as_deref()) {
                Err(e) => {
                    tracing::error!("configuration not reloaded, keeping the running one: {e}")
                }
                Ok(new) => match reloadable(&config, &new) {
                    Err(why) => tracing::error!(
                        "configuration not reloaded, keeping the running one: {why}"
                    ),
                    Ok(()) => match build_parts(&new, options, false).await {
                        Err(e) => tracing::error!(
                            "configuration not reloaded, keeping the running one: {e}"
                        ),
                        Ok(parts) => {
                            config = Arc::new(new);
                            exporter.reconfigure(Arc::clone(&config), parts);
                            ticker = Ticker::new(config.schedule.clone(), config.schedule_jitter);
                            readiness.set_max_age(readiness_age(&config));
                            next = ticker.first(Timestamp::now(), fastrand::f64());
                            tracing::info!(source = %config.source, "configuration reloaded");
                        }
                    },
                },
            }
            if Timestamp::now() < due.at {
                continue;
            }
        }
        let scheduled = due.at;
        let (_report, stop) = tick_until_stopped(
            &mut exporter,
            &mut signals,
            config.shutdown_grace_period,
            &mut reload,
        )
        .await?;
        stopped = stop;
        next = ticker.after(scheduled, Timestamp::now(), fastrand::f64());
        if let Some(n) = next.filter(|n| n.skipped > 0) {
            tracing::warn!(skipped = n.skipped, schedule = %config.schedule, "the last poll outlasted its slot; skipped scheduled polls (the schedule may be too frequent)");
            for _ in 0..n.skipped {
                metrics.record_poll("skipped", Duration::ZERO, None);
            }
        }
    }

    tracing::info!("shutting down");
    if let Err(e) = exporter.save_if_dirty().await {
        tracing::error!("ledger not saved on shutdown: {e}");
    }
    let _ = stop_tx.send(true);
    let grace = config.shutdown_grace_period;
    let _ = tokio::time::timeout(grace, async {
        if let Some(task) = elector_task {
            let _ = task.await;
        }
        let _ = server_task.await;
    })
    .await;
    Ok(())
}
