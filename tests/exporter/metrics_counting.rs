//! What the loop counts in its metrics across ticks.

use std::sync::Arc;

use flux_status_exporter::app::Exporter;
use flux_status_exporter::leader::Leadership;
use flux_status_exporter::metrics::Metrics;

use crate::common::*;

/// `acme/tools` on a host no forge serves.
fn tools_repo(sha: &str) -> serde_json::Value {
    git_repository(
        NAMESPACE,
        "tools",
        "https://gitea.example.com/acme/tools.git",
        sha,
    )
}

const TOOLS: Ks = Ks {
    namespace: NAMESPACE,
    name: "tools",
    source: "tools",
};

fn line<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[tokio::test]
async fn an_undeliverable_status_is_counted_once_however_many_polls_plan_it() {
    let w = World::start().await;
    w.put(&[tools_repo(A), TOOLS.ready(A)]);
    let config = w.config("");
    let metrics = Arc::new(Metrics::new(&config.cluster, "test", "test").unwrap());
    let parts = w.parts(&config, false).await;
    let mut x = Exporter::new(
        Arc::new(config),
        parts,
        Arc::clone(&metrics),
        Leadership::always(),
        false,
    );
    x.load_ledger().await.unwrap();
    for _ in 0..3 {
        let report = completed(x.tick().await);
        assert_eq!(report.skipped, 1);
    }
    let text = metrics.render(jiff::Timestamp::now());
    assert_eq!(
        line(&text, "flux_status_commit_status_deliveries_total{"),
        [
            "flux_status_commit_status_deliveries_total{forge=\"none\",outcome=\"skipped_unmatched\",state=\"success\",cluster=\"test\"} 1"
        ]
    );
    assert_eq!(
        line(&text, "flux_status_unmatched_repositories{"),
        ["flux_status_unmatched_repositories{cluster=\"test\"} 1"]
    );

    // A new state of the same commit is a new status to skip: counted again, once.
    w.put(&[TOOLS.failed(A, Some(A), "HealthCheckFailed", "timeout")]);
    completed(x.tick().await);
    completed(x.tick().await);
    let text = metrics.render(jiff::Timestamp::now());
    assert_eq!(
        line(&text, "flux_status_commit_status_deliveries_total{"),
        [
            "flux_status_commit_status_deliveries_total{forge=\"none\",outcome=\"skipped_unmatched\",state=\"failure\",cluster=\"test\"} 1",
            "flux_status_commit_status_deliveries_total{forge=\"none\",outcome=\"skipped_unmatched\",state=\"success\",cluster=\"test\"} 1",
        ]
    );
    assert_eq!(w.github.requests(), []);
}
