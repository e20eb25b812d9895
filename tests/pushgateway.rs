//! CronJob mode's metrics: `flux-status-exporter once` against the fake API server and a fake
//! GitHub pushes to a real Pushgateway (`prometheus-pushgateway`), replacing its group
//! `job/<job>/cluster/<cluster>`; counters, failure counts and drift continue from run to run
//! through the file ledger; a push that cannot be made fails the run with exit code 4.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;

use flux_status_exporter::metrics::FAMILIES;
use jiff::Timestamp;
use serde_json::Value;
use support::exporter::{CLUSTER, GitHub, Setup, wait_for};
use support::flux_objects::{NAMESPACE, failing, git_repository, kustomization, sha, undecodable};
use support::prometheus::{Pushgateway, find, free_port, samples, value_of};

const JOB: &str = "flux-status-exporter";

/// The grouping labels every pushed series carries.
const GROUP: [(&str, &str); 3] = [("job", JOB), ("cluster", CLUSTER), ("instance", "")];

fn with_group<'a>(labels: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = GROUP.to_vec();
    all.extend_from_slice(labels);
    all
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "once failed ({}):\n{}",
        output.status,
        stderr(output)
    );
}

/// `apps` healthy at fleet 1 while the fleet is at fleet 2 (the artifact does not say since
/// when), `web` failing, `infra` healthy, `tools` on a host no forge serves, `odd` undecodable.
fn cluster() -> Vec<Value> {
    vec![
        git_repository("fleet", "https://github.com/acme/fleet", &sha('2'), None),
        git_repository("web", "https://github.com/acme/web", &sha('3'), None),
        git_repository("infra", "https://github.com/acme/infra", &sha('4'), None),
        git_repository(
            "tools",
            "https://gitlab.example.com/ops/tools",
            &sha('6'),
            None,
        ),
        kustomization("apps", "fleet", &sha('1')),
        web_failing(),
        kustomization("infra", "infra", &sha('4')),
        kustomization("tools", "tools", &sha('6')),
        undecodable("odd"),
    ]
}

fn web_failing() -> Value {
    failing(
        kustomization("web", "web", &sha('3')),
        "HealthCheckFailed",
        "health check failed after 5m0s",
    )
}

fn pushgateway_config(setup: &Setup, url: &str) -> String {
    setup.write_config(&format!("pushgateway:\n  url: {url}\n"))
}

#[test]
fn once_pushes_every_family_to_the_pushgateway_grouped_by_job_and_cluster() {
    let gateway = Pushgateway::start();
    let setup = Setup::new(cluster());
    let config = pushgateway_config(&setup, &gateway.url());
    assert_succeeded(&setup.once(&config));

    let pushed = gateway.metrics();
    for (family, kind, _) in FAMILIES {
        let name = if *kind == "histogram" {
            format!("{family}_count")
        } else {
            family.to_string()
        };
        assert!(
            !find(&pushed, &name, &GROUP).is_empty(),
            "no {name} with {GROUP:?} on the gateway:\n{pushed}"
        );
    }
    // The exporter's process metrics are not pushed: they would describe a process that has
    // exited (the gateway's own carry no job).
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(find(&pushed, name, &GROUP).is_empty(), "{name}:\n{pushed}");
    }
    // Every flux_status series carries the grouping labels.
    for sample in samples(&pushed) {
        if sample.name.starts_with("flux_status_") {
            for (label, value) in GROUP {
                assert_eq!(
                    sample.labels.get(label).map(String::as_str),
                    Some(value),
                    "{sample:?}"
                );
            }
        }
    }
    // The gateway's own record of the push.
    assert_ne!(value_of(&pushed, "push_time_seconds", &GROUP), "0");
    assert_eq!(value_of(&pushed, "push_failure_time_seconds", &GROUP), "0");
    // A few exact values.
    assert_eq!(
        value_of(
            &pushed,
            "flux_status_polls_total",
            &with_group(&[("outcome", "success")])
        ),
        "1"
    );
    assert_eq!(
        value_of(
            &pushed,
            "flux_status_failures_total",
            &with_group(&[("name", "web"), ("reason", "HealthCheckFailed")])
        ),
        "1"
    );
    assert_eq!(
        value_of(
            &pushed,
            "flux_status_resource_state",
            &with_group(&[("name", "web"), ("namespace", NAMESPACE)])
        ),
        "1"
    );
    assert_eq!(
        find(
            &pushed,
            "flux_status_resource_state",
            &with_group(&[("name", "web")])
        )[0]
        .labels["state"],
        "failure"
    );
    assert_eq!(
        value_of(
            &pushed,
            "flux_status_forge_rate_limit_remaining",
            &with_group(&[("forge", "github")])
        ),
        // apps' success and queued commit, web's failure, infra's success.
        (GitHub::BUDGET - 4).to_string()
    );
    assert_eq!(
        value_of(
            &pushed,
            "flux_status_undecodable_objects",
            &with_group(&[("kind", "Kustomization")])
        ),
        "1"
    );
    assert!(gateway.log().is_empty(), "{}", gateway.log());
}

/// The pushed value of `name` with `labels` (grouping labels added).
fn pushed(gateway: &Pushgateway, name: &str, labels: &[(&str, &str)]) -> String {
    value_of(&gateway.metrics(), name, &with_group(labels))
}

fn delivered(gateway: &Pushgateway, state: &str) -> String {
    pushed(
        gateway,
        "flux_status_commit_status_deliveries_total",
        &[
            ("forge", "github"),
            ("state", state),
            ("outcome", "delivered"),
        ],
    )
}

