//! Every query of the dashboards and the alert rules, run against a real Prometheus that has
//! scraped the exporter, returns data: the metric names, labels and types they assume are the
//! ones the exporter serves, and Prometheus loads and evaluates the rule file without error.
//!
//! The scrape target comes from [`scrape_target`]: today an in-process `/metrics` server whose
//! metrics are those of the example cluster (`examples/cluster-snapshot.yaml`, assessed and
//! observed by the ledger, plus a poll, Kubernetes requests and deliveries of every outcome).
//! When `flux-status-exporter run` exists, the same function can start it against the fake
//! API server instead; nothing else here changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use flux_status_exporter::assess::assess;
use flux_status_exporter::cli::{BUILD_COMMIT, VERSION, read_snapshot};
use flux_status_exporter::config::Config;
use flux_status_exporter::flux::FluxKind;
use flux_status_exporter::ledger::Ledger;
use flux_status_exporter::metrics::{FAMILIES, Metrics};
use flux_status_exporter::server::{Readiness, Server, ServerState};
use jiff::Timestamp;
use serde_json::Value;
use support::grafana::{dashboards, label_values_variables, panel_queries};
use support::promql::{selectors, substitute_grafana_variables, threshold_comparison};
use support::rules::{alert_rules, rules_dir};

/// The scrape job, as the ServiceMonitor's jobLabel names it.
const JOB: &str = "flux-status-exporter";
/// How far back range functions look; many scrapes at the 1s interval below.
const RANGE: &str = "1m";
/// Upper bound on waiting for Prometheus to start, scrape and evaluate (not a timing claim:
/// only how long to wait before giving up).
const PATIENCE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// The scrape target

