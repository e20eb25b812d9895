//! `flux-status-exporter once`, the CronJob mode, as the real binary: one tick, then an exit
//! code that says what happened (0 done, 1 cluster unreadable or ledger not saved, 2 bad input,
//! 3 deliveries left for the next run, 4 metrics not pushed, 130 interrupted).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use flux_status_exporter::ledger::{Ledger, decode};
use serde_json::Value;

use crate::common::*;
use crate::process::{Exporter, run_to_end, write_snapshot};
use crate::support::fake_forges::github::GitHubFake;
use crate::support::fake_forges::{FakeServer, ForgeLogic, Recorded, Reply, SkipClock};
use crate::support::fake_kube::FakeKube;

/// `flux-system/infra`, a second Kustomization of `acme/fleet`.
pub const INFRA: Ks = Ks {
    namespace: NAMESPACE,
    name: "infra",
    source: "fleet",
};

/// A fake GitHub, a scratch directory with a configuration, a snapshot and a file ledger.
pub struct Setup {
    pub github: FakeServer<GitHubFake>,
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub async fn start() -> Setup {
        Setup::start_in(tempfile::tempdir().unwrap()).await
    }

    /// The same with the scratch directory in memory (tmpfs) where the machine has one: a test
    /// of what the ledger records, not of how fast a loaded disk syncs. Ledger saves are spaced
    /// by nine times the last one's duration, so a disk stalled by other tests stretches the
    /// checkpoint gap and the crash bound with it.
    pub async fn start_in_memory() -> Setup {
        let dir = match tempfile::tempdir_in("/dev/shm") {
            Ok(dir) => dir,
            Err(_) => tempfile::tempdir().unwrap(),
        };
        Setup::start_in(dir).await
    }