#[test]
fn each_once_replaces_the_group_while_counters_failures_and_drift_continue_through_the_ledger() {
    let gateway = Pushgateway::start();
    let setup = Setup::new(cluster());
    let config = pushgateway_config(&setup, &gateway.url());

    // Run 1: apps drifts from now on; web's failure is its first.
    let run1_start = Timestamp::now().as_second();
    assert_succeeded(&setup.once(&config));
    let run1_end = Timestamp::now().as_second();
    assert_eq!(
        pushed(
            &gateway,
            "flux_status_polls_total",
            &[("outcome", "success")]
        ),
        "1"
    );
    assert_eq!(delivered(&gateway, "success"), "2");
    assert_eq!(delivered(&gateway, "pending"), "1");
    assert_eq!(delivered(&gateway, "failure"), "1");
    assert_eq!(
        pushed(
            &gateway,
            "flux_status_failures_total",
            &[("name", "web"), ("reason", "HealthCheckFailed")]
        ),
        "1"
    );
    assert_eq!(
        pushed(&gateway, "flux_status_resource_ready", &[("name", "infra")]),
        "1"
    );
    let drift: i64 = pushed(
        &gateway,
        "flux_status_revision_drift_seconds",
        &[("name", "apps")],
    )
    .parse()
    .unwrap();
    assert!((0..=run1_end - run1_start).contains(&drift), "{drift}");

    // Run 2, in a later second: infra is gone, nothing else changed.
    wait_for(
        "the clock to pass the first run's last second",
        || (Timestamp::now().as_second() > run1_end).then_some(()),
        String::new,
    );
    assert!(setup.kube.delete("kustomizations", NAMESPACE, "infra"));
    let run2_start = Timestamp::now().as_second();
    assert_succeeded(&setup.once(&config));
    let run2_end = Timestamp::now().as_second();
    let metrics = gateway.metrics();
    assert!(
        find(&metrics, "flux_status_resource_ready", &[("name", "infra")]).is_empty(),
        "the first push's infra series outlived the second push:\n{metrics}"
    );
    assert_eq!(
        pushed(
            &gateway,
            "flux_status_polls_total",
            &[("outcome", "success")]
        ),
        "2"
    );
    // Nothing new was posted; the counts carry on under the same labels.
    assert_eq!(delivered(&gateway, "success"), "2");
    assert_eq!(delivered(&gateway, "pending"), "1");
    assert_eq!(delivered(&gateway, "failure"), "1");
    assert_eq!(
        find(
            &metrics,
            "flux_status_commit_status_deliveries_total",
            &with_group(&[("forge", "github")])
        )
        .len(),
        3,
        "{metrics}"
    );
    assert_eq!(
        pushed(
            &gateway,
            "flux_status_failures_total",
            &[("name", "web"), ("reason", "HealthCheckFailed")]
        ),
        "1",
        "still the same failure"
    );
    // Drift is counted from when the first run saw it, not from this run.
    let drift: i64 = pushed(
        &gateway,
        "flux_status_revision_drift_seconds",
        &[("name", "apps")],
    )
    .parse()
    .unwrap();
    assert!(
        drift >= 1 && (run2_start - run1_end..=run2_end - run1_start).contains(&drift),
        "drift of {drift}s after runs at {run1_start}-{run1_end} and {run2_start}-{run2_end}"
    );

    // Run 3: web recovers. Run 4: web fails again, a second transition into failure.
    setup
        .kube
        .put(kustomization("web", "web", &sha('3')))
        .unwrap();
    assert_succeeded(&setup.once(&config));
    assert_eq!(delivered(&gateway, "success"), "3");
    assert_eq!(
        pushed(
            &gateway,
            "flux_status_failures_total",
            &[("name", "web"), ("reason", "HealthCheckFailed")]
        ),
        "1"
    );
    setup.kube.put(web_failing()).unwrap();
    assert_succeeded(&setup.once(&config));
    assert_eq!(
        pushed(
            &gateway,
            "flux_status_failures_total",
            &[("name", "web"), ("reason", "HealthCheckFailed")]
        ),
        "2"
    );
    assert_eq!(delivered(&gateway, "failure"), "2");
    assert_eq!(
        pushed(
            &gateway,
            "flux_status_polls_total",
            &[("outcome", "success")]
        ),
        "4"
    );
    // One list of Kustomizations per run.
    assert_eq!(
        pushed(
            &gateway,
            "flux_status_kube_requests_total",
            &[
                ("resource", "kustomizations"),
                ("verb", "list"),
                ("code", "200")
            ]
        ),
        "4"
    );
}

#[test]
fn a_push_to_a_pushgateway_that_is_down_makes_once_exit_4_with_a_clear_error() {
    let setup = Setup::new(cluster());
    let url = format!("http://127.0.0.1:{}", free_port());
    let config = pushgateway_config(&setup, &url);
    let output = setup.once(&config);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(4), "{log}");
    let last = log.lines().last().unwrap_or_default();
    let expected = format!("error: pushing metrics to {url}/metrics/job/{JOB}/cluster/{CLUSTER}: ");
    assert!(last.starts_with(&expected), "{last}");
    assert!(last.contains("Connection refused"), "{last}");
    // The poll itself was done and saved: the next run continues from it.
    assert!(std::path::Path::new(&setup.ledger_path()).exists());
}
