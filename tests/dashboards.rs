//! The Grafana dashboards in `dashboards/` are valid dashboard JSON of a current schema, use
//! the data source only through the `${datasource}` variable, and query only metrics the
//! exporter serves. (`observability.rs` runs every query against a real Prometheus.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};
use support::grafana::{dashboard_dir, dashboards, label_values_variables, panel_queries, panels};
use support::promql::{exporter_serves, metric_names, selectors, threshold_comparison};

const DASHBOARDS: [&str; 2] = ["exporter-health.json", "flux-reconciliation.json"];

fn datasource_variable() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

#[test]
fn both_dashboards_parse_with_unique_uids_titles_and_a_current_schema_version() {
    let all = dashboards();
    let files: Vec<&str> = all.iter().map(|(file, _)| file.as_str()).collect();
    assert_eq!(files, DASHBOARDS);

    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for (file, dashboard) in &all {
        let uid = dashboard["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && uid.len() <= 40,
            "{file}: uid `{uid}` must be 1-40 characters"
        );
        assert!(
            uid.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{file}: uid `{uid}` has characters Grafana does not allow"
        );
        assert!(
            uids.insert(uid.to_string()),
            "{file}: uid `{uid}` is used twice"
        );
        let title = dashboard["title"].as_str().unwrap_or_default();
        assert!(
            titles.insert(title.to_string()),
            "{file}: title `{title}` is used twice"
        );
        let schema = dashboard["schemaVersion"].as_u64().unwrap_or(0);
        assert!(
            schema >= 39,
            "{file}: schemaVersion {schema} is older than 39"
        );
        // An id belongs to one Grafana instance's database; a shared dashboard has none.
        assert_eq!(dashboard["id"], Value::Null, "{file}: id must be null");
        assert!(dashboard["panels"].is_array(), "{file}: no panels");
        assert!(
            dashboard["templating"]["list"].is_array(),
            "{file}: no templating list"
        );
    }
}

#[test]
fn panel_ids_are_unique_and_panels_fit_the_grid_without_overlapping() {
    for (file, dashboard) in dashboards() {
        let mut ids = BTreeSet::new();
        let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("?");
            let id = panel["id"].as_u64().expect("a numeric panel id");
            assert!(
                ids.insert(id),
                "{file}: panel id {id} ({title}) is used twice"
            );
            let grid = &panel["gridPos"];
            let (x, y, w, h) = (
                grid["x"].as_u64().unwrap(),
                grid["y"].as_u64().unwrap(),
                grid["w"].as_u64().unwrap(),
                grid["h"].as_u64().unwrap(),
            );
            assert!(
                w > 0 && h > 0 && x + w <= 24,
                "{file}: {title} does not fit 24 columns"
            );
            for cx in x..x + w {
                for cy in y..y + h {
                    if let Some(other) = cells.insert((cx, cy), title.to_string()) {
                        panic!("{file}: {title} overlaps {other} at ({cx}, {cy})");
                    }
                }
            }
        }
    }
}

