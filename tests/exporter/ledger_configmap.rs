//! The ConfigMap ledger under the exporter: two writers, a ConfigMap deleted under it, a
//! ledger too large for one ConfigMap, corrupt and incompatible contents, and pruning.

use base64::Engine;
use flux_status_exporter::flux::revision::CommitSha;
use flux_status_exporter::ledger::Ledger;
use flux_status_exporter::model::CommitState;
use flux_status_exporter::model::StatusKey;
use jiff::Timestamp;
use serde_json::json;

use crate::common::*;
use crate::support::fake_kube::CONFIG_MAP_MAX_BYTES;

#[tokio::test]
async fn two_exporters_writing_one_configmap_merge_instead_of_losing_each_others_records() {
    let w = World::start().await;
    let apps = context(NAMESPACE, "apps");
    let podinfo = context("team-a", "podinfo");
    w.put(&[fleet(A), APPS.ready(A), podinfo_repo(P1), PODINFO.ready(P1)]);
    // Two exporters share the ledger (a configuration mistake, or two replicas overlapping),
    // each reading its own namespace so that their records differ.
    let mut x = w.exporter(&w.config("namespaces: [flux-system]\n")).await;
    let mut y = w.exporter(&w.config("namespaces: [team-a]\n")).await;

    completed(x.tick().await);
    // y loaded the ledger before x created it: its create conflicts, so it merges and updates.
    completed(y.tick().await);
    assert_eq!(
        w.configmap_writes(),
        ["POST ", "POST ", &format!("PUT {LEDGER}")]
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
            row(
                "gitlab.com/acme/podinfo",
                "P1",
                &podinfo,
                "success",
                "ReconciliationSucceeded"
            ),
        ]
    );

    // x's copy of the resourceVersion is stale now: its next save conflicts and merges too.
    w.put(&[fleet(B)]);
    completed(x.tick().await);
    // y has nothing to write; then its own change conflicts with x's write.
    completed(y.tick().await);
    w.put(&[podinfo_repo(P2)]);
    completed(y.tick().await);
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
            row(
                "gitlab.com/acme/podinfo",
                "P1",
                &podinfo,
                "success",
                "ReconciliationSucceeded"
            ),
            row(
                "gitlab.com/acme/podinfo",
                "P2",
                &podinfo,
                "pending",
                "Queued"
            ),
        ]
    );
    let writes = w.configmap_writes();
    assert!(
        writes[3..].iter().all(|w| *w == format!("PUT {LEDGER}")),
        "{writes:?}"
    );
    // Each status went to its forge once.
    assert_eq!(
        brief(&w.github_since(0)),
        expect(&[
            ("A", "success", says::applied(A)),
            ("B", "pending", says::queued())
        ])
    );
    assert_eq!(
        brief(&w.gitlab_since(0)),
        expect(&[
            ("P1", "success", says::applied(P1)),
            ("P2", "pending", says::queued())
        ])
    );
}

#[tokio::test]
async fn a_ledger_configmap_deleted_between_ticks_is_written_again_whole() {
    let w = World::start().await;
    let apps = context(NAMESPACE, "apps");
    w.put(&[fleet(A), APPS.ready(A)]);
    let mut x = w.exporter(&w.config("")).await;
    completed(x.tick().await);
    assert!(w.kube.delete("configmaps", NAMESPACE, LEDGER));

    completed(x.tick().await);
    assert!(
        w.kube.object("configmaps", NAMESPACE, LEDGER).is_none(),
        "nothing changed, nothing written"
    );
    w.put(&[fleet(B)]);
    completed(x.tick().await);
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
    assert_eq!(
        brief(&w.github_since(0)),
        expect(&[
            ("A", "success", says::applied(A)),
            ("B", "pending", says::queued())
        ])
    );
}

/// A ledger of `n` statuses of random commits, posted at `at`, under a few contexts.
fn big_ledger(n: usize, seed: u64, at: Timestamp) -> Ledger {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ledger = Ledger::new();
    for i in 0..n {
        let sha: String = (0..40)
            .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap())
            .collect();
        ledger.record(
            StatusKey {
                host: "github.com".into(),
                repository: format!("acme/service-{}", i % 50),
                sha: CommitSha::from_hex(&sha).unwrap(),
                context: format!("flux/test/Kustomization/team-{}/app", i % 20),
            },
            CommitState::Success,
            "ReconciliationSucceeded",
            at,
        );
    }
    ledger
}

