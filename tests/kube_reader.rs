//! The kube reader against the fake API server: paging, selectors, and every failure mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use flux_status_exporter::cluster::Snapshot;
use flux_status_exporter::cluster::client::{ConnectOptions, connect};
use flux_status_exporter::cluster::dump::{DumpFilter, read_dump_file};
use flux_status_exporter::cluster::kube::{
    KubeReader, ReadError, ReadErrorKind, ReadOutcome, RetryPolicy,
};
use flux_status_exporter::config::Config;
use flux_status_exporter::flux::FluxKind;
use serde_json::json;
use support::fake_kube::{FakeKube, Fault, FaultAction, RecordedRequest};

const KS_PATH: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";
const HR_PATH: &str = "/apis/helm.toolkit.fluxcd.io/v2/helmreleases";

fn example() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/cluster-snapshot.yaml"
    ))
}

fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml, "test.yaml").unwrap()
}

/// Short backoffs so that retry tests run quickly; the number of retries is what they check.
const FAST_RETRY: RetryPolicy = RetryPolicy {
    max_retries: 2,
    initial_backoff: Duration::from_millis(1),
    max_backoff: Duration::from_millis(5),
};

async fn read(fake: &FakeKube, config: &Config) -> Result<ReadOutcome, ReadError> {
    let dir = tempfile::tempdir().unwrap();
    let connection = fake.connect(dir.path(), config.kube.request_timeout).await;
    KubeReader::new(connection.client, config)
        .with_retry(FAST_RETRY)
        .read()
        .await
}

fn dump_snapshot(config: &Config) -> Snapshot {
    let filter = DumpFilter {
        namespaces: &config.namespaces,
        selector: &config.label_selector,
    };
    read_dump_file(example(), filter).unwrap().0
}

fn queries(requests: &[RecordedRequest]) -> Vec<Vec<(String, String)>> {
    requests.iter().map(|r| r.query.clone()).collect()
}

fn codes(
    outcome: &[flux_status_exporter::cluster::kube::KubeRequest],
    resource: &str,
) -> Vec<Option<u16>> {
    outcome
        .iter()
        .filter(|r| r.resource == resource)
        .map(|r| r.code)
        .collect()
}