/// Something serving `/metrics` for Prometheus to scrape, stopped on drop.
struct ScrapeTarget {
    address: SocketAddr,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for ScrapeTarget {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The exporter Prometheus scrapes in these tests.
fn scrape_target() -> ScrapeTarget {
    serve_example_metrics()
}

/// The example cluster's metrics, with every family holding data.
fn example_metrics() -> Metrics {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::from_yaml("cluster: demo\n", "test.yaml").unwrap();
    let snapshot = read_snapshot(&root.join("examples/cluster-snapshot.yaml"), &config).unwrap();
    let assessment = assess(&snapshot, &config);
    let now = Timestamp::now();
    let mut ledger = Ledger::new();
    ledger.observe(&assessment, now);

    let metrics = Metrics::new(&config.cluster, VERSION, BUILD_COMMIT).unwrap();
    metrics.update_objects(Arc::new(assessment), &ledger, &config.kinds);
    metrics.record_poll("success", Duration::from_millis(850), Some(now));
    metrics.record_poll("failure", Duration::from_millis(300), None);
    metrics.record_poll("skipped", Duration::ZERO, None);
    for (resource, code) in [
        ("kustomizations", Some(200)),
        ("helmreleases", Some(200)),
        ("gitrepositories", Some(200)),
        ("configmaps", Some(404)),
        ("ocirepositories", Some(503)),
        ("buckets", None),
    ] {
        metrics.record_kube_request(resource, "list", code, Duration::from_millis(40));
    }
    metrics.record_delivery(
        "github",
        "success",
        "delivered",
        Some(Duration::from_millis(250)),
    );
    metrics.record_delivery(
        "github",
        "pending",
        "retry_later",
        Some(Duration::from_secs(2)),
    );
    metrics.record_delivery(
        "gitlab",
        "failure",
        "permanent_error",
        Some(Duration::from_millis(400)),
    );
    metrics.record_delivery("github", "success", "skipped_unmatched", None);
    metrics.set_pending_retries(1);
    metrics.set_rate_limit_remaining("github", Some(4321));
    metrics.set_ledger_size(ledger.len(), 12_345);
    metrics.set_unmatched_repositories(2);
    metrics.set_undecodable(&[(FluxKind::HelmRelease, 1)]);
    metrics
}

/// An in-process `/metrics` server (the exporter's own HTTP server) for [`example_metrics`].
fn serve_example_metrics() -> ScrapeTarget {
    let metrics = Arc::new(example_metrics());
    let readiness = Arc::new(Readiness::new(Duration::from_secs(180)));
    readiness.poll_succeeded(Timestamp::now());
    let state = Arc::new(ServerState::new(metrics, readiness));
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let thread = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = Server::bind("127.0.0.1:0".parse().unwrap(), state)
                .await
                .unwrap();
            address_tx.send(server.local_addr().unwrap()).unwrap();
            server.serve(shutdown_rx, Duration::from_secs(1)).await;
        });
    });
    let address = address_rx.recv().expect("the metrics server starts");
    ScrapeTarget {
        address,
        shutdown: Some(shutdown_tx),
        thread: Some(thread),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP and Prometheus

/// `GET path` over HTTP/1.0 (so the answer is never chunked); status and body.
fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server on loopback, with its own config and storage; killed on drop.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, with `rule_file` loaded.
    fn start(target: SocketAddr, rule_file: &Path) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        // honor_labels and a target `namespace`, as the ServiceMonitor and PodMonitor set up.
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: {JOB}\n    honor_labels: true\n    static_configs:\n\
                 \x20     - targets: ['{target}']\n        labels:\n          namespace: flux-status-exporter\n",
                rule_file.display()
            ),
        )
        .unwrap();
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.path().join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run prometheus ({e}); install it with `apt-get install prometheus`")
            });
        Prometheus {
            child,
            address,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds, polling; panics with Prometheus's log when it never does.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut(&Prometheus) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prometheus exited ({status}) before {what}:\n{}",
                    self.log()
                );
            }
            if ready(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; prometheus log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// An instant query now: the whole API answer.
    fn query(&self, expr: &str) -> Value {
        let (status, body) = http_get(
            self.address,
            &format!("/api/v1/query?query={}", percent_encode(expr)),
        );
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("HTTP {status}, not JSON ({e}): {body}"))
    }

    /// How many samples (series, or one for a scalar) `expr` returns; `Err` on a query error.
    fn sample_count(&self, expr: &str) -> Result<usize, String> {
        let answer = self.query(expr);
        if answer["status"] != "success" {
            return Err(format!(
                "{}: {}",
                answer["errorType"].as_str().unwrap_or("?"),
                answer["error"].as_str().unwrap_or("?")
            ));
        }
        let data = &answer["data"];
        Ok(match data["resultType"].as_str() {
            Some("scalar" | "string") => 1,
            _ => data["result"].as_array().map_or(0, Vec::len),
        })
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the target and Prometheus, and waits until Prometheus has scraped the target enough
/// times for rates over [`RANGE`] and has evaluated every rule.
fn scraped_prometheus(target: &ScrapeTarget) -> Prometheus {
    let mut prometheus = Prometheus::start(target.address, &rules_dir().join("alerts.yaml"));
    prometheus.wait_until("Prometheus to be ready", |p| {
        TcpStream::connect(p.address).is_ok() && http_get(p.address, "/-/ready").0 == 200
    });
    prometheus.wait_until("four successful scrapes of the exporter", |p| {
        let up = format!(
            "count_over_time(up{{job=\"{JOB}\"}}[{RANGE}]) >= 4 and up{{job=\"{JOB}\"}} == 1"
        );
        p.sample_count(&up) == Ok(1)
    });
    prometheus.wait_until("every rule to be evaluated", |p| {
        let (_, body) = http_get(p.address, "/api/v1/rules");
        let answer: Value = serde_json::from_str(&body).unwrap_or_default();
        let rules: Vec<&Value> = answer["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        !rules.is_empty() && rules.iter().all(|r| r["health"] != "unknown")
    });
    prometheus
}

// ---------------------------------------------------------------------------------------------
// The checks

/// `selector` with one more label matcher.
fn with_matcher(selector: &str, matcher: &str) -> String {
    match selector.strip_suffix('}') {
        Some(open) if open.trim_end().ends_with('{') => format!("{open}{matcher}}}"),
        Some(open) => format!("{open}, {matcher}}}"),
        None => format!("{selector}{{{matcher}}}"),
    }
}

#[test]
fn the_example_exporter_serves_data_for_every_metric_family() {
    let target = scrape_target();
    let (status, body) = http_get(target.address, "/metrics");
    assert_eq!(status, 200);
    let served: BTreeSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for (family, kind, _) in FAMILIES {
        let sample = if *kind == "histogram" {
            format!("{family}_count")
        } else {
            family.to_string()
        };
        assert!(
            served.contains(sample.as_str()),
            "no sample of {family} in the example exporter's metrics"
        );
    }
}

#[test]
fn every_dashboard_and_alert_query_returns_data_from_a_prometheus_that_scraped_the_exporter_and_every_rule_evaluates()
 {
    let target = scrape_target();
    let prometheus = scraped_prometheus(&target);
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut expect_data = |place: &str, expr: &str, problems: &mut Vec<String>| {
        checked += 1;
        match prometheus.sample_count(expr) {
            Ok(0) => problems.push(format!("{place}: no data for `{expr}`")),
            Ok(_) => {}
            Err(error) => problems.push(format!("{place}: `{expr}` fails: {error}")),
        }
    };

    for (file, dashboard) in dashboards() {
        for query in panel_queries(&file, &dashboard) {
            let expr = substitute_grafana_variables(&query.expr, RANGE);
            let place = format!("{file}: panel {} ({})", query.panel, query.ref_id);
            // A stat's `or vector(0)` shows 0 where nothing matches; the example cluster has
            // something of every kind, so the query must find it without the fallback.
            let expr = expr.strip_suffix(" or vector(0)").unwrap_or(&expr);
            expect_data(&place, expr, &mut problems);
        }
        for variable in label_values_variables(&dashboard) {
            // label_values lists the label's values: some series must carry it.
            let selector = with_matcher(
                &substitute_grafana_variables(&variable.selector, RANGE),
                &format!("{}!=\"\"", variable.label),
            );
            expect_data(
                &format!("{file}: variable {}", variable.name),
                &selector,
                &mut problems,
            );
        }
    }

    for rule in alert_rules() {
        let place = format!("alert {}", rule.name);
        // The condition itself runs; it may rightly select nothing for the example cluster.
        if let Err(error) = prometheus.sample_count(&rule.expr) {
            problems.push(format!("{place}: `{}` fails: {error}", rule.expr));
        }
        // What a threshold is applied to, and every series the rule reads, have data.
        if let Some((quantity, _)) = threshold_comparison(&rule.expr) {
            expect_data(
                &format!("{place} without its threshold"),
                &quantity,
                &mut problems,
            );
        }
        for selector in selectors(&rule.expr) {
            expect_data(&format!("{place}: selector"), &selector.text, &mut problems);
        }
    }

    // Prometheus loaded the rule file and evaluates every rule without error.
    let (status, body) = http_get(prometheus.address, "/api/v1/rules");
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    let mut evaluated = BTreeSet::new();
    for group in answer["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["name"].as_str().unwrap().to_string();
            if rule["health"] != "ok" {
                problems.push(format!(
                    "rule {name} evaluates with health {}: {}",
                    rule["health"],
                    rule["lastError"].as_str().unwrap_or("")
                ));
            }
            evaluated.insert(name);
        }
    }
    let expected: BTreeSet<String> = alert_rules().into_iter().map(|r| r.name).collect();
    assert_eq!(evaluated, expected, "the rules Prometheus loaded");

    assert!(checked > 50, "only {checked} queries were run");
    assert!(
        problems.is_empty(),
        "{} of {checked} queries failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
