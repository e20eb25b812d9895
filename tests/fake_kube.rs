//! The fake API server behaves as the real one where later tests rely on it: list metadata,
//! selectors, continue tokens and compaction, Status bodies, and optimistic concurrency on
//! ConfigMaps, Secrets and Leases (through kube-rs, as the exporter will use them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use flux_status_exporter::cluster::client::{ConnectOptions, connect};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::fake_kube::FakeKube;

fn example() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/cluster-snapshot.yaml"
    ))
}

async fn client(fake: &FakeKube) -> kube::Client {
    let dir = tempfile::tempdir().unwrap();
    connect(&ConnectOptions {
        kubeconfig: Some(fake.write_kubeconfig(dir.path())),
        context: None,
        request_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap()
    .client
}

/// GET a path; the status code and the JSON body.
async fn get(client: &kube::Client, uri: &str) -> (u16, Value) {
    let request = http::Request::get(uri)
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    let code = response.status().as_u16();
    use http_body_util::BodyExt;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&body).unwrap())
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

const KS: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";

#[tokio::test]
async fn a_paged_list_carries_continue_remaining_item_count_and_resource_version() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let (code, first) = get(&client, &format!("{KS}?limit=5")).await;
    assert_eq!(code, 200);
    assert_eq!(first["kind"], "KustomizationList");
    assert_eq!(first["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
    assert_eq!(first["metadata"]["remainingItemCount"], 6);
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    // A change after the first page is not seen by the rest of this list.
    fake.delete("kustomizations", "team-b", "team-b-app");
    let (_, second) = get(&client, &format!("{KS}?limit=5&continue={token}")).await;
    assert_eq!(second["metadata"]["resourceVersion"], rv.as_str());
    assert_eq!(second["metadata"]["remainingItemCount"], 1);
    let token = second["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, last) = get(&client, &format!("{KS}?limit=5&continue={token}")).await;
    assert_eq!(last["metadata"].get("continue"), None);
    assert_eq!(last["metadata"].get("remainingItemCount"), None);
    let all: Vec<String> = [first, second, last].iter().flat_map(names).collect();
    assert_eq!(all.len(), 11);
    assert!(all.contains(&"team-b/team-b-app".to_string()));
    let (_, fresh) = get(&client, KS).await;
    assert_eq!(names(&fresh).len(), 10);
}

#[tokio::test]
async fn a_continue_token_from_before_compaction_gets_410_gone_as_a_status() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let (_, first) = get(&client, &format!("{KS}?limit=5")).await;
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    fake.compact();
    let (code, status) = get(&client, &format!("{KS}?limit=5&continue={token}")).await;
    assert_eq!(code, 410);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["code"], 410);
}

#[tokio::test]
async fn label_selectors_support_equality_absence_and_set_membership() {
    let fake = FakeKube::start();
    for (name, labels) in [
        ("a", json!({"env": "prod", "team": "x"})),
        ("b", json!({"env": "dev"})),
        ("c", json!({"env": "test", "sharding.fluxcd.io/key": "s1"})),
        ("d", json!({})),
    ] {
        fake.put(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "labels": labels},
        }))
        .unwrap();
    }
    let client = client(&fake).await;
    for (selector, expected) in [
        ("env%3Dprod", vec!["ns/a"]),
        ("env%3D%3Dprod", vec!["ns/a"]),
        ("env%21%3Dprod", vec!["ns/b", "ns/c", "ns/d"]),
        ("%21sharding.fluxcd.io%2Fkey", vec!["ns/a", "ns/b", "ns/d"]),
        ("env+in+%28dev%2Ctest%29", vec!["ns/b", "ns/c"]),
        ("env%20notin%20(dev,test)", vec!["ns/a", "ns/d"]),
        ("team", vec!["ns/a"]),
    ] {
        let (code, list) = get(
            &client,
            &format!("/api/v1/namespaces/ns/configmaps?labelSelector={selector}"),
        )
        .await;
        assert_eq!(code, 200, "{selector}");
        assert_eq!(names(&list), expected, "{selector}");
    }
    let (code, status) = get(&client, "/api/v1/configmaps?labelSelector=env%20in%20(").await;
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
}

#[tokio::test]
async fn a_selected_page_is_filled_to_the_limit_and_omits_remaining_item_count() {
    let fake = FakeKube::start();
    for i in 0..10 {
        fake.put(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm{i}"), "namespace": "ns", "labels": {"odd": (i % 2).to_string()}},
        }))
        .unwrap();
    }
    let client = client(&fake).await;
    let (_, page) = get(&client, "/api/v1/configmaps?limit=2&labelSelector=odd%3D1").await;
    assert_eq!(names(&page), ["ns/cm1", "ns/cm3"]);
    assert!(page["metadata"]["continue"].is_string());
    assert_eq!(page["metadata"].get("remainingItemCount"), None);
}