fn configmap_bytes(w: &World, name: &str) -> usize {
    let cm = w.kube.object("configmaps", NAMESPACE, name).unwrap();
    cm["binaryData"]
        .as_object()
        .map(|data| {
            data.values()
                .map(|v| {
                    base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap())
                        .unwrap()
                        .len()
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_ledger_too_large_for_one_configmap_is_sharded_round_trips_and_old_shards_are_collected()
{
    let w = World::start().await;
    let apps = context(NAMESPACE, "apps");
    // Posted two hours ago, so that pruning after 3h keeps them and after 1h drops them.
    let two_hours_ago = Timestamp::now() - jiff::SignedDuration::from_secs(7200);
    let mut seeded = big_ledger(45_000, 1, two_hours_ago);
    let saved = w.store().await.save(&mut seeded).await.unwrap();
    assert!(saved.shards >= 2, "{saved:?}");
    let generation_1: Vec<String> = (0..saved.shards)
        .map(|i| format!("{LEDGER}-1-{i}"))
        .collect();
    let mut expected = vec![LEDGER.to_string()];
    expected.extend(generation_1.iter().cloned());
    assert_eq!(w.ledger_configmaps(), expected);
    for name in &generation_1 {
        assert!(configmap_bytes(&w, name) <= CONFIG_MAP_MAX_BYTES);
    }

    w.put(&[fleet(A), APPS.ready(A)]);
    let mut x = w.exporter(&w.config("ledger: {pruneAfter: 3h}\n")).await;
    assert_eq!(x.ledger().len(), 45_000, "the sharded ledger loads whole");
    assert_eq!(ledger_rows(x.ledger()), ledger_rows(&seeded));
    completed(x.tick().await);

    // The new generation replaced the old shards.
    let stored = w.stored_ledger().await;
    assert_eq!(stored.len(), 45_001);
    let names = w.ledger_configmaps();
    assert!(
        names
            .iter()
            .all(|n| n == LEDGER || n.starts_with(&format!("{LEDGER}-2-"))),
        "{names:?}"
    );
    assert_eq!(names.len(), 1 + saved.shards as usize, "{names:?}");
    let head = w.kube.object("configmaps", NAMESPACE, LEDGER).unwrap();
    assert_eq!(head["data"]["generation"], "2");
    assert_eq!(head["data"]["shards"], saved.shards.to_string());
    assert!(head["binaryData"].is_null(), "{head}");

    // Once the old records are pruned the ledger fits in the head again, and every shard goes.
    drop(x);
    let mut x = w.exporter(&w.config("ledger: {pruneAfter: 1h}\n")).await;
    completed(x.tick().await);
    assert_eq!(w.ledger_configmaps(), [LEDGER]);
    assert_eq!(
        ledger_rows(&w.stored_ledger().await),
        [row(
            "github.com/acme/fleet",
            "A",
            &apps,
            "success",
            "ReconciliationSucceeded"
        )]
    );
    assert_eq!(w.github.requests().len(), 1, "nothing is posted twice");
}

#[tokio::test]
async fn two_writers_of_a_sharded_ledger_never_leave_it_corrupt_or_lose_records() {
    let w = World::start().await;
    let now = Timestamp::now();
    let first = w.store().await;
    let second = w.store().await;
    first.load().await.unwrap();
    second.load().await.unwrap();

    let mut ours = big_ledger(40_000, 2, now);
    let mut theirs = big_ledger(40_000, 3, now);
    first.save(&mut ours).await.unwrap();
    // The second writer has not seen the first's save: same generation, same shard names.
    let saved = second.save(&mut theirs).await.unwrap();
    assert!(saved.conflicts >= 1, "{saved:?}");

    let stored = w.stored_ledger().await;
    assert_eq!(stored.len(), 80_000);
    let mut union = ours.clone();
    union.merge(big_ledger(40_000, 3, now));
    assert_eq!(ledger_rows(&stored), ledger_rows(&union));
}

#[tokio::test]
async fn a_save_that_fails_halfway_leaves_the_previous_ledger_whole_and_the_next_save_cleans_up() {
    let w = World::start().await;
    let store = w.store().await;
    store.load().await.unwrap();
    let mut ledger = big_ledger(40_000, 5, Timestamp::now());
    let saved = store.save(&mut ledger).await.unwrap();
    let before = ledger.clone();

    // Generation 2's shards are written, then the API server fails the switch of the head.
    ledger.record(
        StatusKey {
            host: "github.com".into(),
            repository: "acme/fleet".into(),
            sha: CommitSha::from_hex(A).unwrap(),
            context: context(NAMESPACE, "apps"),
        },
        CommitState::Success,
        "ReconciliationSucceeded",
        Timestamp::now(),
    );
    w.kube.fail(&format!("{CONFIGMAPS}/{LEDGER}"), 500, Some(1));
    let error = store.save(&mut ledger).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "ledger ConfigMap flux-system/{LEDGER}: cannot write: "
        )),
        "{error}"
    );
    assert!(ledger.is_dirty(), "still to be saved");
    let generation_2 = format!("{LEDGER}-2-0");
    assert!(w.ledger_configmaps().contains(&generation_2));
    // Any reader still gets generation 1, whole.
    assert_eq!(ledger_rows(&w.stored_ledger().await), ledger_rows(&before));

    // The next save does not reuse the leftover shards' names; it cleans them up.
    store.save(&mut ledger).await.unwrap();
    let mut expected = vec![LEDGER.to_string()];
    expected.extend((0..saved.shards).map(|i| format!("{LEDGER}-3-{i}")));
    assert_eq!(w.ledger_configmaps(), expected);
    assert_eq!(ledger_rows(&w.stored_ledger().await), ledger_rows(&ledger));
}

#[tokio::test]
async fn a_reader_racing_a_writer_never_takes_the_previous_generations_shards_as_corruption() {
    let w = World::start().await;
    let writer = w.store().await;
    writer.load().await.unwrap();
    let mut ledger = big_ledger(40_000, 4, Timestamp::now());
    writer.save(&mut ledger).await.unwrap();
    let generation_1 = w.kube.object("configmaps", NAMESPACE, LEDGER).unwrap();
    ledger.record(
        StatusKey {
            host: "github.com".into(),
            repository: "acme/fleet".into(),
            sha: CommitSha::from_hex(A).unwrap(),
            context: context(NAMESPACE, "apps"),
        },
        CommitState::Success,
        "ReconciliationSucceeded",
        Timestamp::now(),
    );
    writer.save(&mut ledger).await.unwrap();
    assert!(
        w.kube
            .object("configmaps", NAMESPACE, &format!("{LEDGER}-1-0"))
            .is_none()
    );

    // A reader that got the head of generation 1 just before the writer switched it to
    // generation 2 and deleted generation 1's shards.
    let head = format!("{CONFIGMAPS}/{LEDGER}");
    w.kube.inject(crate::support::fake_kube::Fault {
        path: head.clone(),
        action: crate::support::fake_kube::FaultAction::Respond {
            code: 200,
            body: generation_1.to_string(),
        },
        times: Some(1),
    });
    w.kube.clear_requests();
    let loaded = w.store().await.load().await.unwrap();
    assert_eq!(loaded.discarded, None);
    assert_eq!(loaded.ledger.len(), 40_001, "generation 2, whole");
    assert_eq!(
        w.kube.requests_to(&head).len(),
        3,
        "the stale head, the check that it moved, the current head"
    );
}

#[tokio::test]
async fn a_corrupt_or_incompatible_ledger_configmap_is_warned_about_and_replaced_by_a_fresh_one() {
    for (data, binary, problem) in [
        (
            json!({"format": "1", "generation": "4", "shards": "0", "sha256": "0000"}),
            Some(base64::engine::general_purpose::STANDARD.encode(b"\x1f\x8bnot really gzip")),
            "checksum mismatch",
        ),
        (
            json!({"format": "7", "generation": "4", "shards": "0"}),
            None,
            "format `7` is not 1",
        ),
        (
            json!({"format": "1", "generation": "4", "shards": "3", "sha256": "0000"}),
            None,
            "shard flux-status-exporter-ledger-4-0 is missing",
        ),
    ] {
        let w = World::start().await;
        let mut cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": LEDGER, "namespace": NAMESPACE},
            "data": data,
        });
        if let Some(binary) = binary {
            cm["binaryData"] = json!({"ledger.json.gz": binary});
        }
        w.kube.put(cm).unwrap();
        w.put(&[fleet(B), APPS.ready(A)]);
        let logs = Logs::capture();
        let mut x = w.exporter(&w.config("")).await;
        let warnings = logs.lines_at("WARN");
        assert_eq!(warnings.len(), 1, "{problem}: {warnings:?}");
        assert!(
            warnings[0].contains(&format!(
                "ledger ConfigMap flux-system/{LEDGER}: {problem}; starting fresh"
            )),
            "{warnings:?}"
        );
        completed(x.tick().await);
        assert_eq!(
            brief(&w.github_since(0)),
            expect(&[
                ("B", "pending", says::queued()),
                ("A", "success", says::applied(A)),
            ]),
            "only the current truth is posted"
        );
        assert_eq!(w.stored_ledger().await.len(), 2, "{problem}");
        assert_eq!(logs.lines_at("WARN").len(), 1, "warned once: {problem}");
    }
}