#[tokio::test]
async fn the_kube_reader_and_the_dump_reader_produce_the_same_snapshot() {
    let fake = FakeKube::with_dump(example());
    for yaml in [
        "",
        "kube: {pageSize: 2}",
        "namespaces: [team-a, edge]\nkube: {pageSize: 1}",
        "labelSelector: '!sharding.fluxcd.io/key'",
    ] {
        let config = config(yaml);
        let outcome = read(&fake, &config).await.unwrap();
        assert_eq!(outcome.snapshot, dump_snapshot(&config), "config: {yaml}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_from_the_cache_is_one_unchunked_request_per_collection_reading_what_pages_read() {
    let fake = FakeKube::with_dump(example());
    for yaml in [
        "kube: {listFromCache: true}",
        "namespaces: [team-a, edge]\nlabelSelector: '!sharding.fluxcd.io/key'\nkube: {listFromCache: true}",
    ] {
        let config = config(yaml);
        let outcome = read(&fake, &config).await.unwrap();
        assert_eq!(outcome.snapshot, dump_snapshot(&config), "config: {yaml}");
    }
    fake.clear_requests();
    let outcome = read(&fake, &config("kube: {listFromCache: true}"))
        .await
        .unwrap();
    assert_eq!(outcome.snapshot.kustomizations.len(), 11);
    let requests = fake.requests_to(KS_PATH);
    assert_eq!(
        queries(&requests),
        [vec![
            ("resourceVersion".to_string(), "0".to_string()),
            (
                "resourceVersionMatch".to_string(),
                "NotOlderThan".to_string()
            ),
        ]]
    );
    assert_eq!(fake.requests().len(), 6, "one request per kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_from_the_cache_retries_a_server_error_and_skips_a_kind_not_served() {
    let fake = FakeKube::with_dump(example());
    fake.fail(KS_PATH, 503, Some(1));
    fake.uninstall("helmreleases");
    let outcome = read(&fake, &config("kube: {listFromCache: true}"))
        .await
        .unwrap();
    assert_eq!(outcome.snapshot.kustomizations.len(), 11);
    assert_eq!(
        codes(&outcome.requests, "kustomizations"),
        [Some(503), Some(200)]
    );
    assert_eq!(outcome.snapshot.missing_kinds, [FluxKind::HelmRelease]);
}

#[tokio::test]
async fn lists_are_paged_with_the_configured_limit_until_no_continue_token_is_returned() {
    let fake = FakeKube::with_dump(example());
    let outcome = read(&fake, &config("kube: {pageSize: 4}")).await.unwrap();
    assert_eq!(outcome.snapshot.kustomizations.len(), 11);
    let requests = fake.requests_to(KS_PATH);
    let limits: Vec<Option<&str>> = requests.iter().map(|r| r.param("limit")).collect();
    assert_eq!(limits, [Some("4"), Some("4"), Some("4")]);
    let continues: Vec<bool> = requests
        .iter()
        .map(|r| r.param("continue").is_some())
        .collect();
    assert_eq!(continues, [false, true, true]);
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.query.len() <= 2)
    );
    assert_eq!(
        codes(&outcome.requests, "kustomizations"),
        [Some(200), Some(200), Some(200)]
    );
    // One list of each of the six kinds: no page is requested twice.
    assert_eq!(outcome.requests.len(), fake.requests().len());
    assert!(outcome.requests.iter().all(|r| r.verb == "list"));
}

#[tokio::test]
async fn configured_namespaces_are_read_with_namespaced_paths_and_the_label_selector() {
    let fake = FakeKube::with_dump(example());
    let config = config(
        "namespaces: [team-a, edge]\nlabelSelector: '!sharding.fluxcd.io/key,env notin (dev)'",
    );
    read(&fake, &config).await.unwrap();
    let mut paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    paths.sort();
    let mut expected = Vec::new();
    for kind in FluxKind::ALL {
        for ns in ["edge", "team-a"] {
            expected.push(format!(
                "/apis/{}/namespaces/{ns}/{}",
                kind.api_version(),
                kind.plural()
            ));
        }
    }
    expected.sort();
    assert_eq!(paths, expected);
    assert!(fake.requests().iter().all(|r| {
        r.query
            == [
                ("limit".to_string(), "500".to_string()),
                (
                    "labelSelector".to_string(),
                    "!sharding.fluxcd.io/key,env notin (dev)".to_string(),
                ),
            ]
    }));
}

#[tokio::test]
async fn a_missing_crd_skips_that_kind_and_the_others_are_read() {
    let fake = FakeKube::with_dump(example());
    fake.uninstall("helmreleases");
    let outcome = read(&fake, &config("")).await.unwrap();
    assert_eq!(outcome.snapshot.missing_kinds, [FluxKind::HelmRelease]);
    assert!(outcome.snapshot.helm_releases.is_empty());
    assert_eq!(outcome.snapshot.kustomizations.len(), 11);
    assert_eq!(codes(&outcome.requests, "helmreleases"), [Some(404)]);
}

#[tokio::test]
async fn forbidden_lists_fail_naming_the_verb_resource_and_scope_rbac_refused() {
    let fake = FakeKube::with_dump(example());
    fake.fail(HR_PATH, 403, None);
    let err = read(&fake, &config("")).await.unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::Forbidden);
    assert_eq!(err.kind().as_str(), "forbidden");
    assert_eq!(
        err.to_string(),
        "cannot list helmreleases.helm.toolkit.fluxcd.io in all namespaces: RBAC refused verb `list` on resource `helmreleases` in API group `helm.toolkit.fluxcd.io` (403 Forbidden); add the rule {apiGroups: [\"helm.toolkit.fluxcd.io\"], resources: [\"helmreleases\"], verbs: [\"list\"]} to the exporter's ClusterRole and bind it with a ClusterRoleBinding: helmreleases.helm.toolkit.fluxcd.io is forbidden: User \"system:serviceaccount:flux-system:flux-status-exporter\" cannot list resource \"helmreleases\" in API group \"helm.toolkit.fluxcd.io\" at the cluster scope"
    );
    assert_eq!(fake.requests_to(HR_PATH).len(), 1, "a 403 is not retried");
    assert_eq!(codes(&err.requests, "helmreleases"), [Some(403)]);
}

