//! The metrics of the real exporter, end to end: `flux-status-exporter run` polls the fake API
//! server every second and delivers to a fake GitHub, `promtool check metrics` lints what it
//! serves, and a real Prometheus scrapes it every second while the test changes the cluster.
//! Every metric family is queried in PromQL and its values are asserted after each change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use flux_status_exporter::metrics::FAMILIES;
use flux_status_exporter::version::{BUILD_COMMIT, VERSION};
use jiff::Timestamp;
use serde_json::Value;
use support::exporter::{CLUSTER, GitHub, Setup};
use support::fake_forges::{Fault, Reply};
use support::flux_objects::{
    NAMESPACE, failing, git_repository, kustomization, revision, sha, suspended, undecodable,
};
use support::prometheus::{JOB, Prometheus, promtool_check_metrics, value_of};

fn fleet_1() -> String {
    sha('1')
}
fn fleet_2() -> String {
    sha('2')
}

const WEB_FAILURE: &str = "health check failed after 5m0s: timeout waiting for: [Deployment/web/web status: 'InProgress']";

/// The cluster the scenarios start from:
/// - `apps`, `web`, `infra`, `legacy`: healthy, each on its own GitHub repository (acme/*);
/// - `tools`: healthy, on a GitLab host no forge serves (its repository is unmatched);
/// - `orphan`: healthy, but its GitRepository does not exist (it names no commit);
/// - `odd`: a Kustomization that does not decode.
///
/// `fleet_updated` is the `lastUpdateTime` of the fleet repository's artifact.
fn cluster(fleet_updated: &str) -> Vec<Value> {
    vec![
        git_repository(
            "fleet",
            "https://github.com/acme/fleet",
            &fleet_1(),
            Some(fleet_updated),
        ),
        git_repository("web", "https://github.com/acme/web", &sha('3'), None),
        git_repository("infra", "https://github.com/acme/infra", &sha('4'), None),
        git_repository("legacy", "https://github.com/acme/legacy", &sha('5'), None),
        git_repository(
            "tools",
            "https://gitlab.example.com/ops/tools",
            &sha('6'),
            None,
        ),
        kustomization("apps", "fleet", &fleet_1()),
        kustomization("web", "web", &sha('3')),
        kustomization("infra", "infra", &sha('4')),
        kustomization("legacy", "legacy", &sha('5')),
        kustomization("tools", "tools", &sha('6')),
        kustomization("orphan", "gone", &sha('7')),
        undecodable("odd"),
    ]
}

/// Whole seconds since the epoch, now.
fn now_seconds() -> i64 {
    Timestamp::now().as_second()
}

