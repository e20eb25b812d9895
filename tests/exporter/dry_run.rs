//! Dry runs never post and never write the ledger; a failed read posts nothing and writes
//! nothing.

use crate::common::*;

#[tokio::test]
async fn a_dry_run_logs_what_it_would_post_and_neither_posts_nor_writes_the_ledger() {
    let w = World::start().await;
    w.put(&[fleet(B), APPS.ready(A), podinfo_repo(P1), PODINFO.ready(P1)]);
    let logs = Logs::capture();
    let mut x = w
        .exporter_with(
            &w.config(""),
            flux_status_exporter::leader::Leadership::always(),
            true,
        )
        .await;
    for _ in 0..2 {
        let report = completed(x.tick().await);
        assert_eq!(report.retry_later + report.permanent_errors, 0);
    }
    w.put(&[APPS.reconciling(B, Some(A), "Progressing")]);
    completed(x.tick().await);

    assert_eq!(w.github.requests(), []);
    assert_eq!(w.gitlab.requests(), []);
    assert_eq!(w.configmap_writes(), Vec::<String>::new());
    assert!(w.kube.object("configmaps", NAMESPACE, LEDGER).is_none());
    let text = logs.text();
    let would: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("dry run: would post this status"))
        .collect();
    // B queued, A success, P1 success, then B progressing: each once.
    assert_eq!(would.len(), 4, "{text}");
    assert!(
        would[0].contains(&format!("/repos/acme/fleet/statuses/{B}")),
        "{}",
        would[0]
    );
    assert!(
        would[3].contains("Reconciliation in progress"),
        "{}",
        would[3]
    );
    assert!(!text.contains(GITHUB_TOKEN) && !text.contains(GITLAB_TOKEN));
}

#[tokio::test]
async fn a_tick_that_cannot_read_the_cluster_posts_nothing_and_writes_nothing() {
    let w = World::start().await;
    w.put(&[fleet(A), APPS.ready(A)]);
    let mut x = w.exporter(&w.config("")).await;
    w.kube.fail(
        "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
        403,
        Some(1),
    );
    let report = x.tick().await;
    let flux_status_exporter::app::TickOutcome::ReadFailed(error) = &report.outcome else {
        panic!("{report:?}");
    };
    assert!(
        error.contains(
            "cannot list resource \"kustomizations\" in API group \"kustomize.toolkit.fluxcd.io\""
        ),
        "{error}"
    );
    assert_eq!(report.planned, 0);
    assert_eq!(w.github.requests(), []);
    assert_eq!(w.configmap_writes(), Vec::<String>::new());

    completed(x.tick().await);
    assert_eq!(
        brief(&w.github_since(0)),
        expect(&[("A", "success", says::applied(A))])
    );
}