#[tokio::test]
async fn rejected_credentials_fail_with_401_without_showing_the_token() {
    let fake = FakeKube::with_dump(example());
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_kubeconfig(dir.path());
    fake.require_token("the-right-token");
    let connection = connect(&ConnectOptions {
        kubeconfig: Some(path),
        context: None,
        request_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    let err = KubeReader::new(connection.client, &config(""))
        .read()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::Unauthorized);
    assert_eq!(
        err.to_string(),
        "cannot list gitrepositories.source.toolkit.fluxcd.io in all namespaces: the API server did not accept the credentials (401 Unauthorized); check the kubeconfig user or the service-account token: Unauthorized"
    );
    assert!(!format!("{err:?}").contains("fake-token"));
}

#[tokio::test]
async fn the_bearer_token_of_the_kubeconfig_is_sent() {
    let fake = FakeKube::with_dump(example());
    fake.require_token("the-right-token");
    let outcome = read(&fake, &config("")).await.unwrap();
    assert_eq!(outcome.snapshot.kustomizations.len(), 11);
}

#[tokio::test]
async fn an_expired_continue_token_restarts_that_list_from_the_beginning_once() {
    let fake = FakeKube::with_dump(example());
    fake.inject(Fault {
        path: KS_PATH.to_string(),
        action: FaultAction::ExpireContinue,
        times: Some(1),
    });
    let config = config("kube: {pageSize: 4}");
    let outcome = read(&fake, &config).await.unwrap();
    assert_eq!(
        outcome.snapshot,
        dump_snapshot(&config),
        "no object twice, none lost"
    );
    let continues: Vec<bool> = fake
        .requests_to(KS_PATH)
        .iter()
        .map(|r| r.param("continue").is_some())
        .collect();
    assert_eq!(continues, [false, true, false, true, true]);
    assert_eq!(
        codes(&outcome.requests, "kustomizations"),
        [Some(200), Some(410), Some(200), Some(200), Some(200)]
    );
}

#[tokio::test]
async fn a_continue_token_that_expires_again_after_the_restart_fails_the_read() {
    let fake = FakeKube::with_dump(example());
    fake.inject(Fault {
        path: KS_PATH.to_string(),
        action: FaultAction::ExpireContinue,
        times: None,
    });
    let err = read(&fake, &config("kube: {pageSize: 4}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::Gone);
    assert_eq!(
        err.to_string(),
        "cannot list kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: the continue token expired again after restarting the list (410 Gone): The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
    );
    assert_eq!(
        codes(&err.requests, "kustomizations"),
        [Some(200), Some(410), Some(200), Some(410)]
    );
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times_then_fail_the_read() {
    let fake = FakeKube::with_dump(example());
    fake.fail(KS_PATH, 503, None);
    let err = read(&fake, &config("")).await.unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::ServerError);
    assert_eq!(
        err.to_string(),
        "cannot list kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: the API server kept failing (503) after 3 attempt(s): the server is currently unable to handle the request"
    );
    assert_eq!(fake.requests_to(KS_PATH).len(), 3);
    assert_eq!(codes(&err.requests, "kustomizations"), [Some(503); 3]);
}

#[tokio::test]
async fn a_transient_server_error_is_retried_and_the_read_completes() {
    let fake = FakeKube::with_dump(example());
    fake.fail(KS_PATH, 500, Some(2));
    let outcome = read(&fake, &config("")).await.unwrap();
    assert_eq!(outcome.snapshot.kustomizations.len(), 11);
    assert_eq!(
        codes(&outcome.requests, "kustomizations"),
        [Some(500), Some(500), Some(200)]
    );
    assert_eq!(
        queries(&fake.requests_to(KS_PATH)),
        vec![vec![("limit".to_string(), "500".to_string())]; 3],
        "a retry repeats the same request"
    );
}

#[tokio::test]
async fn throttling_is_retried_then_reported_as_too_many_requests() {
    let fake = FakeKube::with_dump(example());
    fake.fail(HR_PATH, 429, None);
    let err = read(&fake, &config("")).await.unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::TooManyRequests);
    assert_eq!(
        err.to_string(),
        "cannot list helmreleases.helm.toolkit.fluxcd.io in all namespaces: the API server kept throttling (429 Too Many Requests) after 3 attempt(s): Too many requests, please try again later."
    );
}

#[tokio::test]
async fn a_server_slower_than_the_request_timeout_fails_the_read_as_a_timeout() {
    let fake = FakeKube::with_dump(example());
    fake.inject(Fault {
        path: KS_PATH.to_string(),
        action: FaultAction::Delay(Duration::from_secs(30)),
        times: None,
    });
    let err = read(&fake, &config("kube: {requestTimeout: 100ms}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::Timeout);
    assert_eq!(
        err.to_string(),
        "cannot list kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: no answer within 100ms, 3 attempt(s)"
    );
    assert_eq!(codes(&err.requests, "kustomizations"), [None, None, None]);
}

#[tokio::test]
async fn a_dropped_connection_is_retried_and_the_read_completes() {
    let fake = FakeKube::with_dump(example());
    fake.inject(Fault {
        path: KS_PATH.to_string(),
        action: FaultAction::Drop,
        times: Some(1),
    });
    let outcome = read(&fake, &config("")).await.unwrap();
    assert_eq!(outcome.snapshot.kustomizations.len(), 11);
    assert_eq!(
        codes(&outcome.requests, "kustomizations"),
        [None, Some(200)]
    );
}

#[tokio::test]
async fn connections_that_keep_dropping_fail_the_read_as_a_transport_error() {
    let fake = FakeKube::with_dump(example());
    fake.inject(Fault {
        path: KS_PATH.to_string(),
        action: FaultAction::Drop,
        times: None,
    });
    let err = read(&fake, &config("")).await.unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::Transport);
    assert!(
        err.to_string().starts_with(
            "cannot list kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: connection failed after 3 attempt(s): "
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_continue_token_that_never_ends_is_capped_by_max_pages() {
    let fake = FakeKube::with_dump(example());
    fake.inject(Fault {
        path: KS_PATH.to_string(),
        action: FaultAction::Respond {
            code: 200,
            body: r#"{"apiVersion":"kustomize.toolkit.fluxcd.io/v1","items":[],"kind":"KustomizationList","metadata":{"continue":"again","resourceVersion":"1"}}"#.to_string(),
        },
        times: None,
    });
    let err = read(&fake, &config("kube: {maxPages: 3}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::TooManyPages);
    assert_eq!(
        err.to_string(),
        "cannot list kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: still not finished after kube.maxPages = 3 pages; the API server keeps returning a continue token"
    );
    assert_eq!(fake.requests_to(KS_PATH).len(), 3);
}

#[tokio::test]
async fn an_answer_that_is_not_a_list_fails_the_read() {
    let fake = FakeKube::with_dump(example());
    fake.inject(Fault {
        path: KS_PATH.to_string(),
        action: FaultAction::Respond {
            code: 200,
            body: "<html>proxy login</html>".to_string(),
        },
        times: None,
    });
    let err = read(&fake, &config("")).await.unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::InvalidResponse);
    assert_eq!(
        err.to_string(),
        "cannot list kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: the answer is not a Kubernetes list: expected value at line 1 column 1"
    );
}

#[tokio::test]
async fn a_bad_request_is_not_retried_and_names_the_server_message() {
    let fake = FakeKube::with_dump(example());
    fake.inject(Fault {
        path: KS_PATH.to_string(),
        action: FaultAction::Respond {
            code: 400,
            body: r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"unable to parse requirement","reason":"BadRequest","code":400}"#.to_string(),
        },
        times: None,
    });
    let err = read(&fake, &config("")).await.unwrap_err();
    assert_eq!(err.kind(), ReadErrorKind::Rejected);
    assert_eq!(
        err.to_string(),
        "cannot list kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: the API server refused the request (400): unable to parse requirement"
    );
    assert_eq!(fake.requests_to(KS_PATH).len(), 1);
}

#[tokio::test]
async fn an_empty_cluster_reads_as_an_empty_snapshot() {
    let fake = FakeKube::start();
    let outcome = read(&fake, &config("")).await.unwrap();
    assert_eq!(outcome.snapshot, Snapshot::default());
    assert_eq!(outcome.requests.len(), 6);
}

#[tokio::test]
async fn objects_that_do_not_fit_the_types_are_recorded_and_the_rest_are_read() {
    let fake = FakeKube::with_dump(example());
    fake.put(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "odd", "namespace": "team-z"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": 7}},
    }))
    .unwrap();
    let outcome = read(&fake, &config("kube: {pageSize: 5}")).await.unwrap();
    assert_eq!(outcome.snapshot.kustomizations.len(), 11);
    assert_eq!(outcome.snapshot.undecodable.len(), 1);
    assert_eq!(
        outcome.snapshot.undecodable[0].to_string(),
        "Kustomization team-z/odd: spec.sourceRef.name: invalid type: integer `7`, expected a string"
    );
}

#[tokio::test]
async fn objects_changed_between_ticks_are_seen_by_the_next_read() {
    let fake = FakeKube::with_dump(example());
    let before = read(&fake, &config("")).await.unwrap();
    assert!(fake.delete("kustomizations", "edge", "tools"));
    let after = read(&fake, &config("")).await.unwrap();
    assert_eq!(
        before.snapshot.kustomizations.len() - 1,
        after.snapshot.kustomizations.len()
    );
    assert!(
        !after
            .snapshot
            .kustomizations
            .iter()
            .any(|k| k.metadata.namespace == "edge" && k.metadata.name == "tools")
    );
}
