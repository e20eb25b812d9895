//! Prometheus metrics: per-object series rendered on each scrape from the latest assessment
//! (so series of deleted objects vanish with the next tick and memory follows the objects, not
//! the series), and the exporter's own counters and histograms in a `prometheus` registry.
//!
//! The metric names and labels are a public contract used by dashboards and alerts; the README
//! lists them, and a test checks that list against [`FAMILIES`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::flux::FluxKind;
use crate::ledger::Ledger;
use crate::model::Assessment;

mod families;
mod objects;

pub use families::{FAMILIES, LAST_SUCCESS, POLLS};
use families::{help, persisted_labels};
pub use objects::MAX_FAILURE_REASONS_PER_OBJECT;
use objects::{LedgerFacts, OBJECT_TEXT_ESTIMATE, ObjectsView, bounded_failures, render_objects};

/// Room for the registry's families in a rendered text (about 10 KB with a few forges and
/// Kubernetes resources).
const REGISTRY_TEXT_ESTIMATE: usize = 16 * 1024;

/// Failed to set up the registry (a programming error: duplicate or invalid metric names).
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// The exporter's metrics.
pub struct Metrics {
    cluster: String,
    registry: Registry,
    objects: RwLock<ObjectsView>,
    polls: IntCounterVec,
    poll_duration: Histogram,
    last_success: Gauge,
    kube_requests: IntCounterVec,
    kube_duration: HistogramVec,
    deliveries: IntCounterVec,
    delivery_duration: HistogramVec,
    pending_retries: IntGauge,
    rate_limit_remaining: GaugeVec,
    credential_refused: IntGaugeVec,
    ledger_entries: IntGauge,
    ledger_bytes: IntGauge,
    unmatched: IntGauge,
    undecodable: IntGaugeVec,
}

