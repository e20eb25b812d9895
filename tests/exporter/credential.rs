//! A forge that refuses the exporter's credential: its statuses wait (never recorded as posted),
//! the refusal shows in `/readyz`, `/status` and a metric, the other forge is unaffected, and
//! once the token is rotated every waiting status is delivered.

use std::sync::Arc;
use std::time::Duration;

use flux_status_exporter::app::Exporter;
use flux_status_exporter::leader::Leadership;
use flux_status_exporter::metrics::Metrics;
use flux_status_exporter::server::{Readiness, ServerState};
use jiff::Timestamp;

use crate::common::*;
use crate::support::fake_forges::Reply;

/// `flux-system/infra`, a second Kustomization of `acme/fleet`.
const INFRA: Ks = Ks {
    namespace: NAMESPACE,
    name: "infra",
    source: "fleet",
};

fn refused_series(metrics: &Metrics) -> Vec<String> {
    metrics
        .render(Timestamp::now())
        .lines()
        .filter(|l| l.starts_with("flux_status_forge_credential_refused{"))
        .map(str::to_string)
        .collect()
}

/// An exporter on `w`'s default configuration with its metrics and server state, ledger loaded.
async fn exporter(w: &World) -> (Exporter, Arc<Metrics>, Arc<ServerState>) {
    let config = w.config("");
    let metrics = Arc::new(Metrics::new(&config.cluster, "test", "test").unwrap());
    let server = Arc::new(ServerState::new(
        Arc::clone(&metrics),
        Arc::new(Readiness::new(Duration::from_secs(3600))),
    ));
    let mut x = Exporter::new(
        Arc::new(config.clone()),
        w.parts(&config, false).await,
        Arc::clone(&metrics),
        Leadership::always(),
        false,
    )
    .with_server(Arc::clone(&server));
    x.load_ledger().await.unwrap();
    (x, metrics, server)
}

/// How many statuses the ledger records as posted to GitHub.
async fn github_rows(w: &World) -> usize {
    ledger_rows(&w.stored_ledger().await)
        .into_iter()
        .filter(|r| r.0.starts_with("github.com"))
        .count()
}

#[tokio::test]
async fn a_refused_token_makes_the_pod_unready_naming_the_forge_and_its_statuses_wait_for_the_rotated_one()
 {
    let w = World::start().await;
    std::fs::write(w.path("github-token"), "ghp_RevokedLongAgo000000").unwrap();
    w.put(&[
        fleet(A),
        APPS.ready(A),
        INFRA.ready(A),
        podinfo_repo(P1),
        PODINFO.ready(P1),
    ]);
    let (mut x, metrics, server) = exporter(&w).await;

    let report = completed(x.tick().await);
    assert_eq!((report.delivered, report.retry_later), (1, 2));
    assert_eq!(
        w.github.requests().len(),
        2,
        "one request, and one with the token read again; none for the second status"
    );
    assert_eq!(
        server.readiness.check(Timestamp::now()),
        Err(
            "forge github refuses its credential: github answered 401: Bad credentials; \
             its statuses wait until the credential is fixed"
                .to_string()
        )
    );
    let status: serde_json::Value = serde_json::from_slice(&server.status.read().unwrap()).unwrap();
    assert_eq!(
        status["refused_credentials"],
        serde_json::json!({"github": "github answered 401: Bad credentials"})
    );
    assert_eq!(
        refused_series(&metrics),
        [
            "flux_status_forge_credential_refused{forge=\"github\",cluster=\"test\"} 1",
            "flux_status_forge_credential_refused{forge=\"gitlab\",cluster=\"test\"} 0",
        ]
    );
    let github_rows = ledger_rows(&w.stored_ledger().await)
        .into_iter()
        .filter(|r| r.0.starts_with("github.com"))
        .count();
    assert_eq!(
        github_rows, 0,
        "nothing GitHub refused is recorded as posted"
    );

    // A tick inside the hold does not use the token at all.
    w.clock.advance(Duration::from_secs(30));
    let report = completed(x.tick().await);
    assert_eq!((report.delivered, report.retry_later), (0, 2));
    assert_eq!(w.github.requests().len(), 2);

    // Rotated: after the hold, both waiting statuses are delivered and the pod is ready.
    std::fs::write(w.path("github-token"), GITHUB_TOKEN).unwrap();
    w.clock.advance(Duration::from_secs(31));
    let report = completed(x.tick().await);
    assert_eq!((report.delivered, report.retry_later), (2, 0));
    assert_eq!(
        brief(&w.github_since(2)),
        expect(&[
            ("A", "success", says::applied(A)),
            ("A", "success", says::applied(A)),
        ])
    );
    assert_eq!(server.readiness.check(Timestamp::now()), Ok(()));
    assert_eq!(
        refused_series(&metrics)[0],
        "flux_status_forge_credential_refused{forge=\"github\",cluster=\"test\"} 0"
    );
}