#[tokio::test]
async fn records_of_commits_no_longer_observed_are_pruned_after_the_configured_age() {
    let w = World::start().await;
    let apps = context(NAMESPACE, "apps");
    let two_hours_ago = Timestamp::now() - jiff::SignedDuration::from_secs(7200);
    // Old records: A (still observed: kept however old) and D (gone: pruned).
    let mut seeded = Ledger::new();
    for sha in [A, D] {
        seeded.record(
            StatusKey {
                host: "github.com".into(),
                repository: "acme/fleet".into(),
                sha: CommitSha::from_hex(sha).unwrap(),
                context: apps.clone(),
            },
            CommitState::Success,
            "ReconciliationSucceeded",
            two_hours_ago,
        );
    }
    w.store().await.save(&mut seeded).await.unwrap();
    w.put(&[fleet(A), APPS.ready(A)]);

    let mut x = w.exporter(&w.config("ledger: {pruneAfter: 3h}\n")).await;
    completed(x.tick().await);
    assert_eq!(x.ledger().len(), 2, "younger than pruneAfter: kept");
    let mut x = w.exporter(&w.config("ledger: {pruneAfter: 1h}\n")).await;
    completed(x.tick().await);
    assert_eq!(
        ledger_rows(&w.stored_ledger().await),
        [row(
            "github.com/acme/fleet",
            "A",
            &apps,
            "success",
            "ReconciliationSucceeded"
        )]
    );
    assert_eq!(w.github.requests().len(), 0, "A was already posted");
}

#[tokio::test]
async fn a_reloaded_configuration_keeps_the_ledger_store_and_updates_without_a_conflict() {
    let w = World::start().await;
    w.put(&[fleet(A), APPS.ready(A)]);
    let mut x = w.exporter(&w.config("")).await;
    completed(x.tick().await);
    let logs = Logs::capture();
    let reloaded = w.config("statuses: {description: \"{state}: {summary}\"}\n");
    let parts = w.parts(&reloaded, false).await;
    x.reconfigure(std::sync::Arc::new(reloaded), parts);
    w.put(&[fleet(B)]);
    completed(x.tick().await);
    assert_eq!(
        w.configmap_writes(),
        ["POST ".to_string(), format!("PUT {LEDGER}")],
        "one update, no conflict"
    );
    assert!(
        !logs.text().contains("ledger changed concurrently"),
        "{}",
        logs.text()
    );
    assert_eq!(
        brief(&w.github_since(1)),
        expect(&[("B", "pending", format!("pending: {}", says::queued()))])
    );
}