#[tokio::test]
async fn discovery_lists_the_served_groups_and_resources() {
    let fake = FakeKube::start();
    fake.uninstall("buckets");
    let client = client(&fake).await;
    let (_, groups) = get(&client, "/apis").await;
    let group_names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        group_names,
        [
            "coordination.k8s.io",
            "helm.toolkit.fluxcd.io",
            "kustomize.toolkit.fluxcd.io",
            "source.toolkit.fluxcd.io"
        ]
    );
    let (_, resources) = get(&client, "/apis/source.toolkit.fluxcd.io/v1").await;
    let mut plurals: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    plurals.sort();
    assert_eq!(
        plurals,
        [
            "externalartifacts",
            "gitrepositories",
            "helmcharts",
            "helmrepositories",
            "ocirepositories"
        ]
    );
    let (code, status) = get(&client, "/apis/source.toolkit.fluxcd.io/v1/buckets").await;
    assert_eq!(code, 404);
    assert_eq!(
        status["message"],
        "the server could not find the requested resource"
    );
    let (_, core) = get(&client, "/api/v1").await;
    assert_eq!(core["groupVersion"], "v1");
}

#[tokio::test]
async fn config_maps_are_created_once_and_updated_only_at_their_current_resource_version() {
    let fake = FakeKube::start();
    let api: Api<ConfigMap> = Api::namespaced(client(&fake).await, "flux-system");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("ledger".into());
    cm.data = Some([("k".to_string(), "v1".to_string())].into());
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();

    let err = api.create(&PostParams::default(), &cm).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.message, "configmaps \"ledger\" already exists");

    let mut next = created.clone();
    next.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = api
        .replace("ledger", &PostParams::default(), &next)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );

    // A writer holding the old resourceVersion loses.
    let err = api
        .replace("ledger", &PostParams::default(), &next)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on configmaps \"ledger\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let patched = api
        .patch(
            "ledger",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"other": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap().get("k").map(String::as_str),
        Some("v2")
    );

    let err = api
        .patch(
            "ledger",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": rv}, "data": {"k": "v3"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err}"
    );

    let err = api.get("missing").await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "configmaps \"missing\" not found");
}

#[tokio::test]
async fn leases_and_secrets_are_served_with_the_same_rules() {
    let fake = FakeKube::start();
    let client = client(&fake).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "flux-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "flux-status-exporter"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut taken = created.clone();
    taken.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace("flux-status-exporter", &PostParams::default(), &taken)
        .await
        .unwrap();
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("c".into());
    let err = leases
        .replace("flux-status-exporter", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err}"
    );
    let current = leases.get("flux-status-exporter").await.unwrap();
    assert_eq!(current.spec.unwrap().holder_identity.as_deref(), Some("b"));

    let mut secret = Secret::default();
    secret.metadata.name = Some("token".into());
    secret.string_data = None;
    secret.data = Some(
        [(
            "token".to_string(),
            k8s_openapi::ByteString(b"s3cret".to_vec()),
        )]
        .into(),
    );
    fake.put(
        serde_json::to_value(&secret)
            .map(|mut v| {
                v["apiVersion"] = "v1".into();
                v["kind"] = "Secret".into();
                v["metadata"]["namespace"] = "flux-system".into();
                v
            })
            .unwrap(),
    )
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, "flux-system");
    let read = secrets.get("token").await.unwrap();
    assert_eq!(read.data.unwrap()["token"].0, b"s3cret");
}

#[tokio::test]
async fn injected_faults_apply_to_their_path_only_and_for_as_many_requests_as_asked() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    fake.fail(KS, 503, Some(1));
    let (code, status) = get(&client, KS).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    let (code, _) = get(&client, KS).await;
    assert_eq!(code, 200);
    fake.fail(
        "/apis/helm.toolkit.fluxcd.io/v2/namespaces/team-a/helmreleases",
        403,
        None,
    );
    let (code, status) = get(
        &client,
        "/apis/helm.toolkit.fluxcd.io/v2/namespaces/team-a/helmreleases",
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        status["message"],
        "helmreleases.helm.toolkit.fluxcd.io is forbidden: User \"system:serviceaccount:flux-system:flux-status-exporter\" cannot list resource \"helmreleases\" in API group \"helm.toolkit.fluxcd.io\" in the namespace \"team-a\""
    );
    let (code, _) = get(&client, "/apis/helm.toolkit.fluxcd.io/v2/helmreleases").await;
    assert_eq!(code, 200);
    let logged: Vec<(String, String)> = fake
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(logged.len(), 4);
    assert_eq!(logged[0], ("GET".to_string(), KS.to_string()));
}
