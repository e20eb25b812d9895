//! The performance scenarios of `benches/fleet.rs` at small sizes, so that they keep working
//! and keep measuring what they claim: the same scenario code, no timing assertions. What is
//! asserted is what the benchmarks report besides time: request counts at the fakes, rate-limit
//! rejections, series and ledger sizes, and that the synthetic fleet is valid Flux.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::bench::{self, Limits};
use support::crd_schema::CrdSet;
use support::fleet::{Fleet, Health};

#[test]
fn the_benchmark_fleet_is_valid_against_the_flux_crds_in_every_state() {
    let crds = CrdSet::vendored();
    let mut fleet = Fleet::new(120);
    let mut kinds = std::collections::BTreeSet::new();
    for round in 0..3 {
        for object in fleet.objects() {
            let kind = object["kind"].as_str().unwrap().to_string();
            let violations = crds
                .check(&object)
                .expect("every fleet object is a Flux kind");
            assert_eq!(violations, [], "{kind} {}", object["metadata"]["name"]);
            kinds.insert(kind);
        }
        for h in fleet
            .kustomizations
            .iter_mut()
            .chain(fleet.helm_releases.iter_mut())
        {
            *h = h.next();
        }
        for r in 0..fleet.git_generations.len() {
            fleet.advance_git(r);
        }
        for o in 0..fleet.oci_generations.len() {
            fleet.advance_oci(o);
        }
        assert!(round < 3);
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "GitRepository",
            "HelmChart",
            "HelmRelease",
            "Kustomization",
            "OCIRepository"
        ]
    );
}

#[test]
fn the_benchmark_fleet_speaks_for_commits_in_every_kind_that_can() {
    let fleet = Fleet::new(200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.json");
    let items: Vec<_> = fleet.objects().collect();
    std::fs::write(
        &path,
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    )
    .unwrap();
    let config =
        flux_status_exporter::config::Config::from_yaml("cluster: bench\n", "c.yaml").unwrap();
    let snapshot = flux_status_exporter::app::inputs::read_snapshot(&path, &config).unwrap();
    let assessment = flux_status_exporter::assess::assess(&snapshot, &config);
    let with_commits = |kind: &str| {
        assessment
            .resources
            .iter()
            .filter(|r| r.resource.kind.as_str() == kind && !r.observations.is_empty())
            .count()
    };
    let first = assessment
        .resources
        .iter()
        .find(|r| r.resource.kind.as_str() == "Kustomization")
        .unwrap();
    assert_eq!(first.unattributed, None, "{first:?}");
    // Every Kustomization (on Git or on OCI artifacts built from Git) speaks for a commit, and so
    // does every HelmRelease: through its chart's GitRepository, or through the Kustomization
    // that applied it.
    assert_eq!(with_commits("Kustomization"), fleet.kustomizations.len());
    assert_eq!(with_commits("HelmRelease"), fleet.helm_releases.len());
}

#[tokio::test(flavor = "current_thread")]
async fn idle_ticks_send_nothing_to_the_forge_and_list_each_kind_once_per_tick() {
    let report = bench::idle(150, 5).await;
    assert!(report.first_tick_posts > 60, "{report:?}");
    assert_eq!(report.forge_requests, 0, "{report:?}");
    for (kind, sequences) in &report.list_sequences {
        assert_eq!(sequences, &vec![1; 5], "{kind}: {report:?}");
    }
    assert_eq!(report.other_kube_requests, Vec::<String>::new());
    assert!(report.reports.iter().all(|r| r.planned == 0), "{report:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_change_storm_drains_at_the_paced_rate_without_a_rejection_posting_the_newest_truth() {
    // 100 Kustomizations change at once against a forge allowing 10 posts a minute and 40 an
    // hour, so the drain spans hours of (virtual) ticks.
    let limits = Limits {
        per_minute: 10,
        per_hour: 40,
    };
    let report = bench::storm(250, limits).await;
    assert_eq!(report.changed, 100, "{report:?}");
    // The Kustomizations' new commits, and those of the HelmReleases they apply.
    assert!(report.planned_first_tick > 100, "{report:?}");
    assert_eq!(report.rejections, 0, "{report:?}");
    assert_eq!(report.busiest_minute, 10, "{report:?}");
    assert_eq!(report.settled_midway, 10, "{report:?}");
    assert_eq!(report.stale_posts, 0, "{report:?}");
    assert_eq!(report.wrong_final, 0, "{report:?}");
    let planned = report.planned_first_tick;
    assert!(
        (planned..=planned + 10).contains(&report.posts),
        "{report:?}"
    );
    assert!(report.ticks_to_drain > 60, "{report:?}");
    assert!(
        report.drain_virtual >= Duration::from_secs(2 * 3600),
        "{report:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_run_keeps_series_and_the_ledger_bounded_and_drops_deleted_objects() {
    let samples = bench::endurance_in_process(300, 40, &[10, 40]).await;
    let fleet = Fleet::new(300);
    let objects_with_series = fleet.len();
    // Each Kustomization cycles through at most four commits.
    let ledger_bound = 4 * fleet.kustomizations.len() + fleet.helm_releases.len();
    for sample in &samples {
        assert_eq!(sample.series_of_deleted, 0, "{samples:?}");
        assert!(
            sample.series <= 10 * objects_with_series + 100,
            "{samples:?}"
        );
        assert!(sample.ledger_entries <= ledger_bound, "{samples:?}");
    }
    assert!(Health::Ready.next() != Health::Ready);
}
