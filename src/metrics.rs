//! Prometheus metrics: per-object series rendered on each scrape from the latest assessment
//! (so series of deleted objects vanish with the next tick and memory follows the objects, not
//! the series), and the exporter's own counters and histograms in a `prometheus` registry.
//!
//! The metric names and labels are a public contract used by dashboards and alerts; the README
//! lists them, and a test checks that list against [`FAMILIES`].

use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::flux::FluxKind;
use crate::ledger::Ledger;
use crate::model::{Assessment, Readiness, ResourceAssessment, ResourceState};

/// Every metric family the exporter serves: name, type, help. The README's table is checked
/// against this list.
pub const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "flux_status_resource_ready",
        "gauge",
        "Ready condition of the Flux object: 1 True, 0 False, -1 Unknown or absent.",
    ),
    (
        "flux_status_resource_state",
        "gauge",
        "Current state of the Flux object (pending, success, failure, suspended); one series with value 1.",
    ),
    (
        "flux_status_resource_info",
        "gauge",
        "Source, repository, applied and attempted revision and reason of the Flux object; value 1.",
    ),
    (
        "flux_status_revision_drift",
        "gauge",
        "1 when the source's revision differs from the applied revision.",
    ),
    (
        "flux_status_revision_drift_seconds",
        "gauge",
        "How long the source's revision has differed from the applied revision, 0 when it does not.",
    ),
    (
        "flux_status_stale_seconds",
        "gauge",
        "Time since the object was last seen reconciled successfully, 0 while it is.",
    ),
    (
        "flux_status_failures_total",
        "counter",
        "Transitions into failure seen by the exporter, by Flux reason; persisted across restarts.",
    ),
    (
        "flux_status_suspended",
        "gauge",
        "1 when the object's reconciliation is suspended.",
    ),
    (
        "flux_status_resources",
        "gauge",
        "Flux objects of the cluster by kind and state.",
    ),
    (
        "flux_status_unattributed_resources",
        "gauge",
        "Flux objects whose status names no git commit (e.g. charts from Helm repositories).",
    ),
    (
        "flux_status_undecodable_objects",
        "gauge",
        "Flux objects skipped in the last poll because they did not match the expected schema, by kind.",
    ),
    (
        "flux_status_unmatched_repositories",
        "gauge",
        "Repositories in the last plan whose host no configured forge serves.",
    ),
    (
        "flux_status_polls_total",
        "counter",
        "Polls of the cluster by outcome (success, failure, skipped).",
    ),
    (
        "flux_status_poll_duration_seconds",
        "histogram",
        "Duration of a whole poll: read, assess, plan, publish.",
    ),
    (
        "flux_status_last_successful_poll_timestamp_seconds",
        "gauge",
        "Unix time the last successful poll finished.",
    ),
    (
        "flux_status_kube_requests_total",
        "counter",
        "Kubernetes API requests by resource, verb and HTTP code (`error` for transport failures).",
    ),
    (
        "flux_status_kube_request_duration_seconds",
        "histogram",
        "Latency of Kubernetes API requests by resource and verb.",
    ),
    (
        "flux_status_commit_status_deliveries_total",
        "counter",
        "Commit status deliveries by forge, state and outcome.",
    ),
    (
        "flux_status_commit_status_delivery_duration_seconds",
        "histogram",
        "Latency of commit status deliveries by forge, including retries.",
    ),
    (
        "flux_status_commit_status_pending_retries",
        "gauge",
        "Commit status updates that failed and wait for the next poll.",
    ),
    (
        "flux_status_forge_rate_limit_remaining",
        "gauge",
        "Requests the forge says remain in its rate-limit window (absent until it says).",
    ),
    (
        "flux_status_ledger_entries",
        "gauge",
        "Records in the last-posted ledger.",
    ),
    (
        "flux_status_ledger_bytes",
        "gauge",
        "Size of the stored ledger in bytes.",
    ),
    (
        "flux_status_build_info",
        "gauge",
        "Version and commit of the exporter; value 1.",
    ),
];

/// The exporter's counters that are saved with the ledger so that they continue across restarts
/// and CronJob runs, with their label names in the order their values are saved.
const PERSISTED_COUNTERS: [(&str, &[&str]); 3] = [
    ("flux_status_polls_total", &["outcome"]),
    (
        "flux_status_commit_status_deliveries_total",
        &["forge", "state", "outcome"],
    ),
    (
        "flux_status_kube_requests_total",
        &["resource", "verb", "code"],
    ),
];

fn persisted_labels(name: &str) -> &'static [&'static str] {
    PERSISTED_COUNTERS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, labels)| labels)
}