impl Metrics {
    /// Creates the registry for `cluster`, with process metrics and build information.
    pub fn new(cluster: &str, version: &str, commit: &str) -> Result<Metrics, MetricsError> {
        // Every series carries the cluster, so exporters of several clusters can share a
        // Prometheus without relabelling.
        let labels =
            std::collections::HashMap::from([("cluster".to_string(), cluster.to_string())]);
        let registry = Registry::new_custom(None, Some(labels))?;
        let opts = |name: &str| Opts::new(name, help(name));
        let hist = |name: &str, buckets: &[f64]| {
            HistogramOpts::new(name, help(name)).buckets(buckets.to_vec())
        };
        let persisted = |name: &str| -> Result<IntCounterVec, prometheus::Error> {
            IntCounterVec::new(opts(name), persisted_labels(name))
        };
        let polls = persisted(POLLS)?;
        let poll_duration = Histogram::with_opts(hist(
            "flux_status_poll_duration_seconds",
            &[
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ],
        ))?;
        let last_success =
            Gauge::with_opts(opts("flux_status_last_successful_poll_timestamp_seconds"))?;
        let kube_requests = persisted("flux_status_kube_requests_total")?;
        let kube_duration = HistogramVec::new(
            hist(
                "flux_status_kube_request_duration_seconds",
                &[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            ),
            &["resource", "verb"],
        )?;
        let deliveries = persisted("flux_status_commit_status_deliveries_total")?;
        let delivery_duration = HistogramVec::new(
            hist(
                "flux_status_commit_status_delivery_duration_seconds",
                &[
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ],
            ),
            &["forge"],
        )?;
        let pending_retries =
            IntGauge::with_opts(opts("flux_status_commit_status_pending_retries"))?;
        let rate_limit_remaining =
            GaugeVec::new(opts("flux_status_forge_rate_limit_remaining"), &["forge"])?;
        let credential_refused =
            IntGaugeVec::new(opts("flux_status_forge_credential_refused"), &["forge"])?;
        let ledger_entries = IntGauge::with_opts(opts("flux_status_ledger_entries"))?;
        let ledger_bytes = IntGauge::with_opts(opts("flux_status_ledger_bytes"))?;
        let unmatched = IntGauge::with_opts(opts("flux_status_unmatched_repositories"))?;
        let undecodable = IntGaugeVec::new(opts("flux_status_undecodable_objects"), &["kind"])?;
        let build_info = IntGaugeVec::new(opts("flux_status_build_info"), &["version", "commit"])?;
        build_info.with_label_values(&[version, commit]).set(1);
        for outcome in ["success", "failure", "skipped"] {
            polls.with_label_values(&[outcome]);
        }
        registry.register(Box::new(polls.clone()))?;
        registry.register(Box::new(poll_duration.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(kube_requests.clone()))?;
        registry.register(Box::new(kube_duration.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(delivery_duration.clone()))?;
        registry.register(Box::new(pending_retries.clone()))?;
        registry.register(Box::new(rate_limit_remaining.clone()))?;
        registry.register(Box::new(credential_refused.clone()))?;
        registry.register(Box::new(ledger_entries.clone()))?;
        registry.register(Box::new(ledger_bytes.clone()))?;
        registry.register(Box::new(unmatched.clone()))?;
        registry.register(Box::new(undecodable.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            cluster: cluster.to_string(),
            registry,
            objects: RwLock::new(ObjectsView::default()),
            polls,
            poll_duration,
            last_success,
            kube_requests,
            kube_duration,
            deliveries,
            delivery_duration,
            pending_retries,
            rate_limit_remaining,
            credential_refused,
            ledger_entries,
            ledger_bytes,
            unmatched,
            undecodable,
        })
    }

    /// Replaces the per-object view with this tick's assessment and the ledger's facts.
    pub fn update_objects(&self, assessment: Arc<Assessment>, ledger: &Ledger, kinds: &[FluxKind]) {
        let facts = assessment
            .resources
            .iter()
            .map(|r| match ledger.resource(&r.resource) {
                None => LedgerFacts::default(),
                Some(record) => LedgerFacts {
                    failures: bounded_failures(
                        record.failures.iter().map(|(k, v)| (k.as_str(), *v)),
                    ),
                    drift_since: record.drift.as_ref().map(|d| d.since),
                    left_success_at: record.left_success_at,
                },
            })
            .collect();
        let view = ObjectsView {
            assessment,
            facts,
            kinds: kinds.to_vec(),
        };
        match self.objects.write() {
            Ok(mut guard) => *guard = view,
            Err(poisoned) => *poisoned.into_inner() = view,
        }
    }

    /// Counts a poll; `finished_at` is set for successful polls.
    pub fn record_poll(&self, outcome: &str, duration: Duration, finished_at: Option<Timestamp>) {
        self.polls.with_label_values(&[outcome]).inc();
        if outcome != "skipped" {
            self.poll_duration.observe(duration.as_secs_f64());
        }
        if let Some(t) = finished_at {
            self.last_success.set(t.as_millisecond() as f64 / 1000.0);
        }
    }

    /// Counts one Kubernetes API request; `code` is `None` for transport failures.
    pub fn record_kube_request(
        &self,
        resource: &str,
        verb: &str,
        code: Option<u16>,
        duration: Duration,
    ) {
        let code = code.map_or_else(|| "error".to_string(), |c| c.to_string());
        self.kube_requests
            .with_label_values(&[resource, verb, &code])
            .inc();
        self.kube_duration
            .with_label_values(&[resource, verb])
            .observe(duration.as_secs_f64());
    }

    /// Counts one commit status delivery outcome.
    pub fn record_delivery(
        &self,
        forge: &str,
        state: &str,
        outcome: &str,
        duration: Option<Duration>,
    ) {
        self.deliveries
            .with_label_values(&[forge, state, outcome])
            .inc();
        if let Some(d) = duration {
            self.delivery_duration
                .with_label_values(&[forge])
                .observe(d.as_secs_f64());
        }
    }

    /// Restores counters persisted by a previous run (CronJob mode), before any are counted.
    pub fn restore_counter(&self, name: &str, labels: &[&str], value: u64) {
        self.restore(name, labels, value, false);
    }

    /// Restores counters persisted by a previous run after this run began counting: the
    /// saved value is added to what this run counted so far.
    pub fn add_restored_counter(&self, name: &str, labels: &[&str], value: u64) {
        self.restore(name, labels, value, true);
    }

    fn restore(&self, name: &str, labels: &[&str], value: u64, add: bool) {
        if name == LAST_SUCCESS {
            // Kept with the counters so a CronJob's failed run does not report "never".
            if self.last_success.get() < value as f64 {
                self.last_success.set(value as f64);
            }
            return;
        }
        let vec = match name {
            POLLS => &self.polls,
            "flux_status_commit_status_deliveries_total" => &self.deliveries,
            "flux_status_kube_requests_total" => &self.kube_requests,
            _ => return,
        };
        if let Ok(counter) = vec.get_metric_with_label_values(labels) {
            if add {
                counter.inc_by(value);
            } else {
                counter.inc_by(value.saturating_sub(counter.get()));
            }
        }
    }

    /// Sets the number of updates waiting for the next poll.
    pub fn set_pending_retries(&self, count: usize) {
        self.pending_retries.set(count as i64);
    }

    /// Sets what a forge last said about its remaining rate limit.
    /// Whether `forge`'s credential is held after a refusal.
    pub fn set_credential_refused(&self, forge: &str, refused: bool) {
        self.credential_refused
            .with_label_values(&[forge])
            .set(i64::from(refused));
    }

    /// Sets what the forge says remains of its rate-limit window.
    pub fn set_rate_limit_remaining(&self, forge: &str, remaining: Option<u64>) {
        match remaining {
            Some(r) => self
                .rate_limit_remaining
                .with_label_values(&[forge])
                .set(r as f64),
            None => {
                let _ = self.rate_limit_remaining.remove_label_values(&[forge]);
            }
        }
    }

    /// Sets the ledger's size.
    pub fn set_ledger_size(&self, entries: usize, bytes: usize) {
        self.ledger_entries.set(entries as i64);
        self.ledger_bytes.set(bytes as i64);
    }

    /// Sets the number of repositories no forge serves.
    pub fn set_unmatched_repositories(&self, count: usize) {
        self.unmatched.set(count as i64);
    }

    /// Sets the number of undecodable objects per kind.
    pub fn set_undecodable(&self, counts: &[(FluxKind, usize)]) {
        for kind in FluxKind::ALL {
            let n = counts
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, n)| *n);
            self.undecodable
                .with_label_values(&[kind.as_str()])
                .set(n as i64);
        }
    }

    /// Renders every metric in the Prometheus text format at time `now`.
    pub fn render(&self, now: Timestamp) -> String {
        self.render_families(now, |_| true)
    }

    /// What `once` pushes: every metric but the `process_*` ones, which describe a process
    /// that has exited by the time they are read from the Pushgateway.
    pub fn render_for_push(&self, now: Timestamp) -> String {
        self.render_families(now, |name| !name.starts_with("process_"))
    }

    fn render_families(&self, now: Timestamp, keep: impl Fn(&str) -> bool) -> String {
        let view = match self.objects.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Sized up front: growing a 20 MB text by doubling would copy it several times and
        // briefly hold it twice.
        let mut out = String::with_capacity(
            REGISTRY_TEXT_ESTIMATE + view.assessment.resources.len() * OBJECT_TEXT_ESTIMATE,
        );
        let families: Vec<_> = self
            .registry
            .gather()
            .into_iter()
            .filter(|family| keep(family.name()))
            .collect();
        let _ = TextEncoder::new().encode_utf8(&families, &mut out);
        render_objects(&mut out, &self.cluster, &view, now);
        out
    }

    /// Every persisted counter as (name, label values in declaration order, value), for
    /// saving with the ledger; [`Metrics::restore_counter`] takes them back.
    pub fn counter_values(&self) -> Vec<(String, Vec<String>, u64)> {
        let mut values = Vec::new();
        let last_success = self.last_success.get();
        if last_success > 0.0 {
            values.push((LAST_SUCCESS.to_string(), Vec::new(), last_success as u64));
        }
        for family in self.registry.gather() {
            let name = family.name();
            let names = persisted_labels(name);
            if names.is_empty() {
                continue;
            }
            for metric in family.get_metric() {
                // Gathered labels come sorted by name; restoring wants them in the order the
                // counter declares them.
                let labels = names
                    .iter()
                    .map(|wanted| {
                        metric
                            .get_label()
                            .iter()
                            .find(|l| l.name() == *wanted)
                            .map(|l| l.value().to_string())
                            .unwrap_or_default()
                    })
                    .collect();
                values.push((
                    name.to_string(),
                    labels,
                    metric.get_counter().get_value() as u64,
                ));
            }
        }
        values
    }

    /// The assessment the per-object series are rendered from (the last successful poll's).
    pub fn assessment(&self) -> Arc<Assessment> {
        let view = match self.objects.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(&view.assessment)
    }
}

#[cfg(test)]
mod tests;
