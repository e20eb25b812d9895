//! `kube.read: watch` against the fake API server: the first sync equals a list, changes reach
//! the next read without listing, an idle watch costs the server no object, an expired
//! resourceVersion lists again, a broken watch fails reads until it is back, and a missing
//! `watch` verb is named. A seeded random sequence of changes and forced expiries always ends in
//! the snapshot a fresh list gives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use flux_status_exporter::cluster::Snapshot;
use flux_status_exporter::cluster::client::Connection;
use flux_status_exporter::cluster::kube::{KubeReader, RetryPolicy};
use flux_status_exporter::cluster::watch::ClusterWatch;
use flux_status_exporter::config::Config;
use serde_json::{Value, json};
use support::fake_kube::{FakeKube, Fault, FaultAction};

const KS_PATH: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";

fn example() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/cluster-snapshot.yaml"
    ))
}

const FAST_RETRY: RetryPolicy = RetryPolicy {
    max_retries: 2,
    initial_backoff: Duration::from_millis(1),
    max_backoff: Duration::from_millis(5),
};

struct Setup {
    fake: FakeKube,
    config: Config,
    connection: Connection,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start(fake: FakeKube) -> Setup {
        let config =
            Config::from_yaml("kube: {read: watch, requestTimeout: 5s}\n", "test.yaml").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let connection = fake.connect(dir.path(), config.kube.request_timeout).await;
        fake.set_bookmark_interval(Duration::from_millis(200));
        Setup {
            fake,
            config,
            connection,
            _dir: dir,
        }
    }

    fn reader(&self) -> KubeReader {
        KubeReader::new(self.connection.client.clone(), &self.config).with_retry(FAST_RETRY)
    }

    fn watch(&self) -> ClusterWatch {
        ClusterWatch::start(self.reader(), self.connection.watch_client.clone())
    }

    /// What a fresh paged list reads now.
    async fn listed(&self) -> Snapshot {
        self.reader().read().await.unwrap().snapshot
    }