/// Every `datasource` object anywhere in `value`, with its JSON pointer.
fn datasource_fields(value: &Value, pointer: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let here = format!("{pointer}/{key}");
                if key == "datasource" {
                    out.push((here.clone(), inner.clone()));
                }
                datasource_fields(inner, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                datasource_fields(inner, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_panel_query_and_variable_uses_the_datasource_variable_and_no_uid_is_hard_coded() {
    for (file, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("?");
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(
                panel["datasource"],
                datasource_variable(),
                "{file}: panel {title}"
            );
            let targets = panel["targets"].as_array().expect("a panel with targets");
            assert!(!targets.is_empty(), "{file}: panel {title} has no query");
            for target in targets {
                assert_eq!(
                    target["datasource"],
                    datasource_variable(),
                    "{file}: panel {title}"
                );
                assert!(
                    target["expr"]
                        .as_str()
                        .is_some_and(|e| !e.trim().is_empty()),
                    "{file}: panel {title} has an empty query"
                );
            }
        }
        let mut found = Vec::new();
        datasource_fields(&dashboard, "", &mut found);
        for (pointer, datasource) in found {
            assert_eq!(
                datasource,
                datasource_variable(),
                "{file}{pointer}: a data source other than the variable"
            );
        }
    }
}

#[test]
fn both_dashboards_have_datasource_cluster_namespace_and_kind_variables() {
    for (file, dashboard) in dashboards() {
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        let names: Vec<&str> = variables
            .iter()
            .map(|v| v["name"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(
            names,
            ["datasource", "cluster", "namespace", "kind"],
            "{file}"
        );
        assert_eq!(variables[0]["type"], "datasource", "{file}");
        assert_eq!(variables[0]["query"], "prometheus", "{file}");
        for variable in &variables[1..] {
            let name = variable["name"].as_str().unwrap();
            assert_eq!(variable["type"], "query", "{file}: {name}");
            assert_eq!(
                variable["datasource"],
                datasource_variable(),
                "{file}: {name}"
            );
            assert_eq!(variable["includeAll"], true, "{file}: {name}");
            assert_eq!(variable["multi"], true, "{file}: {name}");
            assert_eq!(variable["allValue"], ".*", "{file}: {name}");
        }
        let labels: Vec<String> = label_values_variables(&dashboard)
            .into_iter()
            .map(|v| format!("{}={}", v.name, v.label))
            .collect();
        assert_eq!(
            labels,
            ["cluster=cluster", "namespace=namespace", "kind=kind"],
            "{file}: each variable lists the values of its own label"
        );
    }
}

#[test]
fn every_metric_a_dashboard_queries_is_one_the_exporter_serves() {
    let mut used = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        let mut exprs: Vec<(String, String)> = panel_queries(&file, &dashboard)
            .into_iter()
            .map(|q| (format!("panel {} ({})", q.panel, q.ref_id), q.expr))
            .collect();
        exprs.extend(
            label_values_variables(&dashboard)
                .into_iter()
                .map(|v| (format!("variable {}", v.name), v.selector)),
        );
        for (place, expr) in exprs {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "{file}: {place} reads no metric: {expr}");
            for name in names {
                assert!(
                    exporter_serves(&name),
                    "{file}: {place} reads `{name}`, which the exporter does not serve"
                );
                used.insert(name);
            }
        }
    }
    // The panels the issue asks for are there: these families are all shown somewhere.
    for family in [
        "flux_status_resource_state",
        "flux_status_resource_info",
        "flux_status_revision_drift_seconds",
        "flux_status_failures_total",
        "flux_status_suspended",
        "flux_status_stale_seconds",
        "flux_status_polls_total",
        "flux_status_poll_duration_seconds_bucket",
        "flux_status_kube_requests_total",
        "flux_status_commit_status_deliveries_total",
        "flux_status_commit_status_pending_retries",
        "flux_status_forge_rate_limit_remaining",
        "flux_status_ledger_bytes",
    ] {
        assert!(used.contains(family), "no dashboard shows {family}");
    }
}

#[test]
fn reconciliation_panels_filter_every_per_object_series_by_cluster_namespace_and_kind() {
    let (file, dashboard) = dashboards()
        .into_iter()
        .find(|(file, _)| file == "flux-reconciliation.json")
        .unwrap();
    for query in panel_queries(&file, &dashboard) {
        for selector in selectors(&query.expr) {
            for filter in [
                "cluster=~\"$cluster\"",
                "namespace=~\"$namespace\"",
                "kind=~\"$kind\"",
            ] {
                assert!(
                    selector.text.contains(filter),
                    "{}: `{}` does not filter by {filter}",
                    query.panel,
                    selector.text
                );
            }
        }
    }
}

#[test]
fn the_sidecar_configmaps_carry_each_dashboard_unchanged_and_the_grafana_dashboard_label() {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dashboard_dir())
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl kustomize dashboards/ failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&output.stdout)).unwrap();
    let mut carried = BTreeSet::new();
    for document in &documents {
        assert_eq!(document["kind"], "ConfigMap");
        assert_eq!(document["metadata"]["labels"]["grafana_dashboard"], "1");
        let data = document["data"].as_object().unwrap();
        assert_eq!(data.len(), 1, "one dashboard per ConfigMap");
        for (file, text) in data {
            let on_disk = std::fs::read_to_string(dashboard_dir().join(file)).unwrap();
            assert_eq!(
                text.as_str(),
                Some(on_disk.as_str()),
                "{file} changed on the way"
            );
            carried.insert(file.clone());
        }
    }
    assert_eq!(carried, DASHBOARDS.iter().map(|f| f.to_string()).collect());
}

// ---------------------------------------------------------------------------------------------
// The PromQL helpers these checks rely on

fn texts(expr: &str) -> Vec<String> {
    selectors(expr).into_iter().map(|s| s.text).collect()
}

#[test]
fn selectors_are_found_through_functions_aggregations_and_joins() {
    assert_eq!(
        texts(
            r#"max by (cluster, kind) (a{x="1", y=~"$v|"} * on (cluster, job) group_left (reason) b) and on (name) c{state="failure"} unless d offset 5m"#
        ),
        ["a{x=\"1\", y=~\"$v|\"}", "b", "c{state=\"failure\"}", "d"]
    );
    assert_eq!(
        texts("histogram_quantile(0.95, sum by (le) (rate(h_bucket{j=\"x\"}[$__rate_interval])))"),
        ["h_bucket{j=\"x\"}"]
    );
    assert_eq!(texts("time() - t > 900"), ["t"]);
    assert_eq!(texts("count(x == 1) or vector(0)"), ["x"]);
    assert_eq!(
        texts("label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")"),
        ["up"]
    );
    assert_eq!(
        texts("sum without (state, outcome) (increase(z[15m])) > 0"),
        ["z"]
    );
}

#[test]
fn a_threshold_is_split_off_only_at_the_top_level() {
    assert_eq!(
        threshold_comparison("sum without (a) (increase(x[15m])) > 0"),
        Some(("sum without (a) (increase(x[15m]))".into(), "0".into()))
    );
    assert_eq!(
        threshold_comparison("x > 0.8 * 1048576"),
        Some(("x".into(), "0.8 * 1048576".into()))
    );
    assert_eq!(
        threshold_comparison("up{job=\"x\"} == 0"),
        Some(("up{job=\"x\"}".into(), "0".into()))
    );
    assert_eq!(threshold_comparison("(a > 1) and on (n) (b == 1)"), None);
    assert_eq!(threshold_comparison("a{x!=\"y\"}"), None);
    assert_eq!(threshold_comparison("a > b"), None);
}

#[test]
fn only_the_exporters_families_and_process_metrics_count_as_served() {
    assert!(exporter_serves("flux_status_resource_ready"));
    assert!(exporter_serves("flux_status_poll_duration_seconds_bucket"));
    assert!(exporter_serves("flux_status_poll_duration_seconds_count"));
    assert!(!exporter_serves("flux_status_poll_duration_seconds"));
    assert!(!exporter_serves("flux_status_resource_ready_total"));
    assert!(!exporter_serves("gotk_reconcile_condition"));
    assert!(exporter_serves("process_resident_memory_bytes"));
    assert!(!exporter_serves("up"));
}
