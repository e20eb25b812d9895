//! `flux-status-exporter run`, the Deployment mode, as the real binary: ticks on the schedule
//! from a snapshot re-read every tick, SIGHUP reloads, SIGTERM and a second signal, SIGKILL in
//! the middle of a tick, and a schedule faster than a tick can run.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;
use crate::once_cli::{INFRA, Setup};
use crate::process::{Exporter, PATIENCE, http_get};
use crate::support::fake_kube::{FakeKube, Fault, FaultAction};

fn run<'a>(config: &'a str, snapshot: &'a str) -> Vec<&'a str> {
    vec![
        "--config",
        config,
        "run",
        "--snapshot",
        snapshot,
        "--listen",
        "127.0.0.1:0",
    ]
}

/// Waits until the fake GitHub has received `n` requests in all.
async fn github_requests(s: &Setup, n: usize) {
    wait_for_async(&format!("{n} GitHub requests"), PATIENCE, || {
        s.github.requests().len() >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ticks_on_its_interval_rereads_the_snapshot_and_posts_each_change_once() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&[fleet(A), APPS.reconciling(A, None, "Progressing")]);
    let mut exporter = Exporter::start(&run(&config, &snapshot));
    let address = exporter.address().await;
    github_requests(&s, 1).await;

    s.snapshot(&[fleet(A), APPS.ready(A)]);
    github_requests(&s, 2).await;
    s.snapshot(&[fleet(B), APPS.ready(A)]);
    github_requests(&s, 3).await;
    // A few more ticks of the same snapshot post nothing.
    let ticks = exporter.count("poll finished");
    exporter.wait_logged("poll finished", ticks + 2).await;
    assert_eq!(
        brief(&s.posts()),
        expect(&[
            ("A", "pending", says::progressing()),
            ("A", "success", says::applied(A)),
            ("B", "pending", says::queued()),
        ])
    );

    let (code, metrics) = http_get(address, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("flux_status_commit_status_deliveries_total{forge=\"github\",outcome=\"delivered\",state=\"success\",cluster=\"test\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flux_status_ledger_entries{cluster=\"test\"} 2"),
        "{metrics}"
    );
    let (code, status) = http_get(address, "/status");
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["ledger"]["backend"], "file", "{status}");
    assert_eq!(http_get(address, "/readyz").0, 200);
    assert!(
        !exporter.stderr().contains(GITHUB_TOKEN),
        "no credential in the log"
    );

    exporter.signal("TERM");
    assert_eq!(exporter.exited().await.code(), Some(0));
    assert_eq!(
        ledger_rows(&s.ledger()),
        [
            row(
                "github.com/acme/fleet",
                "A",
                &context(NAMESPACE, "apps"),
                "success",
                "ReconciliationSucceeded"
            ),
            row(
                "github.com/acme/fleet",
                "B",
                &context(NAMESPACE, "apps"),
                "pending",
                "Queued"
            ),
        ]
    );

    // Restarted with nothing to do: it posts and writes nothing, and reports the ledger's size
    // from the start.
    let size = std::fs::metadata(s.path("ledger.json")).unwrap().len();
    let mut restarted = Exporter::start(&run(&config, &snapshot));
    let address = restarted.address().await;
    restarted.wait_logged("poll finished", 1).await;
    let (_, metrics) = http_get(address, "/metrics");
    assert!(
        metrics.contains("flux_status_ledger_entries{cluster=\"test\"} 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "flux_status_ledger_bytes{{cluster=\"test\"}} {size}\n"
        )),
        "{metrics}"
    );
    restarted.signal("TERM");
    assert_eq!(restarted.exited().await.code(), Some(0));
    assert_eq!(s.github.requests().len(), 3);
    assert_eq!(
        std::fs::metadata(s.path("ledger.json")).unwrap().len(),
        size
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_valid_change_and_refuses_an_invalid_or_restart_only_one_while_running() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&[fleet(A), APPS.reconciling(A, None, "Progressing")]);
    let mut exporter = Exporter::start(&run(&config, &snapshot));
    github_requests(&s, 1).await;

    // A valid change: a new description template, and how stale /readyz may get.
    s.config(
        "statuses: {description: \"{state} on {cluster}: {summary}\"}\nhttp: {readyMaxAgePeriods: 5}\n",
    );
    exporter.signal("HUP");
    exporter.wait_logged("configuration reloaded", 1).await;
    s.snapshot(&[fleet(A), APPS.ready(A)]);
    github_requests(&s, 2).await;
    assert_eq!(
        s.posts()[1].description,
        format!("success on test: {}", says::applied(A))
    );

    // Invalid YAML: refused, the running configuration stays.
    std::fs::write(&config, "cluster: [test\n").unwrap();
    exporter.signal("HUP");
    exporter
        .wait_logged("configuration not reloaded, keeping the running one: ", 1)
        .await;
    // A change that needs a restart: refused too, naming the field.
    s.config("cluster: other\n");
    exporter.signal("HUP");
    exporter
        .wait_logged(
            "configuration not reloaded, keeping the running one: changing cluster needs a restart",
            1,
        )
        .await;
    assert!(exporter.running());
    assert_eq!(exporter.count("configuration not reloaded"), 2);

    s.snapshot(&[fleet(B), APPS.ready(A)]);
    github_requests(&s, 3).await;
    let last = &s.posts()[2];
    assert_eq!(
        (last.commit.as_str(), last.context.as_str()),
        ("B", context(NAMESPACE, "apps").as_str()),
        "still cluster `test`"
    );
    assert_eq!(
        last.description,
        format!("pending on test: {}", says::queued())
    );
    exporter.signal("TERM");
    assert_eq!(exporter.exited().await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_tick_lets_the_delivery_in_flight_finish_saves_the_ledger_and_exits_0() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&[fleet(A), APPS.ready(A), INFRA.ready(A)]);
    s.github.set_latency(Duration::from_secs(2));
    let mut exporter = Exporter::start(&run(&config, &snapshot));
    github_requests(&s, 1).await;
    exporter.signal("TERM");
    let status = exporter.exited().await;
    let stderr = exporter.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stopping: letting in-flight deliveries finish"),
        "{stderr}"
    );
    assert_eq!(s.github.requests().len(), 1, "nothing new is started");
    assert_eq!(
        ledger_rows(&s.ledger()),
        [row(
            "github.com/acme/fleet",
            "A",
            &context(NAMESPACE, "apps"),
            "success",
            "ReconciliationSucceeded"
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_while_draining_exits_at_once_with_130() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&[fleet(A), APPS.ready(A)]);
    s.github.set_latency(Duration::from_secs(3600));
    let mut exporter = Exporter::start(&run(&config, &snapshot));
    github_requests(&s, 1).await;
    exporter.signal("TERM");
    exporter
        .wait_logged("stopping: letting in-flight deliveries finish", 1)
        .await;
    exporter.signal("INT");
    let status = exporter.exited().await;
    let stderr = exporter.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("error: interrupted by a second signal; exiting without waiting")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_in_the_middle_of_a_tick_a_restart_delivers_every_change_and_repeats_only_unsaved_ones()
 {
    let s = Setup::start_in_memory().await;
    let config = s.config("");
    // Eight Kustomizations of acme/fleet at A: eight statuses, delivered one at a time.
    let names = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
    let mut objects = vec![fleet(A)];
    for name in names {
        let ks = Ks {
            namespace: NAMESPACE,
            name,
            source: "fleet",
        };
        objects.push(ks.ready(A));
    }
    let snapshot = s.snapshot(&objects);
    s.github.set_latency(Duration::from_millis(300));
    let mut exporter = Exporter::start(&run(&config, &snapshot));
    // Killed with the fifth delivery in flight.
    github_requests(&s, 5).await;
    exporter.signal("KILL");
    exporter.exited().await;
    let before: Vec<String> = s.posts().iter().map(|p| p.context.clone()).collect();
    let saved: BTreeSet<String> = if s.path("ledger.json").exists() {
        s.ledger()
            .statuses()
            .map(|(k, _)| k.context.clone())
            .collect()
    } else {
        BTreeSet::new()
    };
    assert!(before.len() >= 5 && before.len() < 8, "{before:?}");
    assert!(
        saved.iter().all(|c| before.contains(c)),
        "only delivered statuses are recorded"
    );

    s.github.set_latency(Duration::ZERO);
    let mut restarted = Exporter::start(&run(&config, &snapshot));
    restarted.wait_logged("poll finished", 1).await;
    restarted.signal("TERM");
    assert_eq!(restarted.exited().await.code(), Some(0));

    let after: Vec<String> = s.posts()[before.len()..]
        .iter()
        .map(|p| p.context.clone())
        .collect();
    let all: BTreeSet<String> = names.iter().map(|n| context(NAMESPACE, n)).collect();
    // Every status is delivered, and after the restart only those not saved are sent.
    let expected_after: BTreeSet<String> = all.difference(&saved).cloned().collect();
    assert_eq!(
        after.iter().cloned().collect::<BTreeSet<_>>(),
        expected_after
    );
    assert_eq!(
        after.len(),
        expected_after.len(),
        "none sent twice after the restart"
    );
    // The repeats are the deliveries the ledger had not recorded when the process died: the
    // one in flight, and at most one whose save had not finished.
    let repeated: Vec<&String> = after.iter().filter(|c| before.contains(c)).collect();
    assert!(
        repeated.len() <= 2,
        "repeated: {repeated:?}, saved: {saved:?}"
    );
    assert_eq!(
        s.ledger().statuses().count(),
        8,
        "the ledger has every status"
    );
    assert!(
        s.ledger()
            .statuses()
            .all(|(_, p)| p.state.as_str() == "success")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_faster_than_a_tick_warns_skips_and_counts_the_skipped_polls() {
    let s = Setup::start().await;
    let kube = FakeKube::start();
    kube.put(fleet(A)).unwrap();
    kube.put(APPS.ready(A)).unwrap();
    // Every list of Kustomizations takes 2.5 s: a tick outlasts the 1 s schedule.
    kube.inject(Fault {
        path: "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations".into(),
        action: FaultAction::Delay(Duration::from_millis(2500)),
        times: None,
    });
    let kubeconfig = kube.write_kubeconfig(s.dir.path());
    let config = s.config("ledger: {backend: memory}\n");
    let mut exporter = Exporter::start(&[
        "--config",
        &config,
        "run",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let address = exporter.address().await;
    exporter
        .wait_logged(
            "the last poll outlasted its slot; skipped scheduled polls (the schedule may be too frequent)",
            1,
        )
        .await;
    let (_, metrics) = http_get(address, "/metrics");
    let skipped: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("flux_status_polls_total{outcome=\"skipped\",cluster=\"test\"} ")
        })
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(skipped >= 1, "{metrics}");
    exporter.signal("TERM");
    assert_eq!(exporter.exited().await.code(), Some(0));
    assert_eq!(s.github.requests().len(), 1);
}

/// A fake API server that never finishes listing Kustomizations (the exporter would wait for
/// it for ten minutes), and a configuration whose shutdown grace period is one second.
fn stuck_cluster(s: &Setup) -> (FakeKube, String, String) {
    let kube = FakeKube::start();
    kube.put(fleet(A)).unwrap();
    kube.put(APPS.ready(A)).unwrap();
    kube.inject(Fault {
        path: "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations".into(),
        action: FaultAction::Delay(Duration::from_secs(3600)),
        times: None,
    });
    let kubeconfig = kube.write_kubeconfig(s.dir.path());
    let config = s.config("kube: {requestTimeout: 10m}\n");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("shutdownGracePeriod: 10s", "shutdownGracePeriod: 1s"),
    )
    .unwrap();
    (kube, kubeconfig.display().to_string(), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_tick_reads_a_stuck_api_server_still_exits_0_after_the_grace_period() {
    let s = Setup::start().await;
    let (kube, kubeconfig, config) = stuck_cluster(&s);
    let path = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";
    let mut exporter = Exporter::start(&[
        "--config",
        &config,
        "run",
        "--kubeconfig",
        &kubeconfig,
        "--listen",
        "127.0.0.1:0",
    ]);
    wait_for_async("the list of Kustomizations", PATIENCE, || {
        !kube.requests_to(path).is_empty()
    })
    .await;
    exporter.signal("TERM");
    let status = exporter.exited().await;
    let stderr = exporter.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the poll did not finish within the shutdown grace period; abandoning it"),
        "{stderr}"
    );
    assert_eq!(s.github.requests(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_once_tick_reads_a_stuck_api_server_exits_1_after_the_grace_period() {
    let s = Setup::start().await;
    let (kube, kubeconfig, config) = stuck_cluster(&s);
    let path = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";
    let mut exporter = Exporter::start(&["--config", &config, "once", "--kubeconfig", &kubeconfig]);
    wait_for_async("the list of Kustomizations", PATIENCE, || {
        !kube.requests_to(path).is_empty()
    })
    .await;
    exporter.signal("TERM");
    let status = exporter.exited().await;
    let stderr = exporter.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("error: stopped before the poll finished; what was delivered is saved")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_leader_election_post_once_and_the_survivor_takes_over_on_sigterm() {
    let s = Setup::start().await;
    let kube = FakeKube::start();
    kube.put(fleet(A)).unwrap();
    kube.put(APPS.ready(A)).unwrap();
    let kubeconfig = kube.write_kubeconfig(s.dir.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    let config = s.config(
        "ledger: {backend: configmap}\nleaderElection: {enabled: true, leaseDuration: 2s}\n",
    );
    let args = [
        "--config",
        &config,
        "run",
        "--kubeconfig",
        kubeconfig,
        "--listen",
        "127.0.0.1:0",
    ];
    let mut first = Exporter::start(&args);
    github_requests(&s, 1).await;
    first.wait_logged("became the leader", 1).await;
    let mut second = Exporter::start(&args);
    second.wait_logged("leader=false", 2).await;

    kube.put(fleet(B)).unwrap();
    github_requests(&s, 2).await;
    second.wait_logged("leader=false", 4).await;
    assert_eq!(
        second.count("status delivered"),
        0,
        "a follower posts nothing"
    );

    first.signal("TERM");
    assert_eq!(first.exited().await.code(), Some(0));
    second.wait_logged("became the leader", 1).await;
    second.wait_logged("leader=true", 2).await;
    kube.put(APPS.reconciling(B, Some(A), "Progressing"))
        .unwrap();
    github_requests(&s, 3).await;
    second.wait_logged("leader=true", 4).await;
    second.signal("TERM");
    assert_eq!(second.exited().await.code(), Some(0));
    assert_eq!(
        brief(&s.posts()),
        expect(&[
            ("A", "success", says::applied(A)),
            ("B", "pending", says::queued()),
            ("B", "pending", says::progressing()),
        ])
    );
    let lease = kube
        .object("leases", NAMESPACE, "flux-status-exporter")
        .unwrap();
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "released: {lease}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ticks_on_a_cron_schedule_with_seconds() {
    let s = Setup::start().await;
    let config = s.config("schedule: \"*/1 * * * * *\"\n");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("schedule: 1s\n", ""),
    )
    .unwrap();
    let snapshot = s.snapshot(&[fleet(A), APPS.reconciling(A, None, "Progressing")]);
    let mut exporter = Exporter::start(&run(&config, &snapshot));
    github_requests(&s, 1).await;
    s.snapshot(&[fleet(A), APPS.ready(A)]);
    github_requests(&s, 2).await;
    exporter.signal("TERM");
    assert_eq!(exporter.exited().await.code(), Some(0));
    assert_eq!(
        brief(&s.posts()),
        expect(&[
            ("A", "pending", says::progressing()),
            ("A", "success", says::applied(A)),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_read_watch_reads_each_kind_once_then_posts_from_watch_events() {
    let s = Setup::start().await;
    let kube = FakeKube::start();
    kube.put(fleet(A)).unwrap();
    kube.put(APPS.ready(A)).unwrap();
    let kubeconfig = kube.write_kubeconfig(s.dir.path());
    let config = s.config("kube: {read: watch}\n");
    let mut exporter = Exporter::start(&[
        "--config",
        &config,
        "run",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    github_requests(&s, 1).await;
    kube.put(fleet(B)).unwrap();
    github_requests(&s, 2).await;
    kube.put(APPS.reconciling(B, Some(A), "Progressing"))
        .unwrap();
    github_requests(&s, 3).await;
    exporter.wait_logged("poll finished", 4).await;
    exporter.signal("TERM");
    assert_eq!(exporter.exited().await.code(), Some(0));
    assert_eq!(
        brief(&s.posts()),
        expect(&[
            ("A", "success", says::applied(A)),
            ("B", "pending", says::queued()),
            ("B", "pending", says::progressing()),
        ])
    );
    let kustomizations = kube.requests_to("/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations");
    // One streaming list (a watch with the initial state) however many ticks; nothing listed.
    let lists = kustomizations.iter().filter(|r| !r.is_watch()).count();
    assert_eq!(lists, 0, "{kustomizations:?}");
    let streams = kustomizations
        .iter()
        .filter(|r| r.param("sendInitialEvents") == Some("true"))
        .count();
    assert_eq!(streams, 1, "{kustomizations:?}");
}