    async fn start_in(dir: tempfile::TempDir) -> Setup {
        let github = FakeServer::start(GitHubFake::new(GITHUB_TOKEN), SkipClock::new()).await;
        std::fs::write(dir.path().join("github-token"), GITHUB_TOKEN).unwrap();
        Setup { github, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `config.yaml` (GitHub only, a file ledger, `extra` at the top level) and returns
    /// its path.
    pub fn config(&self, extra: &str) -> String {
        let cluster = if extra.contains("cluster:") {
            ""
        } else {
            "cluster: test\n"
        };
        let yaml = format!(
            "{cluster}schedule: 1s\nshutdownGracePeriod: 10s\nforges:\n\
             - type: github\n  apiUrl: {}\n  repositories: [\"acme/*\"]\n  rateLimit: {{perMinute: 6000, perHour: 100000}}\n  requestTimeout: 20s\n  credentials: {{token: {{file: {}}}}}\n{extra}",
            self.github.url(),
            self.path("github-token").display(),
        );
        let yaml = if extra.contains("ledger:") {
            yaml
        } else {
            format!(
                "{yaml}ledger: {{backend: file, path: {}}}\n",
                self.path("ledger.json").display()
            )
        };
        let path = self.path("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        path.display().to_string()
    }

    /// Writes the snapshot and returns its path.
    pub fn snapshot(&self, objects: &[Value]) -> String {
        let path = self.path("snapshot.json");
        write_snapshot(&path, objects);
        path.display().to_string()
    }

    pub fn ledger(&self) -> Ledger {
        decode(&std::fs::read(self.path("ledger.json")).unwrap(), "test").unwrap()
    }

    pub fn posts(&self) -> Vec<Post> {
        github_posts(&self.github.requests())
    }
}

/// Two GitHub statuses and one on a host no forge serves.
pub fn cluster() -> Vec<Value> {
    vec![
        fleet(A),
        APPS.ready(A),
        INFRA.reconciling(A, None, "Progressing"),
        podinfo_repo(P1),
        PODINFO.ready(P1),
    ]
}

fn once<'a>(config: &'a str, snapshot: &'a str) -> Vec<&'a str> {
    vec!["--config", config, "once", "--snapshot", snapshot]
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_main_command_runs_the_whole_job_on_the_example_without_cluster_or_forge() {
    let (code, stdout, stderr) = run_to_end(&[
        "--config",
        "config.yaml",
        "once",
        "--snapshot",
        "examples/cluster-snapshot.yaml",
        "--dry-run",
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("dry run from a snapshot: the ledger is kept in memory only"),
        "{stderr}"
    );
    let would: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("dry run: would post this status"))
        .collect();
    assert_eq!(would.len(), 5, "{stderr}");
    assert!(
        would
            .iter()
            .all(|l| l.contains("method=POST url=https://api.github.com/repos/acme/")),
        "{would:?}"
    );
    // Eight statuses on four hosts without a forge: one line per host, each counted as skipped.
    let unmatched: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("no forge configured for this host"))
        .collect();
    assert_eq!(unmatched.len(), 4, "{stderr}");
    let hosts: std::collections::BTreeSet<&str> = unmatched
        .iter()
        .filter_map(|l| l.split("host=").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(hosts.len(), 4, "one line per host: {unmatched:?}");
    let finished = stderr
        .lines()
        .find(|l| l.contains("poll finished"))
        .unwrap();
    assert!(
        finished.contains("planned=13 delivered=5 retry_later=0 permanent_errors=0 skipped=8"),
        "{finished}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_3_when_deliveries_are_left_and_the_next_run_delivers_them_once() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&cluster());
    s.github.set_outage(Some(
        Reply::message(503, "Service Unavailable").header("retry-after", 600),
    ));
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        last_line(&stderr),
        "error: 2 status update(s) could not be delivered and are left for the next run"
    );
    assert!(s.ledger().is_empty(), "nothing was delivered");
    assert!(!stderr.contains(GITHUB_TOKEN), "no credential in the log");

    s.github.set_outage(None);
    let before = s.github.requests().len();
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let apps = context(NAMESPACE, "apps");
    let infra = context(NAMESPACE, "infra");
    assert_eq!(
        github_posts(&s.github.requests()[before..])
            .iter()
            .map(|p| (p.commit.as_str(), p.state.as_str(), p.context.as_str()))
            .collect::<Vec<_>>(),
        [
            ("A", "success", apps.as_str()),
            ("A", "pending", infra.as_str())
        ]
    );
    assert_eq!(
        ledger_rows(&s.ledger()),
        [
            row(
                "github.com/acme/fleet",
                "A",
                &apps,
                "success",
                "ReconciliationSucceeded"
            ),
            row(
                "github.com/acme/fleet",
                "A",
                &infra,
                "pending",
                "Progressing"
            ),
        ]
    );

    // Nothing changed: the third run posts nothing, and the counters carry on across runs.
    let before = s.github.requests().len();
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(s.github.requests().len(), before);
    let counters = s.ledger().counters().to_vec();
    let polls = |outcome: &str| {
        counters
            .iter()
            .find(|(n, l, _)| n == "flux_status_polls_total" && l == &[outcome.to_string()])
            .map(|(_, _, v)| *v)
    };
    assert_eq!(polls("success"), Some(3), "{counters:?}");
    let deliveries = |outcome: &str| -> u64 {
        counters
            .iter()
            .filter(|(n, l, _)| {
                n == "flux_status_commit_status_deliveries_total" && l.last().unwrap() == outcome
            })
            .map(|(_, _, v)| *v)
            .sum()
    };
    assert_eq!(
        (deliveries("delivered"), deliveries("retry_later")),
        (2, 2),
        "{counters:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_0_when_failing_flux_objects_are_reported_and_posts_nothing_twice() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&[
        fleet(B),
        APPS.failed(B, Some(A), "BuildFailed", "kustomize build failed"),
    ]);
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(
        code,
        Some(0),
        "a failing Flux object is data, not an error: {stderr}"
    );
    assert_eq!(
        brief(&s.posts()),
        expect(&[(
            "B",
            "failure",
            "build failed: kustomize build failed".into()
        )])
    );
    let (code, _, _) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(0));
    assert_eq!(s.github.requests().len(), 1);
    // The failure is counted once, however many runs see it.
    let ledger = s.ledger();
    let (_, record) = ledger.resources().find(|(r, _)| r.name == "apps").unwrap();
    assert_eq!(
        record
            .failures
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("BuildFailed", 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_1_when_the_cluster_cannot_be_read_and_posts_and_writes_nothing() {
    let s = Setup::start().await;
    let kube = FakeKube::start();
    for object in cluster() {
        kube.put(object).unwrap();
    }
    kube.fail(
        "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
        403,
        None,
    );
    let kubeconfig = kube.write_kubeconfig(s.dir.path());
    let config = s.config("ledger: {backend: configmap}\n");
    let (code, _, stderr) = run_to_end(&[
        "--config",
        &config,
        "once",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    let last = last_line(&stderr);
    assert!(
        last.starts_with("error: the cluster could not be read: ")
            && last.contains("cannot list resource \"kustomizations\" in API group \"kustomize.toolkit.fluxcd.io\""),
        "{last}"
    );
    assert_eq!(s.github.requests(), []);
    assert!(
        kube.requests()
            .iter()
            .all(|r| !r.path.contains("/configmaps") || r.method == "GET"),
        "the ledger is not written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_1_when_the_ledger_cannot_be_saved() {
    let s = Setup::start().await;
    let missing = s.path("missing").join("ledger.json");
    let config = s.config(&format!(
        "ledger: {{backend: file, path: {}}}\n",
        missing.display()
    ));
    let snapshot = s.snapshot(&cluster());
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        last_line(&stderr),
        format!(
            "error: the ledger could not be saved: ledger {}: cannot write: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_1_posting_nothing_when_the_ledger_cannot_be_read() {
    let s = Setup::start().await;
    // A directory where the ledger file should be: it exists but cannot be read as a file.
    let unreadable = s.path("ledger.json");
    std::fs::create_dir(&unreadable).unwrap();
    let config = s.config(&format!(
        "ledger: {{backend: file, path: {}}}\n",
        unreadable.display()
    ));
    let snapshot = s.snapshot(&cluster());
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        last_line(&stderr),
        format!(
            "error: ledger {}: cannot read: Is a directory (os error 21)",
            unreadable.display()
        )
    );
    assert_eq!(
        s.github.requests(),
        [],
        "nothing is posted without the ledger"
    );
    assert!(
        unreadable.is_dir(),
        "the unreadable ledger is left as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_2_on_a_bad_configuration_before_doing_anything() {
    let s = Setup::start().await;
    let config = s.path("bad.yaml");
    std::fs::write(&config, "cluster: test\nschedul: 1m\n").unwrap();
    let snapshot = s.snapshot(&cluster());
    let (code, _, stderr) = run_to_end(&once(config.to_str().unwrap(), &snapshot)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        last_line(&stderr).starts_with(&format!(
            "error: {}:2:1: schedul: unknown field `schedul`",
            config.display()
        )),
        "{stderr}"
    );
    assert_eq!(s.github.requests(), []);
}

/// A Pushgateway that accepts every push.
struct Pushgateway;

impl ForgeLogic for Pushgateway {
    fn handle(
        &mut self,
        _request: &Recorded,
        _now: SystemTime,
        _mono: std::time::Instant,
    ) -> Reply {
        Reply::empty(200)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_pushes_its_metrics_and_exits_4_when_the_pushgateway_cannot_be_reached() {
    let s = Setup::start().await;
    let snapshot = s.snapshot(&cluster());
    let gateway = FakeServer::start(Pushgateway, SkipClock::new()).await;
    let config = s.config(&format!("pushgateway: {{url: {}}}\n", gateway.url()));
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let pushes = gateway.requests();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].method, "PUT");
    assert_eq!(
        pushes[0].path,
        "/metrics/job/flux-status-exporter/cluster/test"
    );
    assert!(
        pushes[0]
            .raw_body
            .contains("flux_status_polls_total{outcome=\"success\",cluster=\"test\"} 1"),
        "{}",
        pushes[0].raw_body
    );

    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = s.config(&format!("pushgateway: {{url: {url}}}\n"));
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        last_line(&stderr).starts_with(&format!(
            "error: pushing metrics to {url}/metrics/job/flux-status-exporter/cluster/test: "
        )),
        "{stderr}"
    );
    assert_eq!(s.github.requests().len(), 2, "the tick itself completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_once_tick_lets_the_delivery_in_flight_finish_and_saves_the_ledger() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&cluster());
    s.github.set_latency(Duration::from_secs(2));
    let mut exporter = Exporter::start(&once(&config, &snapshot));
    wait_for_async("a delivery in flight", PATIENCE_SHORT, || {
        s.github.requests().len() == 1
    })
    .await;
    exporter.signal("TERM");
    let status = exporter.exited().await;
    let stderr = exporter.stderr();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert_eq!(s.github.requests().len(), 1, "nothing new is started");
    assert!(
        stderr.contains("stopping: letting in-flight deliveries finish"),
        "{stderr}"
    );
    assert_eq!(
        ledger_rows(&s.ledger()),
        [row(
            "github.com/acme/fleet",
            "A",
            &context(NAMESPACE, "apps"),
            "success",
            "ReconciliationSucceeded"
        )],
        "the delivery in flight finished and was saved"
    );
}

const PATIENCE_SHORT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_2_as_plan_does_when_the_snapshot_is_missing() {
    let s = Setup::start().await;
    let config = s.config("");
    let missing = s.path("missing.yaml");
    let (code, _, stderr) = run_to_end(&once(&config, missing.to_str().unwrap())).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        last_line(&stderr),
        format!(
            "error: {}: cannot read: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert_eq!(s.github.requests(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_5_when_the_forge_refuses_statuses_for_good() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&cluster());
    s.github
        .set_outage(Some(Reply::message(422, "Validation Failed")));
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(5), "{stderr}");
    assert_eq!(
        last_line(&stderr),
        "error: the forge refused 2 status update(s) for good; they are not sent again until their state changes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_502_is_a_warning_naming_forge_repository_and_attempt_and_the_delivery_no_error()
{
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&cluster());
    s.github
        .inject(crate::support::fake_forges::Fault::Respond(Reply::message(
            502,
            "Bad Gateway",
        )));
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let retried: Vec<&str> = stderr.lines().filter(|l| l.contains("retrying")).collect();
    assert_eq!(retried.len(), 1, "{stderr}");
    for part in [
        " WARN ",
        "github answered 502: Bad Gateway; retrying",
        "forge=github",
        "repository=acme/fleet",
        "attempt=1",
    ] {
        assert!(retried[0].contains(part), "{part} in {}", retried[0]);
    }
    assert!(
        !stderr.lines().any(|l| l.contains(" ERROR ")),
        "nothing failed for good: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_3_and_records_nothing_when_the_forge_refuses_the_token_then_delivers_after_rotation()
 {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&cluster());
    std::fs::write(s.path("github-token"), "ghp_RevokedLongAgo000000").unwrap();
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(s.github.requests().len(), 2, "{stderr}");
    let refused: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(refused.len(), 1, "said once: {stderr}");
    assert!(
        refused[0].contains(
            "github answered 401: Bad credentials; the credential is refused and not used again for 60s"
        ),
        "{}",
        refused[0]
    );
    assert!(!stderr.contains("ghp_RevokedLongAgo000000"), "{stderr}");

    std::fs::write(s.path("github-token"), GITHUB_TOKEN).unwrap();
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        s.github.requests().len(),
        4,
        "both statuses, none recorded as posted before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_o_wide_lists_each_flux_object_with_its_revision_readiness_and_what_was_posted() {
    let s = Setup::start().await;
    let config = s.config("");
    let snapshot = s.snapshot(&cluster());
    let (code, _, stderr) = run_to_end(&once(&config, &snapshot)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = run_to_end(&[
        "--config",
        &config,
        "plan",
        "--snapshot",
        &snapshot,
        "-o",
        "wide",
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().take(6).collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "KIND",
            "NAMESPACE",
            "NAME",
            "REVISION",
            "READY",
            "STATUS-POSTED"
        ]
    );
    let apps = rows
        .iter()
        .find(|r| r[2] == "apps")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        apps[..5],
        [
            "Kustomization",
            NAMESPACE,
            "apps",
            &format!("main@sha1:{A}"),
            "True"
        ]
    );
    assert_eq!(apps.get(5).copied(), Some("success"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("apps ") && l.contains(&format!("success at {}", &A[..7]))),
        "{stdout}"
    );
}
