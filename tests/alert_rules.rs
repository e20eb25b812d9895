//! The alert rules in `deploy/prometheus/`: promtool accepts them, their unit tests pass and
//! cover every alert (firing, and silent when it should be), the PrometheusRule holds the same
//! rules, and every rule reads only metrics the exporter serves. (`observability.rs` runs each
//! expression against a real Prometheus.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::promql::{exporter_serves, metric_names};
use support::rules::{alert_groups, alert_rules, rules_dir, yaml_documents};

/// Runs promtool, which CI installs from the `prometheus` Debian package (see .ci/run).
fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install it with `apt-get install prometheus`")
        })
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn promtool_accepts_the_rule_file() {
    let output = promtool(&["check", "rules", "alerts.yaml"], &rules_dir());
    assert!(output.status.success(), "{}", text(&output));
    let count = alert_rules().len();
    assert!(
        text(&output).contains(&format!("SUCCESS: {count} rules found")),
        "{}",
        text(&output)
    );
}

#[test]
fn the_promtool_unit_tests_of_every_alert_pass() {
    let output = promtool(&["test", "rules", "alerts_test.yaml"], &rules_dir());
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("SUCCESS"), "{}", text(&output));
}

#[test]
fn the_unit_tests_fail_when_a_threshold_is_changed() {
    // The unit tests pin the thresholds: a rule file with another one must not pass them.
    let dir = tempfile::tempdir().unwrap();
    let alerts = fs::read_to_string(rules_dir().join("alerts.yaml")).unwrap();
    let loosened = alerts.replacen(
        "(max without (instance, pod) (flux_status_stale_seconds) > 600)",
        "(max without (instance, pod) (flux_status_stale_seconds) > 1200)",
        1,
    );
    assert_ne!(
        alerts, loosened,
        "the FluxObjectFailing threshold was not found"
    );
    fs::write(dir.path().join("alerts.yaml"), loosened).unwrap();
    fs::copy(
        rules_dir().join("alerts_test.yaml"),
        dir.path().join("alerts_test.yaml"),
    )
    .unwrap();

    let output = promtool(&["test", "rules", "alerts_test.yaml"], dir.path());
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("alertname: FluxObjectFailing"),
        "{}",
        text(&output)
    );
}

/// The `alert_rule_test` cases of alerts_test.yaml: (test group name, alertname, expects alerts).
fn unit_test_cases() -> Vec<(String, String, bool)> {
    let documents = yaml_documents(&rules_dir().join("alerts_test.yaml"));
    let mut cases = Vec::new();
    for group in documents[0]["tests"].as_array().unwrap() {
        let name = group["name"].as_str().unwrap_or("?").to_string();
        for case in group["alert_rule_test"].as_array().into_iter().flatten() {
            let fires = case["exp_alerts"]
                .as_array()
                .is_some_and(|alerts| !alerts.is_empty());
            cases.push((
                name.clone(),
                case["alertname"].as_str().unwrap().to_string(),
                fires,
            ));
        }
    }
    cases
}

#[test]
fn every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_silent() {
    let cases = unit_test_cases();
    for rule in alert_rules() {
        assert!(
            cases
                .iter()
                .any(|(_, alert, fires)| *alert == rule.name && *fires),
            "no unit test makes {} fire",
            rule.name
        );
        assert!(
            cases
                .iter()
                .any(|(_, alert, fires)| *alert == rule.name && !*fires),
            "no unit test checks that {} stays silent",
            rule.name
        );
    }
    let known: BTreeSet<String> = alert_rules().into_iter().map(|r| r.name).collect();
    for (group, alert, _) in &cases {
        assert!(
            known.contains(alert),
            "{group}: tests unknown alert {alert}"
        );
    }
}

#[test]
fn no_flux_object_alert_fires_during_a_long_pending_health_check() {
    let cases = unit_test_cases();
    let flux_alerts: Vec<String> = alert_rules()
        .into_iter()
        .filter(|r| r.group == "flux-status-exporter.flux")
        .map(|r| r.name)
        .collect();
    assert_eq!(
        flux_alerts,
        [
            "FluxObjectFailing",
            "FluxObjectPendingTooLong",
            "FluxRevisionDrift",
            "FluxObjectFailuresIncreasing"
        ]
    );
    for alert in flux_alerts {
        assert!(
            cases
                .iter()
                .any(|(group, a, fires)| group.contains("long health check")
                    && *a == alert
                    && !*fires),
            "the long health check test does not check {alert}"
        );
    }
}

#[test]
fn the_prometheusrule_holds_exactly_the_rules_of_alerts_yaml() {
    let documents = yaml_documents(&rules_dir().join("prometheusrule.yaml"));
    assert_eq!(documents.len(), 1);
    let rule = &documents[0];
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["metadata"]["name"], "flux-status-exporter");
    let spec = rule["spec"].as_object().unwrap();
    assert_eq!(spec.keys().collect::<Vec<_>>(), ["groups"]);
    assert_eq!(spec["groups"], alert_groups());
}

#[test]
fn every_alert_has_a_severity_and_a_summary_and_description() {
    for rule in alert_rules() {
        let severity = rule.rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{}: severity `{severity}`",
            rule.name
        );
        for annotation in ["summary", "description"] {
            assert!(
                rule.rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|t| !t.trim().is_empty()),
                "{}: no {annotation}",
                rule.name
            );
        }
    }
}

#[test]
fn per_object_alerts_name_the_object_and_its_cluster_in_summary_and_description() {
    for rule in alert_rules()
        .into_iter()
        .filter(|r| r.group == "flux-status-exporter.flux")
    {
        for annotation in ["summary", "description"] {
            let text = rule.rule["annotations"][annotation].as_str().unwrap();
            for label in ["kind", "namespace", "name", "cluster"] {
                assert!(
                    text.contains(&format!("$labels.{label}")),
                    "{}: {annotation} does not name the object's {label}",
                    rule.name
                );
            }
        }
    }
}

#[test]
fn every_metric_an_alert_reads_is_one_the_exporter_serves() {
    for rule in alert_rules() {
        let names = metric_names(&rule.expr);
        assert!(!names.is_empty(), "{} reads no metric", rule.name);
        for name in names {
            // `up` is Prometheus's own, for the scrape of the exporter.
            assert!(
                name == "up" || exporter_serves(&name),
                "{} reads `{name}`, which the exporter does not serve",
                rule.name
            );
        }
    }
}

#[test]
fn the_kustomization_in_deploy_prometheus_emits_only_the_prometheusrule() {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(rules_dir())
        .output()
        .expect("kubectl runs");
    assert!(output.status.success(), "{}", text(&output));
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&output.stdout)).unwrap();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds, ["PrometheusRule"]);
    assert_eq!(documents[0]["spec"]["groups"], alert_groups());
}
