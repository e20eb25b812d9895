//! A scripted sequence of cluster states over ticks, against the fake API server and the strict
//! fake GitHub and GitLab: exactly the expected forge requests, in order, with no duplicates;
//! nothing at all on ticks where nothing changed.

use crate::common::*;

/// Ticks once and returns the posts each forge received during the tick.
async fn tick(
    w: &World,
    exporter: &mut flux_status_exporter::app::Exporter,
) -> (Vec<(String, String, String)>, Vec<Post>) {
    let (gh, gl) = (w.github.requests().len(), w.gitlab.requests().len());
    let report = completed(exporter.tick().await);
    assert_eq!(
        report.retry_later + report.permanent_errors,
        0,
        "{report:?}"
    );
    (brief(&w.github_since(gh)), w.gitlab_since(gl))
}

#[tokio::test]
async fn a_scripted_sequence_of_cluster_states_posts_exactly_each_change_once_in_order() {
    let w = World::start().await;
    let apps = context(NAMESPACE, "apps");
    let podinfo = context("team-a", "podinfo");
    w.put(&[
        fleet(A),
        APPS.never_reconciled(),
        podinfo_repo(P1),
        PODINFO.ready(P1),
    ]);
    let mut x = w.exporter(&w.config("")).await;

    // Push A: queued, then reconciling, then applied.
    let (github, gitlab) = tick(&w, &mut x).await;
    assert_eq!(github, expect(&[("A", "pending", says::queued())]));
    assert_eq!(
        gitlab,
        [Post {
            repository: "acme/podinfo".into(),
            commit: "P1".into(),
            state: "success".into(),
            context: podinfo.clone(),
            description: says::applied(P1),
        }]
    );
    w.put(&[APPS.reconciling(A, None, "Progressing")]);
    let (github, gitlab) = tick(&w, &mut x).await;
    assert_eq!(github, expect(&[("A", "pending", says::progressing())]));
    assert_eq!(gitlab, []);
    w.put(&[APPS.ready(A)]);
    assert_eq!(
        tick(&w, &mut x).await.0,
        expect(&[("A", "success", says::applied(A))])
    );
    assert_eq!(tick(&w, &mut x).await, (vec![], vec![]), "nothing changed");

    // Push B: queued, its build fails, Flux retries it.
    w.put(&[fleet(B)]);
    assert_eq!(
        tick(&w, &mut x).await.0,
        expect(&[("B", "pending", says::queued())])
    );
    w.put(&[APPS.failed(
        B,
        Some(A),
        "BuildFailed",
        "kustomize build failed: accumulating resources: missing ingress.yaml",
    )]);
    assert_eq!(
        tick(&w, &mut x).await.0,
        expect(&[(
            "B",
            "failure",
            "build failed: kustomize build failed: accumulating resources: missing ingress.yaml"
                .into()
        )])
    );
    w.put(&[APPS.reconciling(B, Some(A), "ProgressingWithRetry")]);
    assert_eq!(
        tick(&w, &mut x).await.0,
        expect(&[("B", "pending", says::retrying())])
    );

    // Push C before B finished: C queued while B still runs, then Flux moves on to C and B is
    // canceled as superseded. Meanwhile podinfo moves to P2 on GitLab.
    w.put(&[fleet(C), podinfo_repo(P2)]);
    let (github, gitlab) = tick(&w, &mut x).await;
    assert_eq!(github, expect(&[("C", "pending", says::queued())]));
    assert_eq!(brief(&gitlab), expect(&[("P2", "pending", says::queued())]));
    w.put(&[
        APPS.reconciling(C, Some(A), "Progressing"),
        PODINFO.reconciling(P2, Some(P1), "Progressing"),
    ]);
    let (github, gitlab) = tick(&w, &mut x).await;
    assert_eq!(
        github,
        expect(&[
            ("C", "pending", says::progressing()),
            ("B", "error", says::superseded_by(C)),
        ])
    );
    assert_eq!(
        brief(&gitlab),
        expect(&[("P2", "running", says::progressing())])
    );
    w.put(&[APPS.ready(C), PODINFO.ready(P2)]);
    let (github, gitlab) = tick(&w, &mut x).await;
    assert_eq!(github, expect(&[("C", "success", says::applied(C))]));
    assert_eq!(
        brief(&gitlab),
        expect(&[("P2", "success", says::applied(P2))])
    );

    // C's health check regresses, then recovers: success → failure → success on one commit.
    w.put(&[APPS.failed(
        C,
        Some(C),
        "HealthCheckFailed",
        "health check failed after 5m0s: timeout waiting for: [Deployment/apps/web status: 'InProgress']",
    )]);
    assert_eq!(
        tick(&w, &mut x).await.0,
        expect(&[(
            "C",
            "failure",
            "health check failed after 5m0s: timeout waiting for: [Deployment/apps/web status: 'InProgress']".into()
        )])
    );
    w.put(&[APPS.ready(C)]);
    assert_eq!(
        tick(&w, &mut x).await.0,
        expect(&[("C", "success", says::applied(C))])
    );
    assert_eq!(tick(&w, &mut x).await, (vec![], vec![]), "nothing changed");

    // The whole log, in order: every change once, nothing else, all under one context.
    let all = github_posts(&w.github.requests());
    assert!(
        all.iter()
            .all(|p| p.context == apps && p.repository == "acme/fleet")
    );
    assert_eq!(
        brief(&all),
        expect(&[
            ("A", "pending", says::queued()),
            ("A", "pending", says::progressing()),
            ("A", "success", says::applied(A)),
            ("B", "pending", says::queued()),
            ("B", "failure", "build failed: kustomize build failed: accumulating resources: missing ingress.yaml".into()),
            ("B", "pending", says::retrying()),
            ("C", "pending", says::queued()),
            ("C", "pending", says::progressing()),
            ("B", "error", says::superseded_by(C)),
            ("C", "success", says::applied(C)),
            ("C", "failure", "health check failed after 5m0s: timeout waiting for: [Deployment/apps/web status: 'InProgress']".into()),
            ("C", "success", says::applied(C)),
        ])
    );
    assert_eq!(w.gitlab.requests().len(), 4);

    // The ledger holds exactly the last delivered state of every status.
    let expected = vec![
        row(
            "github.com/acme/fleet",
            "A",
            &apps,
            "success",
            "ReconciliationSucceeded",
        ),
        row(
            "github.com/acme/fleet",
            "B",
            &apps,
            "canceled",
            "Superseded",
        ),
        row(
            "github.com/acme/fleet",
            "C",
            &apps,
            "success",
            "ReconciliationSucceeded",
        ),
        row(
            "gitlab.com/acme/podinfo",
            "P1",
            &podinfo,
            "success",
            "ReconciliationSucceeded",
        ),
        row(
            "gitlab.com/acme/podinfo",
            "P2",
            &podinfo,
            "success",
            "ReconciliationSucceeded",
        ),
    ];
    assert_eq!(ledger_rows(x.ledger()), expected);
    assert_eq!(ledger_rows(&w.stored_ledger().await), expected);

    // The failure counters count each transition into failure once.
    let stored = w.stored_ledger().await;
    let (_, record) = stored.resources().find(|(r, _)| r.name == "apps").unwrap();
    assert_eq!(
        record
            .failures
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("BuildFailed", 1), ("HealthCheckFailed", 1)]
    );
}