/// Room for the registry's families in a rendered text (about 10 KB with a few forges and
/// Kubernetes resources).
const REGISTRY_TEXT_ESTIMATE: usize = 16 * 1024;

/// Room for one object's series in a rendered text (about 1 KB with short names and
/// revisions; longer ones cost one more growth of the buffer).
const OBJECT_TEXT_ESTIMATE: usize = 1100;

/// At most this many `reason` series of `flux_status_failures_total` per object; rarer
/// reasons are summed under `reason="Other"` so an object never has more than 10 series.
pub const MAX_FAILURE_REASONS_PER_OBJECT: usize = 3;

/// Failed to set up the registry (a programming error: duplicate or invalid metric names).
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Per-object facts from the ledger, aligned with the assessment's resources.
#[derive(Debug, Clone, Default)]
struct LedgerFacts {
    failures: Vec<(String, u64)>,
    drift_since: Option<Timestamp>,
    left_success_at: Option<Timestamp>,
}

#[derive(Default)]
struct ObjectsView {
    assessment: Arc<Assessment>,
    facts: Vec<LedgerFacts>,
    kinds: Vec<FluxKind>,
}

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
    ledger_entries: IntGauge,
    ledger_bytes: IntGauge,
    unmatched: IntGauge,
    undecodable: IntGaugeVec,
}

/// The last successful poll's time, saved with the counters (in whole seconds).
pub const LAST_SUCCESS: &str = "flux_status_last_successful_poll_timestamp_seconds";

fn help(name: &str) -> &'static str {
    FAMILIES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or("", |(_, _, h)| h)
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
        let polls = persisted("flux_status_polls_total")?;
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
            "flux_status_polls_total" => &self.polls,
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
        let view = match self.objects.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Sized up front: growing a 20 MB text by doubling would copy it several times and
        // briefly hold it twice.
        let mut out = String::with_capacity(
            REGISTRY_TEXT_ESTIMATE + view.assessment.resources.len() * OBJECT_TEXT_ESTIMATE,
        );
        let _ = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out);
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

fn bounded_failures<'a>(failures: impl Iterator<Item = (&'a str, u64)>) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = failures
        .map(|(reason, n)| {
            (
                if is_bounded_label(reason) {
                    reason.to_string()
                } else {
                    "Other".to_string()
                },
                n,
            )
        })
        .collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if all.len() > MAX_FAILURE_REASONS_PER_OBJECT {
        let rest: u64 = all[MAX_FAILURE_REASONS_PER_OBJECT - 1..]
            .iter()
            .map(|(_, n)| n)
            .sum();
        all.truncate(MAX_FAILURE_REASONS_PER_OBJECT - 1);
        all.push(("Other".to_string(), rest));
    }
    let mut merged: Vec<(String, u64)> = Vec::new();
    for (reason, n) in all {
        match merged.iter_mut().find(|(r, _)| *r == reason) {
            Some(entry) => entry.1 += n,
            None => merged.push((reason, n)),
        }
    }
    merged.sort();
    merged
}