#[tokio::test]
async fn a_token_that_cannot_go_in_a_header_is_held_like_a_refused_one_and_delivered_once_fixed() {
    let w = World::start().await;
    std::fs::write(w.path("github-token"), "ghp_Pasted\nWithALineBreak00").unwrap();
    w.put(&[fleet(A), APPS.ready(A), INFRA.ready(A)]);
    let (mut x, metrics, server) = exporter(&w).await;

    let report = completed(x.tick().await);
    assert_eq!((report.delivered, report.retry_later), (0, 2));
    assert_eq!(w.github.requests().len(), 0, "nothing can be sent");
    assert_eq!(github_rows(&w).await, 0, "nothing is recorded as posted");
    assert_eq!(
        server.readiness.check(Timestamp::now()),
        Err(
            "forge github refuses its credential: github: credential: the credential contains \
             characters not allowed in an HTTP header (a line break or control character); fix \
             the secret; its statuses wait until the credential is fixed"
                .to_string()
        )
    );
    assert_eq!(
        refused_series(&metrics)[0],
        "flux_status_forge_credential_refused{forge=\"github\",cluster=\"test\"} 1"
    );

    std::fs::write(w.path("github-token"), GITHUB_TOKEN).unwrap();
    w.clock.advance(Duration::from_secs(61));
    let report = completed(x.tick().await);
    assert_eq!((report.delivered, report.retry_later), (2, 0));
    assert_eq!(github_rows(&w).await, 2);
    assert_eq!(server.readiness.check(Timestamp::now()), Ok(()));
}

#[tokio::test]
async fn a_redirect_for_a_moved_repository_is_never_recorded_and_its_statuses_wait_with_backoff() {
    let w = World::start().await;
    w.put(&[fleet(A), APPS.ready(A), INFRA.ready(A)]);
    let (mut x, _, _) = exporter(&w).await;
    // GitHub answers posts for a renamed repository with 307 and where it lives now.
    let moved = Reply::message(307, "Temporary Redirect").header(
        "location",
        "https://api.github.com/repositories/4242/statuses/x",
    );
    w.github.set_outage(Some(moved));

    let report = completed(x.tick().await);
    assert_eq!((report.delivered, report.retry_later), (0, 2));
    assert_eq!(
        w.github.requests().len(),
        1,
        "the second status of the moved repository is held"
    );
    assert_eq!(github_rows(&w).await, 0, "nothing is recorded as posted");
    // Within the hold nothing is sent; after it, one request tries again and the hold doubles.
    w.clock.advance(Duration::from_secs(59));
    completed(x.tick().await);
    assert_eq!(w.github.requests().len(), 1);
    w.clock.advance(Duration::from_secs(2));
    completed(x.tick().await);
    assert_eq!(w.github.requests().len(), 2);
    w.clock.advance(Duration::from_secs(61));
    completed(x.tick().await);
    assert_eq!(w.github.requests().len(), 2, "the second hold is 120 s");

    // Fixed: after the hold, every waiting status is delivered.
    w.github.set_outage(None);
    w.clock.advance(Duration::from_secs(60));
    let report = completed(x.tick().await);
    assert_eq!((report.delivered, report.retry_later), (2, 0));
    assert_eq!(github_rows(&w).await, 2);
}
