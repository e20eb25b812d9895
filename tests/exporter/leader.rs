//! Two replicas sharing a Lease in the fake API server: only the leader posts and writes the
//! ledger; when it releases the Lease or stops renewing it, the other takes over and continues
//! from the saved ledger without posting anything again.

use std::sync::Arc;
use std::time::Duration;

use flux_status_exporter::app::Exporter;
use flux_status_exporter::leader::Elector;

use crate::common::*;
use crate::support::fake_forges::SkipClock;

const LEASE: &str = "flux-status-exporter";

fn holder(w: &World) -> Option<String> {
    w.kube
        .object("leases", NAMESPACE, LEASE)
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
}

struct Replicas {
    first: Exporter,
    second: Exporter,
    first_elector: Elector,
    second_elector: Elector,
    /// The second replica's clock.
    clock: Arc<SkipClock>,
}

async fn replicas(w: &World, lease_duration: Duration) -> Replicas {
    let config = w.config("");
    let (first_elector, first_lead) = Elector::new(
        w.client().await,
        NAMESPACE,
        LEASE,
        "replica-one",
        lease_duration,
    );
    let (second_elector, second_lead) = Elector::new(
        w.client().await,
        NAMESPACE,
        LEASE,
        "replica-two",
        lease_duration,
    );
    let clock = SkipClock::new();
    let second_elector = second_elector.with_clock(clock.clone());
    Replicas {
        first: w.exporter_with(&config, first_lead, false).await,
        second: w.exporter_with(&config, second_lead, false).await,
        first_elector,
        second_elector,
        clock,
    }
}

/// The followers' tick: nothing posted, nothing written.
async fn follower_tick(w: &World, follower: &mut Exporter) {
    let (github, writes) = (w.github.requests().len(), w.configmap_writes().len());
    let report = completed(follower.tick().await);
    assert_eq!(report.delivered, 0);
    assert_eq!(
        w.github.requests().len(),
        github,
        "a follower posts nothing"
    );
    assert_eq!(
        w.configmap_writes().len(),
        writes,
        "a follower writes nothing"
    );
}

#[tokio::test]
async fn only_the_leader_posts_and_when_it_releases_the_lease_the_other_continues_from_its_ledger()
{
    let w = World::start().await;
    let apps = context(NAMESPACE, "apps");
    w.put(&[fleet(A), APPS.reconciling(A, None, "Progressing")]);
    let mut r = replicas(&w, Duration::from_secs(15)).await;
    assert!(r.first_elector.round().await.unwrap());
    assert!(!r.second_elector.round().await.unwrap());
    assert_eq!(holder(&w).as_deref(), Some("replica-one"));

    completed(r.first.tick().await);
    follower_tick(&w, &mut r.second).await;
    w.put(&[APPS.ready(A)]);
    follower_tick(&w, &mut r.second).await;
    completed(r.first.tick().await);
    assert_eq!(
        brief(&w.github_since(0)),
        expect(&[
            ("A", "pending", says::progressing()),
            ("A", "success", says::applied(A)),
        ])
    );

    // The leader shuts down: it releases the Lease, the other takes it at once.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let first_elector = tokio::spawn(r.first_elector.run(stopped));
    stop.send(true).unwrap();
    first_elector.await.unwrap();
    assert_eq!(holder(&w), None);
    assert!(r.second_elector.round().await.unwrap());
    assert_eq!(holder(&w).as_deref(), Some("replica-two"));

    // The new leader continues from the saved ledger: nothing again, only the next change.
    let before = w.github.requests().len();
    completed(r.second.tick().await);
    assert_eq!(w.github.requests().len(), before);
    w.put(&[fleet(B)]);
    completed(r.second.tick().await);
    follower_tick(&w, &mut r.first).await;
    assert_eq!(
        brief(&w.github_since(before)),
        expect(&[("B", "pending", says::queued())])
    );
    assert_eq!(
        ledger_rows(&w.stored_ledger().await),
        [
            row(
                "github.com/acme/fleet",
                "A",
                &apps,
                "success",
                "ReconciliationSucceeded"
            ),
            row("github.com/acme/fleet", "B", &apps, "pending", "Queued"),
        ]
    );
}

#[tokio::test]
async fn when_the_leader_stops_renewing_the_other_takes_over_after_the_lease_duration() {
    let w = World::start().await;
    w.put(&[fleet(A), APPS.ready(A)]);
    let mut r = replicas(&w, Duration::from_secs(1)).await;
    assert!(r.first_elector.round().await.unwrap());
    completed(r.first.tick().await);
    assert_eq!(w.github.requests().len(), 1);

    // The first replica hangs: it never renews again (and never learns it lost the Lease).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !r.second_elector.round().await.unwrap() {
        assert!(std::time::Instant::now() < deadline, "no takeover");
        follower_tick(&w, &mut r.second).await;
        r.clock.advance(Duration::from_millis(200));
    }
    assert_eq!(holder(&w).as_deref(), Some("replica-two"));
    completed(r.second.tick().await);
    assert_eq!(w.github.requests().len(), 1, "nothing is posted again");
    w.put(&[fleet(B)]);
    completed(r.second.tick().await);
    assert_eq!(
        brief(&w.github_since(1)),
        expect(&[("B", "pending", says::queued())])
    );
}