    /// Reads the watch until it gives what a list gives (the watch is eventually consistent:
    /// events arrive within milliseconds on loopback); the last read on failure.
    async fn converge(&self, watch: &ClusterWatch) -> Snapshot {
        let expected = self.listed().await;
        let mut last = None;
        for _ in 0..100 {
            match watch.read().await {
                Ok(outcome) if outcome.snapshot == expected => return outcome.snapshot,
                other => last = Some(other.map(|o| o.snapshot).map_err(|e| e.to_string())),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the watch never equalled a list: expected {expected:?}, last read {last:?}");
    }

    fn list_requests(&self) -> usize {
        self.fake
            .requests_to(KS_PATH)
            .iter()
            .filter(|r| r.param("watch").is_none())
            .count()
    }

    fn watch_requests(&self) -> Vec<support::fake_kube::RecordedRequest> {
        self.fake
            .requests_to(KS_PATH)
            .into_iter()
            .filter(|r| r.param("watch").is_some())
            .collect()
    }
}

/// The error of the first read that fails, within 4 s.
async fn read_error(watch: &ClusterWatch) -> String {
    for _ in 0..200 {
        if let Err(e) = watch.read().await {
            return e.to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("every read succeeded: the watch never broke");
}

fn kustomization(namespace: &str, name: &str, suspend: bool) -> Value {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": "10m",
            "path": "./apps",
            "prune": true,
            "suspend": suspend,
            "sourceRef": {"kind": "GitRepository", "name": "fleet"}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sync_is_one_streaming_list_and_equals_a_list() {
    let s = Setup::start(FakeKube::with_dump(example())).await;
    let watch = s.watch();
    let read = watch.read().await.unwrap();
    assert_eq!(
        s.list_requests(),
        0,
        "nothing listed: the state came in the watch"
    );
    assert_eq!(read.snapshot, s.listed().await);
    assert!(read.snapshot.object_count() > 0);
    let watches = s.watch_requests();
    assert_eq!(watches.len(), 1, "{watches:?}");
    for (param, value) in [
        ("sendInitialEvents", "true"),
        ("resourceVersionMatch", "NotOlderThan"),
        ("allowWatchBookmarks", "true"),
    ] {
        assert_eq!(watches[0].param(param), Some(value), "{param}");
    }
    assert_eq!(watches[0].param("resourceVersion"), None);
    let timeout: u64 = watches[0].param("timeoutSeconds").unwrap().parse().unwrap();
    assert!((300..=600).contains(&timeout), "{timeout}");
    let verbs: Vec<&str> = read
        .requests
        .iter()
        .filter(|r| r.resource == "kustomizations")
        .map(|r| r.verb)
        .collect();
    assert_eq!(verbs, ["watch"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_streaming_lists_is_listed_then_watched_from_the_lists_version() {
    let s = Setup::start(FakeKube::with_dump(example())).await;
    // What an API server without the WatchList feature answers.
    s.fake.inject(Fault {
        path: KS_PATH.into(),
        action: FaultAction::Respond {
            code: 422,
            body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled", "reason": "Invalid", "code": 422}).to_string(),
        },
        times: Some(1),
    });
    let watch = s.watch();
    let read = watch.read().await.unwrap();
    assert_eq!(s.list_requests(), 1);
    assert_eq!(read.snapshot, s.listed().await);
    while s.watch_requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let watches = s.watch_requests();
    assert_eq!(watches[0].param("sendInitialEvents"), Some("true"));
    let list_version = s.fake.resource_version().to_string();
    assert_eq!(
        watches[1].param("resourceVersion"),
        Some(list_version.as_str())
    );
    assert_eq!(watches[1].param("sendInitialEvents"), None);
    assert_eq!(watches[1].param("allowWatchBookmarks"), Some("true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_deletes_and_re_creations_reach_the_next_read_without_listing_again() {
    let s = Setup::start(FakeKube::start()).await;
    for name in ["a", "b", "c"] {
        s.fake.put(kustomization("apps", name, false)).unwrap();
    }
    let watch = s.watch();
    s.converge(&watch).await;
    let lists = s.list_requests();

    s.fake.put(kustomization("apps", "a", true)).unwrap();
    assert!(s.fake.delete("kustomizations", "apps", "b"));
    assert!(s.fake.delete("kustomizations", "apps", "c"));
    s.fake.put(kustomization("apps", "c", true)).unwrap();
    s.fake.put(kustomization("other", "d", false)).unwrap();
    let read = s.converge(&watch).await;
    let seen: Vec<(&str, &str, bool)> = read
        .kustomizations
        .iter()
        .map(|k| {
            (
                k.metadata.namespace.as_str(),
                k.metadata.name.as_str(),
                k.spec.suspend,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("apps", "a", true),
            ("apps", "c", true),
            ("other", "d", false)
        ]
    );
    // `converge` lists to compare; the watch itself listed nothing more.
    assert_eq!(s.list_requests() - lists, 1);
    assert_eq!(s.watch_requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_makes_the_server_serialise_no_object_only_bookmarks() {
    let s = Setup::start(FakeKube::with_dump(example())).await;
    let watch = s.watch();
    watch.read().await.unwrap();
    s.fake.reset_served();
    tokio::time::sleep(Duration::from_millis(700)).await;
    watch.read().await.unwrap();
    let served = s.fake.served();
    assert_eq!(served.objects, 0, "{served:?}");
    assert!(served.bookmarks >= 1, "{served:?}");

    s.fake.put(kustomization("apps", "changed", false)).unwrap();
    s.converge(&watch).await;
    // One watch event for the change; `converge`'s own list is counted too.
    let listed = s.listed().await.object_count() as u64;
    let served = s.fake.served();
    assert_eq!(served.watch_events, 1, "{served:?}");
    assert_eq!(served.objects - 1, 2 * listed, "{served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_resource_version_reads_the_state_again_and_ends_equal_to_a_list() {
    let s = Setup::start(FakeKube::start()).await;
    s.fake.put(kustomization("apps", "a", false)).unwrap();
    let watch = s.watch();
    s.converge(&watch).await;
    let lists = s.list_requests();
    // Changes while no watch is open (the watch is broken and its renewals refused until the
    // read says so), then the history is compacted: resuming gets 410.
    s.fake.inject(Fault {
        path: KS_PATH.into(),
        action: FaultAction::Status(503),
        times: None,
    });
    s.fake.break_watches();
    read_error(&watch).await;
    s.fake.put(kustomization("apps", "b", true)).unwrap();
    assert!(s.fake.delete("kustomizations", "apps", "a"));
    s.fake.compact();
    s.fake.clear_faults();
    let read = s.converge(&watch).await;
    assert_eq!(read.kustomizations.len(), 1);
    let streams = s
        .watch_requests()
        .iter()
        .filter(|r| r.param("sendInitialEvents").is_some())
        .count();
    assert_eq!(
        streams, 2,
        "the state was read again, by a new streaming list"
    );
    assert_eq!(s.list_requests() - lists, 1, "converge's own list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_watch_fails_reads_as_a_half_read_cluster_until_it_is_back() {
    let s = Setup::start(FakeKube::start()).await;
    s.fake.put(kustomization("apps", "a", false)).unwrap();
    let watch = s.watch();
    s.converge(&watch).await;
    s.fake.inject(Fault {
        path: KS_PATH.into(),
        action: FaultAction::Status(500),
        times: None,
    });
    s.fake.break_watches();
    let error = read_error(&watch).await;
    assert_eq!(
        error,
        "the watch of kustomizations.kustomize.toolkit.fluxcd.io in all namespaces is not in sync: its watch broke (the API server answered 500: Internal error occurred: injected fault) and is being re-established"
    );
    s.fake.clear_faults();
    s.converge(&watch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_watch_verb_the_read_names_the_verb_and_suggests_read_list() {
    let s = Setup::start(FakeKube::start()).await;
    s.fake.deny_verb("watch", "kustomizations");
    let watch = s.watch();
    assert_eq!(
        read_error(&watch).await,
        "cannot watch kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: RBAC refused verb `watch` on resource `kustomizations` in API group `kustomize.toolkit.fluxcd.io` (403 Forbidden); `kube.read: watch` needs `watch` beside `get` and `list` in the exporter's ClusterRole (deploy/components/read-watch), or set `kube.read: list`: kustomizations.kustomize.toolkit.fluxcd.io is forbidden: User \"system:serviceaccount:flux-system:flux-status-exporter\" cannot watch resource \"kustomizations\" in API group \"kustomize.toolkit.fluxcd.io\" at the cluster scope"
    );
}

/// A small deterministic generator, so a failing sequence can be replayed from its seed.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_random_creates_updates_deletes_and_forced_expiries_the_store_equals_a_list() {
    for seed in 1..=6u64 {
        let s = Setup::start(FakeKube::start()).await;
        let mut draw = Draw(seed);
        let watch = s.watch();
        let names = ["n0", "n1", "n2", "n3", "n4", "n5"];
        let namespaces = ["apps", "infra"];
        for step in 0..40 {
            let namespace = namespaces[draw.below(2) as usize];
            let name = names[draw.below(names.len() as u64) as usize];
            match draw.below(10) {
                0..=4 => {
                    s.fake
                        .put(kustomization(namespace, name, draw.below(2) == 0))
                        .unwrap();
                }
                5..=7 => {
                    s.fake.delete("kustomizations", namespace, name);
                }
                8 => s.fake.break_watches(),
                _ => {
                    s.fake.break_watches();
                    s.fake.compact();
                }
            }
            if step % 10 == 9 {
                s.converge(&watch).await;
            }
        }
        let read = s.converge(&watch).await;
        assert_eq!(read, s.listed().await, "seed {seed}");
    }
}
