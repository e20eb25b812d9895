//! The exporter's state between ticks: what it reads, where it saves, what it remembers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;

use super::inputs::{WarnedKinds, read_snapshot_warning_once};
use super::{ClusterSource, LedgerStore, Parts};
use crate::clock::{Clock, TokioClock};
use crate::cluster::Snapshot;
use crate::cluster::kube::{ReadError, ReadOutcome};
use crate::config::Config;
use crate::flux::ResourceRef;
use crate::forge::{DeliveryOutcome, Publishers};
use crate::leader::Leadership;
use crate::ledger::{Ledger, LedgerError};
use crate::metrics::Metrics;
use crate::model::{Assessment, CommitState, StatusKey};
use crate::server::ServerState;
use crate::status::{LedgerSummary, PollSummary, StatusInputs};

/// Why a tick could not read the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ReadFailure {
    /// The `--snapshot` dump is missing, unreadable or not a dump: the caller's input.
    Snapshot(String),
    /// The API server (or reading the dump's thread) failed.
    Cluster(String),
}

/// The exporter's state between ticks.
pub struct Exporter {
    /// Kinds in a `--snapshot` dump already warned about.
    pub(super) warned_kinds: WarnedKinds,
    /// Timestamps and durations of ticks.
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: Arc<Config>,
    pub(super) source: ClusterSource,
    pub(super) store: LedgerStore,
    pub(super) publishers: Arc<Publishers>,
    pub(super) ledger: Ledger,
    pub(super) metrics: Arc<Metrics>,
    pub(super) server: Option<Arc<ServerState>>,
    pub(super) leadership: Leadership,
    pub(super) was_leader: bool,
    pub(super) dry_run: bool,
    /// `once` saves the counters every run so that a CronJob's counters continue.
    pub(super) save_every_tick: bool,
    pub(super) logged_unattributed: HashSet<ResourceRef>,
    pub(super) last_deliveries: HashMap<StatusKey, DeliveryOutcome>,
    /// Statuses (and the state planned for them) whose skip (no forge, or not allowed) was
    /// already counted.
    pub(super) counted_skips: HashSet<(StatusKey, CommitState)>,
    pub(super) ledger_bytes: Option<usize>,
    /// The ledger is loaded by the first tick, once its snapshot is assessed and dropped.
    pub(super) ledger_deferred: bool,
    /// Why the deferred load failed, for `once` to report as it reports a failed load.
    pub(super) ledger_load_error: Option<LedgerError>,
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
            warned_kinds: WarnedKinds::default(),
            clock: Arc::new(TokioClock),
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

    /// Takes ticks' timestamps and durations from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Exporter {
        self.clock = clock;
        self
    }

    /// Wall-clock now, on the exporter's clock.
    pub(super) fn wall_now(&self) -> Timestamp {
        Timestamp::try_from(self.clock.wall()).unwrap_or(Timestamp::UNIX_EPOCH)
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
    pub(super) async fn load_deferred_ledger(&mut self) -> Result<(), String> {
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

    pub(super) async fn read(&mut self) -> Result<Snapshot, ReadFailure> {
        match &self.source {
            ClusterSource::Snapshot(path) => {
                let path = path.clone();
                let config = Arc::clone(&self.config);
                let mut warned = std::mem::take(&mut self.warned_kinds);
                // A large dump takes a while to parse; keep the runtime (and /metrics) free.
                let (read, warned) = tokio::task::spawn_blocking(move || {
                    let read = read_snapshot_warning_once(&path, &config, &mut warned);
                    (read, warned)
                })
                .await
                .map_err(|e| ReadFailure::Cluster(format!("reading the snapshot: {e}")))?;
                self.warned_kinds = warned;
                read.map_err(|e| ReadFailure::Snapshot(e.to_string()))
            }
            ClusterSource::Kube(reader) => {
                let result = reader.read().await;
                self.take_read(result)
            }
            ClusterSource::Watch(watch) => {
                let result = watch.read().await;
                self.take_read(result)
            }
        }
    }

    /// Counts a cluster read's requests and turns it into the tick's snapshot or failure.
    fn take_read(&self, result: Result<ReadOutcome, ReadError>) -> Result<Snapshot, ReadFailure> {
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
            Err(err) => Err(ReadFailure::Cluster(format!(
                "{} ({})",
                err,
                err.kind().as_str()
            ))),
        }
    }

    pub(super) fn log_unattributed(&mut self, assessment: &Assessment) {
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

    pub(super) fn publish_status(
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
        let refused_credentials: Vec<(String, String)> = self
            .publishers
            .credential_refused()
            .into_iter()
            .filter_map(|(forge, why)| Some((forge, why?)))
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
            refused_credentials: &refused_credentials,
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
