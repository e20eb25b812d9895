//! Every query of the dashboards and the alert rules, run against a real Prometheus that has
//! scraped the exporter, returns data: the metric names, labels and types they assume are the
//! ones the exporter serves, and Prometheus loads and evaluates the rule file without error.
//!
//! The scrape target is the real exporter, `flux-status-exporter run`, polling the fake API
//! server serving the example cluster (`examples/cluster-snapshot.yaml`, plus an object that
//! does not decode and no Bucket CRD) every second and delivering its GitHub statuses to a fake
//! GitHub that refuses the first one for good, so that every family has data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use flux_status_exporter::metrics::FAMILIES;
use serde_json::{Value, json};
use support::exporter::{RunningExporter, Setup, http_get};
use support::fake_forges::{Fault, Reply};
use support::flux_objects::undecodable;
use support::grafana::{dashboards, label_values_variables, panel_queries};
use support::prometheus::Prometheus;
use support::promql::{selectors, substitute_grafana_variables, threshold_comparison};
use support::rules::{alert_rules, rules_dir};

/// How far back range functions look; many scrapes at the 1s interval.
const RANGE: &str = "1m";

// ---------------------------------------------------------------------------------------------
// The scrape target

/// The running exporter Prometheus scrapes, with the fakes it talks to; stopped on drop.
struct ScrapeTarget {
    address: SocketAddr,
    _exporter: RunningExporter,
    _setup: Setup,
}

/// The exporter on the example cluster, once it has polled and delivered.
fn scrape_target() -> ScrapeTarget {
    let setup = Setup::new(Vec::new());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-snapshot.yaml");
    setup
        .kube
        .load_dump_text(&std::fs::read_to_string(example).unwrap())
        .unwrap();
    setup.kube.put(undecodable("odd")).unwrap();
    // A kind whose CRD is not installed: its list answers 404.
    setup.kube.uninstall("buckets");
    // The first status GitHub receives is refused for good.
    setup.github.server.inject(Fault::Respond(Reply::json(
        422,
        json!({"message": "Validation Failed"}),
    )));
    let config = setup.write_config("");
    let mut exporter = setup.run(&config, &[]);
    let address = exporter.address();
    exporter.wait_until("a poll that delivered statuses", |e| {
        let text = e.scrape();
        (text.contains("outcome=\"permanent_error\"")
            && text.contains("outcome=\"delivered\"")
            && text.contains("flux_status_forge_rate_limit_remaining{")
            // The poll's objects too, not only its deliveries.
            && text.contains("flux_status_resource_ready{")
            && text.contains("flux_status_failures_total{"))
        .then_some(())
    });
    ScrapeTarget {
        address,
        _exporter: exporter,
        _setup: setup,
    }
}

/// Starts Prometheus on the target, and waits until it has scraped the target enough times
/// for rates over [`RANGE`] and has evaluated every rule.
fn scraped_prometheus(target: &ScrapeTarget) -> Prometheus {
    let mut prometheus = Prometheus::start(target.address, Some(&rules_dir().join("alerts.yaml")));
    prometheus.wait_for_scrapes(4);
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
fn the_running_exporter_serves_data_for_every_metric_family() {
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
            "no sample of {family} in the running exporter's metrics"
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
