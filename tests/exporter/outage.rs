//! A forge that is down for several ticks: nothing is recorded as posted, and once it is back
//! every status is delivered once, as its latest truth, while the other forge is unaffected.

use std::time::Duration;

use crate::common::*;
use crate::support::fake_forges::Reply;

/// `flux-system/infra`, a second Kustomization of `acme/fleet`.
const INFRA: Ks = Ks {
    namespace: NAMESPACE,
    name: "infra",
    source: "fleet",
};

#[tokio::test]
async fn a_forge_down_for_several_ticks_gets_only_the_latest_truth_of_each_status_once_when_back() {
    let w = World::start().await;
    let apps = context(NAMESPACE, "apps");
    let infra = context(NAMESPACE, "infra");
    w.put(&[
        fleet(A),
        APPS.ready(A),
        INFRA.ready(A),
        podinfo_repo(P1),
        PODINFO.ready(P1),
    ]);
    let mut x = w.exporter(&w.config("")).await;
    completed(x.tick().await);
    assert_eq!(w.github.requests().len(), 2);

    w.github
        .set_outage(Some(Reply::message(503, "Service Unavailable")));
    let down_from = w.github.requests().len();
    // B is pushed, reconciled and applied by apps while GitHub is down; infra is still
    // reconciling it when GitHub comes back. GitLab's podinfo moves on meanwhile.
    let script = [
        vec![fleet(B), podinfo_repo(P2)],
        vec![
            APPS.reconciling(B, Some(A), "Progressing"),
            INFRA.reconciling(B, Some(A), "Progressing"),
            PODINFO.ready(P2),
        ],
        vec![APPS.ready(B)],
    ];
    let mut left = Vec::new();
    for objects in script {
        w.put(&objects);
        let gitlab_before = w.gitlab.requests().len();
        let report = completed(x.tick().await);
        assert_eq!(report.delivered, w.gitlab.requests().len() - gitlab_before);
        left.push(report.retry_later);
        // Between ticks the circuit breaker's pause may or may not be over; the outcome must
        // not depend on it.
        w.clock.advance(Duration::from_secs(45));
    }
    assert_eq!(left, [2, 2, 2], "every GitHub update is left for later");
    assert!(w.github.requests().len() > down_from, "GitHub was tried");
    assert_eq!(
        brief(&w.gitlab_since(0)),
        expect(&[
            ("P1", "success", says::applied(P1)),
            ("P2", "pending", says::queued()),
            ("P2", "success", says::applied(P2)),
        ])
    );
    // Only what GitHub accepted is recorded.
    let stored = w.stored_ledger().await;
    let github_rows: Vec<_> = ledger_rows(&stored)
        .into_iter()
        .filter(|r| r.0.starts_with("github.com"))
        .collect();
    assert_eq!(
        github_rows,
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
                "success",
                "ReconciliationSucceeded"
            ),
        ]
    );

    w.github.set_outage(None);
    // Long enough for any circuit-breaker pause to be over.
    w.clock.advance(Duration::from_secs(3600));
    let back_from = w.github.requests().len();
    let report = completed(x.tick().await);
    assert_eq!((report.delivered, report.retry_later), (2, 0));
    let posts = w.github_since(back_from);
    assert_eq!(
        posts
            .iter()
            .map(|p| (p.commit.as_str(), p.state.as_str(), p.context.as_str()))
            .collect::<Vec<_>>(),
        [
            ("B", "success", apps.as_str()),
            ("B", "pending", infra.as_str())
        ],
        "B went pending → success on apps while GitHub was down: only success is posted"
    );
    assert_eq!(posts[1].description, says::progressing());
    let accepted = w
        .github
        .with(|g| g.stored("acme/fleet", B, &apps).len() + g.stored("acme/fleet", B, &infra).len());
    assert_eq!(accepted, 2, "each status stored by GitHub once");

    let quiet = w.github.requests().len();
    completed(x.tick().await);
    assert_eq!(w.github.requests().len(), quiet, "nothing is left to send");
}
