//! The metric families the exporter serves, and which counters persist with the ledger.

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
        "flux_status_forge_credential_refused",
        "gauge",
        "1 while the forge's credential is held after the forge refused it (401), else 0.",
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
    (POLLS, &["outcome"]),
    (
        "flux_status_commit_status_deliveries_total",
        &["forge", "state", "outcome"],
    ),
    (
        "flux_status_kube_requests_total",
        &["resource", "verb", "code"],
    ),
];

pub(super) fn persisted_labels(name: &str) -> &'static [&'static str] {
    PERSISTED_COUNTERS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, labels)| labels)
}

/// The counter of polls, by outcome; persisted.
pub const POLLS: &str = "flux_status_polls_total";

/// The last successful poll's time, saved with the counters (in whole seconds).
pub const LAST_SUCCESS: &str = "flux_status_last_successful_poll_timestamp_seconds";

pub(super) fn help(name: &str) -> &'static str {
    FAMILIES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or("", |(_, _, h)| h)
}