#[tokio::test]
async fn ticks_with_no_change_send_no_forge_request_and_write_no_configmap() {
    let w = World::start().await;
    w.put(&[fleet(A), APPS.ready(A), podinfo_repo(P1), PODINFO.ready(P1)]);
    let mut x = w.exporter(&w.config("")).await;
    let report = completed(x.tick().await);
    assert_eq!((report.planned, report.delivered), (2, 2));
    let writes = w.configmap_writes();
    assert_eq!(writes, ["POST "], "the first tick creates the ledger");

    let (github, gitlab) = (w.github.requests().len(), w.gitlab.requests().len());
    for _ in 0..5 {
        let report = completed(x.tick().await);
        assert_eq!((report.planned, report.delivered), (0, 0));
    }
    assert_eq!(w.github.requests().len(), github);
    assert_eq!(w.gitlab.requests().len(), gitlab);
    assert_eq!(
        w.configmap_writes(),
        writes,
        "an unchanged ledger is not written"
    );
}

#[tokio::test]
async fn a_restarted_exporter_continues_from_the_saved_ledger_without_reposting() {
    let w = World::start().await;
    w.put(&[fleet(A), APPS.reconciling(A, None, "Progressing")]);
    let config = w.config("");
    {
        let mut first = w.exporter(&config).await;
        completed(first.tick().await);
    }
    assert_eq!(w.github.requests().len(), 1);

    // While it was down, A was applied and B pushed.
    w.put(&[fleet(B), APPS.ready(A)]);
    let mut second = w.exporter(&config).await;
    completed(second.tick().await);
    completed(second.tick().await);
    assert_eq!(
        brief(&w.github_since(1)),
        expect(&[
            ("B", "pending", says::queued()),
            ("A", "success", says::applied(A)),
        ])
    );
}

#[tokio::test]
async fn a_first_run_with_an_empty_ledger_posts_only_the_current_truth_of_current_commits() {
    let w = World::start().await;
    // Flux has been through many commits; only the source's and the object's current ones
    // are in the cluster, and only they get a status.
    w.put(&[
        fleet(C),
        APPS.failed(C, Some(B), "HealthCheckFailed", "health check failed"),
    ]);
    let mut x = w.exporter(&w.config("")).await;
    completed(x.tick().await);
    assert_eq!(
        brief(&w.github_since(0)),
        expect(&[("C", "failure", "health check failed".into())])
    );
    assert_eq!(
        ledger_rows(&w.stored_ledger().await),
        [row(
            "github.com/acme/fleet",
            "C",
            &context(NAMESPACE, "apps"),
            "failure",
            "HealthCheckFailed"
        )]
    );
}