/// Flux reasons are CamelCase identifiers; anything else would be unbounded text.
fn is_bounded_label(reason: &str) -> bool {
    !reason.is_empty() && reason.len() <= 64 && reason.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Appends `value` escaped for a label value of the text format.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn header(out: &mut String, name: &str) {
    let (_, kind, text) = FAMILIES
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .unwrap_or((name, "gauge", ""));
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn object_labels(out: &mut String, cluster: &str, kind: FluxKind, namespace: &str, name: &str) {
    out.push_str("cluster=\"");
    escape_into(out, cluster);
    out.push_str("\",kind=\"");
    out.push_str(kind.as_str());
    out.push_str("\",namespace=\"");
    escape_into(out, namespace);
    out.push_str("\",name=\"");
    escape_into(out, name);
    out.push('"');
}

fn seconds_since(since: Option<Timestamp>, now: Timestamp) -> i64 {
    since.map_or(0, |t| (now.as_second() - t.as_second()).max(0))
}

/// Writes `name{<object labels><extra>} value`; `extra` writes more labels, each starting
/// with a comma.
fn object_line(
    out: &mut String,
    cluster: &str,
    r: &ResourceAssessment,
    name: &str,
    extra: impl FnOnce(&mut String),
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    out.push('{');
    object_labels(
        out,
        cluster,
        r.resource.kind,
        &r.resource.namespace,
        &r.resource.name,
    );
    extra(out);
    let _ = writeln!(out, "}} {value}");
}

/// No labels beyond the object's.
fn no_labels(_: &mut String) {}

/// Writes `,label="value"` with the value escaped.
fn label(out: &mut String, label: &str, value: &str) {
    out.push(',');
    out.push_str(label);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

/// Writes the labels of `flux_status_resource_info`; `scratch` is reused for formatting.
fn info_labels(out: &mut String, r: &ResourceAssessment, scratch: &mut String) {
    match &r.source {
        Some((kind, namespace, name)) => {
            label(out, "source_kind", kind.as_str());
            scratch.clear();
            scratch.push_str(namespace);
            scratch.push('/');
            scratch.push_str(name);
            label(out, "source_name", scratch);
        }
        None => {
            label(out, "source_kind", "");
            label(out, "source_name", "");
        }
    }
    scratch.clear();
    if let Some(repository) = &r.repository {
        let _ = write!(scratch, "{repository}");
    }
    label(out, "repository", scratch);
    label(out, "revision", r.applied_revision.as_deref().unwrap_or(""));
    label(
        out,
        "attempted_revision",
        r.attempted_revision.as_deref().unwrap_or(""),
    );
    label(out, "reason", &r.reason);
}

fn render_objects(out: &mut String, cluster: &str, view: &ObjectsView, now: Timestamp) {
    let resources = &view.assessment.resources;
    let no_facts = LedgerFacts::default();
    let facts = |i: usize| view.facts.get(i).unwrap_or(&no_facts);

    header(out, "flux_status_resource_ready");
    for r in resources {
        let value = match r.ready {
            Readiness::True => 1,
            Readiness::False => 0,
            Readiness::Unknown => -1,
        };
        object_line(
            out,
            cluster,
            r,
            "flux_status_resource_ready",
            no_labels,
            value,
        );
    }
    header(out, "flux_status_resource_state");
    for r in resources {
        object_line(
            out,
            cluster,
            r,
            "flux_status_resource_state",
            |out| label(out, "state", r.state.as_str()),
            1,
        );
    }
    header(out, "flux_status_resource_info");
    let mut scratch = String::new();
    for r in resources {
        object_line(
            out,
            cluster,
            r,
            "flux_status_resource_info",
            |out| info_labels(out, r, &mut scratch),
            1,
        );
    }
    header(out, "flux_status_revision_drift");
    for r in resources {
        object_line(
            out,
            cluster,
            r,
            "flux_status_revision_drift",
            no_labels,
            u8::from(r.drift.is_some()),
        );
    }
    header(out, "flux_status_revision_drift_seconds");
    for (i, r) in resources.iter().enumerate() {
        // The ledger remembers when drift began; before it has, the source artifact's time.
        let value = match r.drift {
            Some(hint) => seconds_since(facts(i).drift_since.or(hint).or(Some(now)), now),
            None => 0,
        };
        object_line(
            out,
            cluster,
            r,
            "flux_status_revision_drift_seconds",
            no_labels,
            value,
        );
    }
    header(out, "flux_status_stale_seconds");
    for (i, r) in resources.iter().enumerate() {
        let value = match r.state {
            ResourceState::Success => 0,
            _ => seconds_since(facts(i).left_success_at.or(r.ready_since), now),
        };
        object_line(
            out,
            cluster,
            r,
            "flux_status_stale_seconds",
            no_labels,
            value,
        );
    }
    header(out, "flux_status_failures_total");
    for (i, r) in resources.iter().enumerate() {
        for (reason, count) in &facts(i).failures {
            object_line(
                out,
                cluster,
                r,
                "flux_status_failures_total",
                |out| label(out, "reason", reason),
                count,
            );
        }
    }
    header(out, "flux_status_suspended");
    for r in resources {
        object_line(
            out,
            cluster,
            r,
            "flux_status_suspended",
            no_labels,
            u8::from(r.state == ResourceState::Suspended),
        );
    }

    header(out, "flux_status_resources");
    for kind in &view.kinds {
        for state in ResourceState::ALL {
            let count = resources
                .iter()
                .filter(|r| r.resource.kind == *kind && r.state == state)
                .count();
            out.push_str("flux_status_resources{cluster=\"");
            escape_into(out, cluster);
            let _ = writeln!(
                out,
                "\",kind=\"{}\",state=\"{}\"}} {count}",
                kind.as_str(),
                state.as_str()
            );
        }
    }
    header(out, "flux_status_unattributed_resources");
    let unattributed = resources
        .iter()
        .filter(|r| r.unattributed.is_some())
        .count();
    out.push_str("flux_status_unattributed_resources{cluster=\"");
    escape_into(out, cluster);
    let _ = writeln!(out, "\"}} {unattributed}");
}

#[cfg(test)]
mod tests;
