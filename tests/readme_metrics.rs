//! The README's metrics reference is the code's: the table under "### Metrics" lists exactly
//! the families of `FAMILIES`, in order, with their types; its labels are the ones the exporter
//! renders; and the series-per-object figure it states is the one the code implies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flux_status_exporter::app::inputs::read_snapshot;
use flux_status_exporter::assess::assess;
use flux_status_exporter::config::Config;
use flux_status_exporter::flux::FluxKind;
use flux_status_exporter::ledger::Ledger;
use flux_status_exporter::metrics::{FAMILIES, MAX_FAILURE_REASONS_PER_OBJECT, Metrics};
use jiff::Timestamp;

/// One row of the README's metrics table.
#[derive(Debug)]
struct Row {
    name: String,
    kind: String,
    labels: BTreeSet<String>,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The rows of the table in the README's "### Metrics" section.
fn table() -> Vec<Row> {
    let text = readme();
    let section = text
        .split("\n### Metrics\n")
        .nth(1)
        .expect("the README has a `### Metrics` section");
    let section = section.split("\n#").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `flux_status_"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "not a 4-column row: {line}");
            Row {
                name: cells[0].trim_matches('`').to_string(),
                kind: cells[1].to_string(),
                labels: cells[2]
                    .split(',')
                    .map(|l| l.trim().trim_matches('`').to_string())
                    .filter(|l| !l.is_empty())
                    .collect(),
            }
        })
        .collect()
}

/// The exporter's metrics with data in every family: the example cluster assessed and
/// observed, a poll, Kubernetes requests and deliveries.
fn populated_metrics() -> Metrics {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::from_yaml("cluster: demo\n", "test.yaml").unwrap();
    let snapshot = read_snapshot(&root.join("examples/cluster-snapshot.yaml"), &config).unwrap();
    let assessment = assess(&snapshot, &config);
    let now = Timestamp::now();
    let mut ledger = Ledger::new();
    ledger.observe(&assessment, now);
    let metrics = Metrics::new(&config.cluster, "0.0.0", "unknown").unwrap();
    metrics.update_objects(Arc::new(assessment), &ledger, &config.kinds);
    metrics.record_poll("success", Duration::from_millis(850), Some(now));
    metrics.record_kube_request(
        "kustomizations",
        "list",
        Some(200),
        Duration::from_millis(40),
    );
    metrics.record_delivery(
        "github",
        "success",
        "delivered",
        Some(Duration::from_millis(250)),
    );
    metrics.set_pending_retries(0);
    metrics.set_rate_limit_remaining("github", Some(4321));
    metrics.set_credential_refused("github", false);
    metrics.set_ledger_size(ledger.len(), 12_345);
    metrics.set_unmatched_repositories(2);
    metrics.set_undecodable(&[(FluxKind::HelmRelease, 1)]);
    metrics
}

/// The label names each family is rendered with (`cluster` and histograms' `le` left out).
fn rendered_labels() -> BTreeMap<String, BTreeSet<String>> {
    let text = populated_metrics().render(Timestamp::now());
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, _) = line.rsplit_once(' ').unwrap();
        let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
        let family = FAMILIES.iter().map(|(f, _, _)| *f).find(|f| {
            name == *f
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(f))
        });
        let Some(family) = family else { continue };
        let names = rest
            .trim_end_matches('}')
            .split("\",")
            .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_string()))
            .filter(|k| k != "cluster" && k != "le");
        labels.entry(family.to_string()).or_default().extend(names);
    }
    labels
}

#[test]
fn the_readme_metrics_table_lists_exactly_the_families_of_the_code_with_their_types() {
    let documented: Vec<(String, String)> = table()
        .into_iter()
        .map(|row| (row.name, row.kind))
        .collect();
    let code: Vec<(String, String)> = FAMILIES
        .iter()
        .map(|(name, kind, _)| (name.to_string(), kind.to_string()))
        .collect();
    assert_eq!(documented, code);
}

#[test]
fn the_readme_metrics_table_names_the_labels_each_family_is_served_with() {
    let served = rendered_labels();
    for row in table() {
        let labels = served
            .get(&row.name)
            .unwrap_or_else(|| panic!("{} has no series in the populated metrics", row.name));
        assert_eq!(&row.labels, labels, "labels of {}", row.name);
    }
}

#[test]
fn the_readme_states_the_series_per_object_the_code_implies() {
    let per_object: Vec<Row> = table()
        .into_iter()
        .filter(|row| row.labels.contains("name"))
        .collect();
    // One series each, except the failure counter: one per reason, up to the bound.
    let always = per_object
        .iter()
        .filter(|row| row.name != "flux_status_failures_total")
        .count();
    assert_eq!(always + 1, per_object.len());
    let most = always + MAX_FAILURE_REASONS_PER_OBJECT;
    assert!(most <= 10, "{most} series per object");
    let readme = readme();
    let text = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let claim = format!(
        "at most {most} series per Flux object ({always}, plus up to {MAX_FAILURE_REASONS_PER_OBJECT} of `flux_status_failures_total`)"
    );
    assert!(text.contains(&claim), "the README does not say: {claim}");
}