/// `{label value: sample value}` of a vector, keyed by one label.
fn by(samples: &[(BTreeMap<String, String>, String)], label: &str) -> BTreeMap<String, String> {
    samples
        .iter()
        .map(|(labels, value)| (labels[label].clone(), value.clone()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Records which families a test has queried, so that none is left out.
#[derive(Default)]
struct Coverage(BTreeSet<String>);

impl Coverage {
    fn expr(&mut self, family: &str, expr: String) -> String {
        assert!(
            FAMILIES.iter().any(|(name, _, _)| *name == family) || family.starts_with("process_"),
            "{family} is not a family of the exporter"
        );
        self.0.insert(family.to_string());
        expr
    }

    fn assert_complete(&self) {
        let all: BTreeSet<String> = FAMILIES.iter().map(|(n, _, _)| n.to_string()).collect();
        let missing: Vec<&String> = all.difference(&self.0).collect();
        assert!(missing.is_empty(), "families never queried: {missing:?}");
    }
}

#[test]
fn a_scrape_of_the_running_exporter_passes_promtool_check_metrics() {
    let setup = Setup::new(cluster("2026-01-01T00:00:00Z"));
    setup.kube.uninstall("buckets");
    let config = setup.write_config("");
    let mut exporter = setup.run(&config, &[]);
    // Every kind of series is there: objects, deliveries, rate limits, kube requests.
    let scrape = exporter.wait_until("a delivery and a rate limit in /metrics", |e| {
        let text = e.scrape();
        (text.contains("flux_status_forge_rate_limit_remaining{")
            && text.contains("flux_status_commit_status_delivery_duration_seconds_count{")
            && text.contains("flux_status_resource_info{"))
        .then_some(text)
    });
    let (passed, printed) = promtool_check_metrics(&scrape);
    assert!(passed, "promtool check metrics failed:\n{printed}");
    assert_eq!(printed, "", "promtool reported problems");
}

#[test]
fn prometheus_sees_every_family_follow_drift_failures_recovery_suspension_retries_and_deletion() {
    let started = now_seconds();
    // The fleet's new revision has been waiting for two hours when the exporter first sees it.
    let fleet_moved = Timestamp::from_second(started - 7200).unwrap();
    let setup = Setup::new(cluster(&fleet_moved.to_string()));
    setup.kube.uninstall("buckets");
    let config = setup.write_config("");
    let mut exporter = setup.run(&config, &[]);
    let address = exporter.address();
    let mut prometheus = Prometheus::start(address, None);
    let mut covered = Coverage::default();
    let object = |name: &str| format!("job=\"{JOB}\",cluster=\"{CLUSTER}\",name=\"{name}\"");
    let exporter_job = format!("job=\"{JOB}\",cluster=\"{CLUSTER}\"");
    let deliveries = |state: &str, outcome: &str| {
        format!(
            "flux_status_commit_status_deliveries_total{{{exporter_job},forge=\"github\",state=\"{state}\",outcome=\"{outcome}\"}}"
        )
    };

    // 1. The first polls: four healthy objects on GitHub are posted as success. (A scrape
    // during the first poll may see its deliveries before its objects: wait for both.)
    prometheus.wait_for_value(&deliveries("success", "delivered"), "4");
    prometheus.wait_for_value(
        &format!(
            "flux_status_resources{{{exporter_job},kind=\"Kustomization\",state=\"success\"}}"
        ),
        "6",
    );
    assert_eq!(
        by(
            &prometheus.vector(&covered.expr(
                "flux_status_resources",
                format!("flux_status_resources{{{exporter_job},kind=\"Kustomization\"}}")
            )),
            "state"
        ),
        map(&[
            ("failure", "0"),
            ("pending", "0"),
            ("success", "6"),
            ("suspended", "0")
        ])
    );
    assert_eq!(
        by(
            &prometheus.vector(&format!(
                "flux_status_resources{{{exporter_job},kind=\"HelmRelease\"}}"
            )),
            "state"
        ),
        map(&[
            ("failure", "0"),
            ("pending", "0"),
            ("success", "0"),
            ("suspended", "0")
        ])
    );
    assert_eq!(
        prometheus.vector(&format!("flux_status_failures_total{{{exporter_job}}}")),
        vec![],
        "no object has failed yet"
    );
    assert_eq!(
        prometheus.value(&format!("flux_status_revision_drift{{{}}}", object("apps"))),
        Some("0".into())
    );

    // 2. The fleet moves on, web fails its health check, legacy is suspended, infra is deleted.
    let changed = now_seconds();
    setup
        .kube
        .put(git_repository(
            "fleet",
            "https://github.com/acme/fleet",
            &fleet_2(),
            Some(&fleet_moved.to_string()),
        ))
        .unwrap();
    setup
        .kube
        .put(failing(
            kustomization("web", "web", &sha('3')),
            "HealthCheckFailed",
            WEB_FAILURE,
        ))
        .unwrap();
    setup
        .kube
        .put(suspended(kustomization("legacy", "legacy", &sha('5'))))
        .unwrap();
    assert!(setup.kube.delete("kustomizations", NAMESPACE, "infra"));
    prometheus.wait_for_value(&deliveries("failure", "delivered"), "1");
    prometheus.wait_for_value(&deliveries("pending", "delivered"), "1");
    prometheus.wait_for_value(
        &format!(
            "flux_status_resource_state{{{},state=\"suspended\"}}",
            object("legacy")
        ),
        "1",
    );

    // The deleted object's series are gone from the exporter and, after staleness, from
    // Prometheus.
    let scrape = exporter.scrape();
    assert!(
        !scrape.contains("name=\"infra\""),
        "infra's series are still served:\n{scrape}"
    );
    prometheus.wait_for_nothing(&format!("{{{}}}", object("infra")));
    assert_eq!(
        prometheus.value(&format!(
            "absent(flux_status_resource_ready{{{}}})",
            object("infra")
        )),
        Some("1".into())
    );

    let ready = prometheus.vector(&covered.expr(
        "flux_status_resource_ready",
        format!("flux_status_resource_ready{{{exporter_job}}}"),
    ));
    assert_eq!(
        by(&ready, "name"),
        map(&[
            ("apps", "1"),
            ("legacy", "1"),
            ("orphan", "1"),
            ("tools", "1"),
            ("web", "0")
        ])
    );
    let states = prometheus.vector(&covered.expr(
        "flux_status_resource_state",
        format!("flux_status_resource_state{{{exporter_job}}}"),
    ));
    let states: BTreeMap<String, (String, String)> = states
        .iter()
        .map(|(l, v)| (l["name"].clone(), (l["state"].clone(), v.clone())))
        .collect();
    let state = |s: &str| (s.to_string(), "1".to_string());
    assert_eq!(
        states,
        BTreeMap::from([
            ("apps".to_string(), state("success")),
            ("legacy".to_string(), state("suspended")),
            ("orphan".to_string(), state("success")),
            ("tools".to_string(), state("success")),
            ("web".to_string(), state("failure")),
        ])
    );
    assert_eq!(
        prometheus.vector(&covered.expr(
            "flux_status_resource_info",
            format!("flux_status_resource_info{{{}}}", object("apps"))
        )),
        vec![(
            map(&[
                ("attempted_revision", &revision(&fleet_1())),
                ("cluster", CLUSTER),
                ("instance", &address.to_string()),
                ("job", JOB),
                ("kind", "Kustomization"),
                ("name", "apps"),
                ("namespace", NAMESPACE),
                ("reason", "ReconciliationSucceeded"),
                ("repository", "github.com/acme/fleet"),
                ("revision", &revision(&fleet_1())),
                ("source_kind", "GitRepository"),
                ("source_name", "flux-system/fleet"),
            ]),
            "1".to_string()
        )]
    );
    assert_eq!(
        by(
            &prometheus.vector(&covered.expr(
                "flux_status_revision_drift",
                format!("flux_status_revision_drift{{{exporter_job}}}")
            )),
            "name"
        ),
        map(&[
            ("apps", "1"),
            ("legacy", "0"),
            ("orphan", "0"),
            ("tools", "0"),
            ("web", "0")
        ])
    );
    // Drift began when the fleet's artifact changed, two hours ago.
    let drift_seconds = covered.expr(
        "flux_status_revision_drift_seconds",
        format!(
            "flux_status_revision_drift_seconds{{{}}} >= 7200",
            object("apps")
        ),
    );
    assert_eq!(
        prometheus.vector(&drift_seconds).len(),
        1,
        "{drift_seconds}"
    );
    let before = now_seconds();
    let scrape = exporter.scrape();
    let after = now_seconds();
    let drift: i64 = value_of(
        &scrape,
        "flux_status_revision_drift_seconds",
        &[("name", "apps")],
    )
    .parse()
    .unwrap();
    let since = fleet_moved.as_second();
    assert!(
        (before - since..=after - since).contains(&drift),
        "drift of {drift}s, not between {} and {}",
        before - since,
        after - since
    );
    for name in ["legacy", "orphan", "tools", "web"] {
        assert_eq!(
            value_of(
                &scrape,
                "flux_status_revision_drift_seconds",
                &[("name", name)]
            ),
            "0",
            "{name}"
        );
    }
    // web and legacy left success when this step began; the healthy ones are not stale.
    for name in ["web", "legacy"] {
        let stale: i64 = value_of(&scrape, "flux_status_stale_seconds", &[("name", name)])
            .parse()
            .unwrap();
        assert!(
            (0..=after - changed).contains(&stale),
            "{name} stale for {stale}s, more than the {}s since it changed",
            after - changed
        );
    }
    prometheus.wait_until("web's staleness to grow", |p| {
        p.value(&format!(
            "flux_status_stale_seconds{{{}}} > 0",
            object("web")
        ))
        .is_some()
    });
    assert_eq!(
        by(
            &prometheus.vector(&covered.expr(
                "flux_status_stale_seconds",
                format!("flux_status_stale_seconds{{{exporter_job},name=~\"apps|orphan|tools\"}}")
            )),
            "name"
        ),
        map(&[("apps", "0"), ("orphan", "0"), ("tools", "0")])
    );
    assert_eq!(
        prometheus.vector(&covered.expr(
            "flux_status_failures_total",
            format!("flux_status_failures_total{{{exporter_job}}}")
        )),
        vec![(
            map(&[
                ("cluster", CLUSTER),
                ("instance", &address.to_string()),
                ("job", JOB),
                ("kind", "Kustomization"),
                ("name", "web"),
                ("namespace", NAMESPACE),
                ("reason", "HealthCheckFailed"),
            ]),
            "1".to_string()
        )]
    );
    assert_eq!(
        by(
            &prometheus.vector(&covered.expr(
                "flux_status_suspended",
                format!("flux_status_suspended{{{exporter_job}}}")
            )),
            "name"
        ),
        map(&[
            ("apps", "0"),
            ("legacy", "1"),
            ("orphan", "0"),
            ("tools", "0"),
            ("web", "0")
        ])
    );
    assert_eq!(
        by(
            &prometheus.vector(&format!(
                "flux_status_resources{{{exporter_job},kind=\"Kustomization\"}}"
            )),
            "state"
        ),
        map(&[
            ("failure", "1"),
            ("pending", "0"),
            ("success", "3"),
            ("suspended", "1")
        ])
    );
    assert_eq!(
        prometheus.value(&covered.expr(
            "flux_status_unattributed_resources",
            format!("flux_status_unattributed_resources{{{exporter_job}}}")
        )),
        Some("1".into()),
        "orphan names no commit"
    );
    assert_eq!(
        by(
            &prometheus.vector(&covered.expr(
                "flux_status_undecodable_objects",
                format!("flux_status_undecodable_objects{{{exporter_job}}}")
            )),
            "kind"
        ),
        map(&[
            ("Bucket", "0"),
            ("GitRepository", "0"),
            ("HelmChart", "0"),
            ("HelmRelease", "0"),
            ("Kustomization", "1"),
            ("OCIRepository", "0")
        ])
    );
    assert_eq!(
        prometheus.value(&covered.expr(
            "flux_status_unmatched_repositories",
            format!("flux_status_unmatched_repositories{{{exporter_job}}}")
        )),
        Some("1".into()),
        "gitlab.example.com/ops/tools"
    );

    // Deliveries: 4 successes, the fleet's new commit queued, web's failure; tools' status
    // has nowhere to go, every poll.
    prometheus.wait_for_value(&deliveries("success", "delivered"), "4");
    let delivered = prometheus.vector(&covered.expr(
        "flux_status_commit_status_deliveries_total",
        format!("flux_status_commit_status_deliveries_total{{{exporter_job},forge=\"github\"}}"),
    ));
    let delivered: BTreeMap<(String, String), String> = delivered
        .iter()
        .map(|(l, v)| ((l["state"].clone(), l["outcome"].clone()), v.clone()))
        .collect();
    let key = |s: &str, o: &str| (s.to_string(), o.to_string());
    assert_eq!(
        delivered,
        BTreeMap::from([
            (key("failure", "delivered"), "1".to_string()),
            (key("pending", "delivered"), "1".to_string()),
            (key("success", "delivered"), "4".to_string()),
        ])
    );
    assert_eq!(setup.github.accepted(), 6);
    assert!(
        prometheus
            .value(&format!(
                "flux_status_commit_status_deliveries_total{{{exporter_job},forge=\"none\",state=\"success\",outcome=\"skipped_unmatched\"}} > 0"
            ))
            .is_some()
    );
    assert_eq!(
        prometheus.value(&covered.expr(
            "flux_status_commit_status_delivery_duration_seconds",
            format!(
                "flux_status_commit_status_delivery_duration_seconds_count{{{exporter_job},forge=\"github\"}}"
            )
        )),
        Some("6".into())
    );
    assert_eq!(
        prometheus.value(&format!(
            "flux_status_commit_status_delivery_duration_seconds_bucket{{{exporter_job},forge=\"github\",le=\"+Inf\"}}"
        )),
        Some("6".into())
    );
    assert_eq!(
        prometheus.value(&covered.expr(
            "flux_status_commit_status_pending_retries",
            format!("flux_status_commit_status_pending_retries{{{exporter_job}}}")
        )),
        Some("0".into())
    );
    assert_eq!(
        prometheus.value(&covered.expr(
            "flux_status_forge_rate_limit_remaining",
            format!("flux_status_forge_rate_limit_remaining{{{exporter_job},forge=\"github\"}}")
        )),
        Some((GitHub::BUDGET - 6).to_string())
    );
    // The token is accepted, so the forge's credential is not refused.
    assert_eq!(
        prometheus.value(&covered.expr(
            "flux_status_forge_credential_refused",
            format!("flux_status_forge_credential_refused{{{exporter_job},forge=\"github\"}}")
        )),
        Some("0".into())
    );

    // The ledger: one record per posted (repository, commit, context), as stored on disk.
    prometheus.wait_for_value(
        &covered.expr(
            "flux_status_ledger_entries",
            format!("flux_status_ledger_entries{{{exporter_job}}}"),
        ),
        "5",
    );
    let stored = std::fs::metadata(setup.ledger_path()).unwrap().len();
    prometheus.wait_for_value(
        &covered.expr(
            "flux_status_ledger_bytes",
            format!("flux_status_ledger_bytes{{{exporter_job}}}"),
        ),
        &stored.to_string(),
    );

    // The exporter's own polls and requests.
    let polls = prometheus.vector(&covered.expr(
        "flux_status_polls_total",
        format!("flux_status_polls_total{{{exporter_job}}}"),
    ));
    let polls = by(&polls, "outcome");
    assert_eq!(polls["failure"], "0");
    let successes: u64 = polls["success"].parse().unwrap();
    assert!(successes >= 2, "{polls:?}");
    let last_success: f64 = prometheus
        .value(&covered.expr(
            "flux_status_last_successful_poll_timestamp_seconds",
            format!("flux_status_last_successful_poll_timestamp_seconds{{{exporter_job}}}"),
        ))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        last_success >= changed as f64 && last_success <= now_seconds() as f64 + 1.0,
        "last success at {last_success}, the change at {changed}"
    );
    let durations: u64 = prometheus
        .value(&covered.expr(
            "flux_status_poll_duration_seconds",
            format!("flux_status_poll_duration_seconds_count{{{exporter_job}}}"),
        ))
        .unwrap()
        .parse()
        .unwrap();
    assert!(durations >= 2, "{durations} polls timed");
    assert_eq!(
        prometheus.value(&format!(
            "flux_status_poll_duration_seconds_count{{{exporter_job}}} - on() flux_status_poll_duration_seconds_bucket{{{exporter_job},le=\"+Inf\"}}"
        )),
        Some("0".into())
    );
    let requests = prometheus.vector(&covered.expr(
        "flux_status_kube_requests_total",
        format!("flux_status_kube_requests_total{{{exporter_job},verb=\"list\"}} > 0"),
    ));
    let codes: BTreeSet<(String, String)> = requests
        .iter()
        .map(|(l, _)| (l["resource"].clone(), l["code"].clone()))
        .collect();
    let code = |r: &str, c: &str| (r.to_string(), c.to_string());
    assert_eq!(
        codes,
        BTreeSet::from([
            code("buckets", "404"),
            code("gitrepositories", "200"),
            code("helmcharts", "200"),
            code("helmreleases", "200"),
            code("kustomizations", "200"),
            code("ocirepositories", "200"),
        ]),
        "{requests:?}"
    );
    assert_eq!(
        prometheus
            .vector(&covered.expr(
                "flux_status_kube_request_duration_seconds",
                format!(
                    "flux_status_kube_request_duration_seconds_count{{{exporter_job},verb=\"list\"}} > 0"
                )
            ))
            .len(),
        6
    );
    assert_eq!(
        prometheus.vector(&covered.expr(
            "flux_status_build_info",
            format!("flux_status_build_info{{{exporter_job}}}")
        )),
        vec![(
            map(&[
                ("cluster", CLUSTER),
                ("commit", BUILD_COMMIT),
                ("instance", &address.to_string()),
                ("job", JOB),
                ("namespace", "flux-status-exporter"),
                ("version", VERSION),
            ]),
            "1".to_string()
        )]
    );
    for family in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let expr = covered.expr(family, format!("{family}{{{exporter_job}}} > 0"));
        assert_eq!(prometheus.vector(&expr).len(), 1, "{expr}");
    }
    assert_eq!(
        prometheus
            .vector(&format!("process_cpu_seconds_total{{{exporter_job}}}"))
            .len(),
        1
    );

    // 3. web recovers, then fails again: a second transition into failure.
    setup
        .kube
        .put(kustomization("web", "web", &sha('3')))
        .unwrap();
    prometheus.wait_for_value(&deliveries("success", "delivered"), "5");
    prometheus.wait_for_value(
        &format!(
            "flux_status_resource_state{{{},state=\"success\"}}",
            object("web")
        ),
        "1",
    );
    assert_eq!(
        prometheus.value(&format!(
            "flux_status_failures_total{{{},reason=\"HealthCheckFailed\"}}",
            object("web")
        )),
        Some("1".into()),
        "recovering is not a failure"
    );
    setup
        .kube
        .put(failing(
            kustomization("web", "web", &sha('3')),
            "HealthCheckFailed",
            WEB_FAILURE,
        ))
        .unwrap();
    prometheus.wait_for_value(
        &format!(
            "flux_status_failures_total{{{},reason=\"HealthCheckFailed\"}}",
            object("web")
        ),
        "2",
    );
    prometheus.wait_for_value(&deliveries("failure", "delivered"), "2");

    // 4. GitHub rate-limits us for an hour just as apps applies the fleet's new commit: the
    // success waits for a later poll, and apps no longer drifts.
    setup.github.server.inject(Fault::Respond(
        Reply::message(
            403,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        )
        .header("retry-after", 3600),
    ));
    setup
        .kube
        .put(kustomization("apps", "fleet", &fleet_2()))
        .unwrap();
    prometheus.wait_for_value(
        &format!("flux_status_commit_status_pending_retries{{{exporter_job}}}"),
        "1",
    );
    assert!(
        prometheus
            .value(&format!("{} > 0", deliveries("success", "retry_later")))
            .is_some()
    );
    prometheus.wait_for_value(
        &format!("flux_status_revision_drift{{{}}}", object("apps")),
        "0",
    );
    assert_eq!(
        prometheus.value(&format!(
            "flux_status_revision_drift_seconds{{{}}}",
            object("apps")
        )),
        Some("0".into())
    );
    // Two more posts were accepted (web's success and failure); the refused one is not counted.
    assert_eq!(
        prometheus.value(&format!(
            "flux_status_forge_rate_limit_remaining{{{exporter_job},forge=\"github\"}}"
        )),
        Some((GitHub::BUDGET - 8).to_string())
    );
    assert_eq!(setup.github.accepted(), 8);

    covered.assert_complete();
}
