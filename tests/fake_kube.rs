//! The fake API server behaves as the real one where later tests rely on it: list metadata,
//! selectors, continue tokens and compaction, Status bodies, optimistic concurrency on
//! ConfigMaps, Secrets and Leases (through kube-rs, as the exporter will use them), watches
//! (events, bookmarks, 410 after compaction, timeouts, broken connections), verb-level RBAC and
//! the counts of what it serialised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::fake_kube::{FakeKube, Served};

fn example() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/cluster-snapshot.yaml"
    ))
}

async fn client(fake: &FakeKube) -> kube::Client {
    let dir = tempfile::tempdir().unwrap();
    fake.connect(dir.path(), Duration::from_secs(10))
        .await
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

/// An open watch response, read event by event as the fake writes them.
struct Watch {
    code: u16,
    headers: http::HeaderMap,
    body: kube::client::Body,
    buffer: Vec<u8>,
    /// Bytes of the body read so far.
    received: usize,
}

impl Watch {
    /// Starts a watch (or any GET whose body is read line by line).
    async fn open(client: &kube::Client, uri: &str) -> Watch {
        let request = http::Request::get(uri)
            .body(kube::client::Body::empty())
            .unwrap();
        let response = client.send(request).await.unwrap();
        let code = response.status().as_u16();
        let headers = response.headers().clone();
        Watch {
            code,
            headers,
            body: response.into_body(),
            buffer: Vec::new(),
            received: 0,
        }
    }

    /// The next line of the body, without its `\n`; `None` once the body ended cleanly. Panics
    /// when nothing arrives within 10 s.
    async fn line(&mut self) -> Option<String> {
        use http_body_util::BodyExt;
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(String::from_utf8(line[..end].to_vec()).unwrap());
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("nothing from the watch within 10 s");
            match frame {
                None => {
                    assert!(self.buffer.is_empty(), "a partial last line");
                    return None;
                }
                Some(frame) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.received += data.len();
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// The next event, parsed.
    async fn event(&mut self) -> Option<Value> {
        let line = self.line().await?;
        Some(serde_json::from_str(&line).unwrap())
    }

    /// The next `n` events.
    async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut events = Vec::new();
        for _ in 0..n {
            events.push(self.event().await.expect("the watch ended early"));
        }
        events
    }
}

/// `(type, namespace/name, metadata.resourceVersion)` of watch events.
fn summary(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            let meta = &e["object"]["metadata"];
            (
                e["type"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    meta["namespace"].as_str().unwrap_or(""),
                    meta["name"].as_str().unwrap_or("")
                ),
                meta["resourceVersion"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn event(kind: &str, name: &str, rv: u64) -> (String, String, String) {
    (kind.to_string(), name.to_string(), rv.to_string())
}

/// A new Kustomization `team-a/NAME`, a copy of `team-a/podinfo`.
fn new_kustomization(fake: &FakeKube, name: &str) -> Value {
    let mut object = fake.object("kustomizations", "team-a", "podinfo").unwrap();
    object["metadata"]["name"] = json!(name);
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    object
}

/// Waits up to 5 s for the fake to count `n` open watches.
fn wait_for_open_watches(fake: &FakeKube, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.open_watches() != n {
        assert!(
            Instant::now() < deadline,
            "{} open watches, not {n}",
            fake.open_watches()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn config_map(namespace: &str, name: &str, labels: Value, data: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": data,
    })
}

#[tokio::test]
async fn a_watch_from_a_lists_resource_version_streams_added_modified_and_deleted_in_order() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let (_, list) = get(&client, KS).await;
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut watch = Watch::open(&client, &format!("{KS}?watch=true&resourceVersion={rv}")).await;
    assert_eq!(watch.code, 200);
    assert_eq!(watch.headers["content-type"], "application/json");
    assert_eq!(watch.headers["transfer-encoding"], "chunked");

    let object = new_kustomization(&fake, "new-app");
    fake.put(object.clone()).unwrap();
    let mut modified = object.clone();
    modified["spec"]["suspend"] = json!(true);
    fake.put(modified).unwrap();
    assert!(fake.delete("kustomizations", "team-a", "new-app"));

    let events = watch.events(3).await;
    assert_eq!(
        summary(&events),
        [
            event("ADDED", "team-a/new-app", rv + 1),
            event("MODIFIED", "team-a/new-app", rv + 2),
            event("DELETED", "team-a/new-app", rv + 3),
        ]
    );
    assert_eq!(events[1]["object"]["spec"]["suspend"], true);
    // DELETED carries the last state at the deletion's resourceVersion.
    let mut last = events[1]["object"].clone();
    last["metadata"]["resourceVersion"] = json!((rv + 3).to_string());
    assert_eq!(events[2]["object"], last);
    assert_eq!(fake.requests().last().unwrap().verb(), "watch");
}

#[tokio::test]
async fn a_watch_from_resource_version_0_begins_with_an_added_event_for_every_object() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let mut watch = Watch::open(&client, &format!("{KS}?watch=1&resourceVersion=0")).await;
    let served = fake.objects("kustomizations");
    assert_eq!(served.len(), 11);
    let initial = watch.events(11).await;
    assert!(initial.iter().all(|e| e["type"] == "ADDED"));
    let objects: Vec<Value> = initial.iter().map(|e| e["object"].clone()).collect();
    assert_eq!(objects, served);
    let rv = fake.resource_version();
    let mut podinfo = fake.object("kustomizations", "team-a", "podinfo").unwrap();
    podinfo["spec"]["suspend"] = json!(true);
    fake.put(podinfo).unwrap();
    assert_eq!(
        summary(&watch.events(1).await),
        [event("MODIFIED", "team-a/podinfo", rv + 1)]
    );

    // Without a resourceVersion too, and a namespaced watch sees its namespace only.
    let mut watch = Watch::open(
        &client,
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/team-a/kustomizations?watch=true",
    )
    .await;
    let names: Vec<String> = summary(&watch.events(2).await)
        .into_iter()
        .map(|(kind, name, _)| format!("{kind} {name}"))
        .collect();
    assert_eq!(
        names,
        ["ADDED team-a/podinfo", "ADDED team-a/podinfo-config"]
    );
    fake.put(new_kustomization(&fake, "elsewhere"))
        .map(|_| ())
        .unwrap();
    let mut other = new_kustomization(&fake, "other-ns");
    other["metadata"]["namespace"] = json!("team-b");
    fake.put(other).unwrap();
    fake.put(new_kustomization(&fake, "last")).unwrap();
    let names: Vec<String> = summary(&watch.events(2).await)
        .into_iter()
        .map(|(kind, name, _)| format!("{kind} {name}"))
        .collect();
    assert_eq!(names, ["ADDED team-a/elsewhere", "ADDED team-a/last"]);
}

#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_gets_one_410_error_event_and_ends() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let old = fake.resource_version();
    fake.put(new_kustomization(&fake, "new-app")).unwrap();
    fake.compact();
    let floor = fake.resource_version();
    assert_eq!(floor, old + 1);
    let mut watch = Watch::open(&client, &format!("{KS}?watch=true&resourceVersion={old}")).await;
    assert_eq!(watch.code, 200);
    assert_eq!(
        watch.line().await.unwrap(),
        format!(
            r#"{{"type":"ERROR","object":{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"too old resource version: {old} ({floor})","reason":"Expired","code":410}}}}"#
        )
    );
    assert_eq!(watch.line().await, None);

    // From the compaction's resourceVersion on, nothing is lost, so the watch is served.
    let mut watch = Watch::open(&client, &format!("{KS}?watch=true&resourceVersion={floor}")).await;
    fake.put(new_kustomization(&fake, "after")).unwrap();
    assert_eq!(
        summary(&watch.events(1).await),
        [event("ADDED", "team-a/after", floor + 1)]
    );
}

#[tokio::test]
async fn a_watch_open_across_a_compaction_goes_on_without_losing_events() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let rv = fake.resource_version();
    let mut watch = Watch::open(&client, &format!("{KS}?watch=true&resourceVersion={rv}")).await;
    wait_for_open_watches(&fake, 1);
    fake.put(new_kustomization(&fake, "before")).unwrap();
    fake.compact();
    fake.put(new_kustomization(&fake, "after")).unwrap();
    assert_eq!(
        summary(&watch.events(2).await),
        [
            event("ADDED", "team-a/before", rv + 1),
            event("ADDED", "team-a/after", rv + 2)
        ]
    );
}

#[tokio::test]
async fn a_malformed_watch_resource_version_is_refused_with_a_400_status() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let (code, status) = get(&client, &format!("{KS}?watch=true&resourceVersion=abc")).await;
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax"
    );
    let (code, status) = get(
        &client,
        &format!("{KS}?watch=true&resourceVersionMatch=NotOlderThan"),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
    );
}

#[tokio::test]
async fn bookmarks_arrive_when_a_watch_is_idle_and_carry_the_current_resource_version() {
    let fake = FakeKube::with_dump(example());
    fake.set_bookmark_interval(Duration::from_millis(200));
    let client = client(&fake).await;
    let rv = fake.resource_version();
    let mut watch = Watch::open(
        &client,
        &format!("{KS}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"),
    )
    .await;
    // A change to another resource moves the resourceVersion on, not this watch's events.
    fake.put(config_map("flux-system", "other", json!({}), json!({})))
        .unwrap();
    let started = Instant::now();
    let bookmark = watch.event().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        bookmark,
        json!({"type": "BOOKMARK", "object": {
            "kind": "Kustomization",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "metadata": {"resourceVersion": (rv + 1).to_string()},
        }})
    );
    // Events go out as they happen, then the watch idles into bookmarks again.
    fake.put(new_kustomization(&fake, "new-app")).unwrap();
    let events = watch.events(2).await;
    assert_eq!(
        summary(&events),
        [
            event("ADDED", "team-a/new-app", rv + 2),
            event("BOOKMARK", "/", rv + 2)
        ]
    );
}

#[tokio::test]
async fn timeout_seconds_ends_the_watch_cleanly_after_that_many_seconds() {
    let fake = FakeKube::with_dump(example());
    // Without allowWatchBookmarks, an idle watch gets none.
    fake.set_bookmark_interval(Duration::from_millis(100));
    let client = client(&fake).await;
    let rv = fake.resource_version();
    let started = Instant::now();
    let mut watch = Watch::open(
        &client,
        &format!("{KS}?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
    )
    .await;
    assert_eq!(watch.line().await, None);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(watch.received, 0);
    wait_for_open_watches(&fake, 0);
}

#[tokio::test]
async fn break_watches_ends_every_open_watch_at_once() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let rv = fake.resource_version();
    let mut cluster = Watch::open(&client, &format!("{KS}?watch=true&resourceVersion={rv}")).await;
    let mut namespaced = Watch::open(
        &client,
        "/api/v1/namespaces/flux-system/configmaps?watch=true",
    )
    .await;
    wait_for_open_watches(&fake, 2);
    let started = Instant::now();
    fake.break_watches();
    assert_eq!(cluster.line().await, None);
    assert_eq!(namespaced.line().await, None);
    assert!(started.elapsed() < Duration::from_secs(1));
    wait_for_open_watches(&fake, 0);

    // Clients watch again, from where they were.
    let mut again = Watch::open(&client, &format!("{KS}?watch=true&resourceVersion={rv}")).await;
    fake.put(new_kustomization(&fake, "new-app")).unwrap();
    assert_eq!(
        summary(&again.events(1).await),
        [event("ADDED", "team-a/new-app", rv + 1)]
    );
}

#[tokio::test]
async fn a_watch_with_a_label_selector_sees_objects_enter_and_leave_the_selection() {
    let fake = FakeKube::start();
    let client = client(&fake).await;
    let rv = fake.resource_version();
    let mut watch = Watch::open(
        &client,
        &format!(
            "/api/v1/namespaces/a/configmaps?watch=true&resourceVersion={rv}&labelSelector=env%3Dprod"
        ),
    )
    .await;
    let prod = json!({"env": "prod"});
    let dev = json!({"env": "dev"});
    fake.put(config_map("b", "x", prod.clone(), json!({})))
        .unwrap(); // rv+1: other namespace
    fake.put(config_map("a", "x", dev.clone(), json!({})))
        .unwrap(); // rv+2: not selected
    fake.put(config_map("a", "x", prod.clone(), json!({})))
        .unwrap(); // rv+3: enters
    fake.put(config_map("a", "x", prod.clone(), json!({"k": "v"})))
        .unwrap(); // rv+4
    fake.put(config_map("a", "x", dev.clone(), json!({"k": "v"})))
        .unwrap(); // rv+5: leaves
    fake.delete("configmaps", "a", "x"); // rv+6: not selected any more
    fake.put(config_map("a", "y", prod.clone(), json!({})))
        .unwrap(); // rv+7
    let events = watch.events(4).await;
    assert_eq!(
        summary(&events),
        [
            event("ADDED", "a/x", rv + 3),
            event("MODIFIED", "a/x", rv + 4),
            event("DELETED", "a/x", rv + 5),
            event("ADDED", "a/y", rv + 7),
        ]
    );
    // Leaving the selection, it is its previous state (still selected) at the new version.
    assert_eq!(events[2]["object"]["metadata"]["labels"], prod);
    assert_eq!(events[2]["object"]["data"], json!({"k": "v"}));
}

#[tokio::test]
async fn send_initial_events_ends_the_current_objects_with_an_annotated_bookmark() {
    let fake = FakeKube::with_dump(example());
    let client = client(&fake).await;
    let mut watch = Watch::open(
        &client,
        &format!(
            "{KS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
        ),
    )
    .await;
    let events = watch.events(12).await;
    assert!(events[..11].iter().all(|e| e["type"] == "ADDED"));
    assert_eq!(
        events[11],
        json!({"type": "BOOKMARK", "object": {
            "kind": "Kustomization",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "metadata": {
                "resourceVersion": fake.resource_version().to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        }})
    );
    let (code, status) = get(&client, &format!("{KS}?watch=true&sendInitialEvents=true")).await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true]"
    );
}

#[tokio::test]
async fn a_denied_verb_gets_the_api_servers_exact_403_and_other_verbs_still_work() {
    let fake = FakeKube::with_dump(example());
    fake.deny_verb("watch", "kustomizations");
    let client = client(&fake).await;
    let (code, status) = get(&client, &format!("{KS}?watch=true")).await;
    assert_eq!(code, 403);
    assert_eq!(
        status,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "kustomizations.kustomize.toolkit.fluxcd.io is forbidden: User \"system:serviceaccount:flux-system:flux-status-exporter\" cannot watch resource \"kustomizations\" in API group \"kustomize.toolkit.fluxcd.io\" at the cluster scope",
            "reason": "Forbidden",
            "details": {"group": "kustomize.toolkit.fluxcd.io", "kind": "kustomizations"},
            "code": 403,
        })
    );
    let (code, status) = get(
        &client,
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/team-a/kustomizations?watch=1",
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        status["message"],
        "kustomizations.kustomize.toolkit.fluxcd.io is forbidden: User \"system:serviceaccount:flux-system:flux-status-exporter\" cannot watch resource \"kustomizations\" in API group \"kustomize.toolkit.fluxcd.io\" in the namespace \"team-a\""
    );
    let (code, _) = get(&client, KS).await;
    assert_eq!(code, 200);
    let (code, _) = get(
        &client,
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/team-a/kustomizations/podinfo",
    )
    .await;
    assert_eq!(code, 200);

    fake.deny_verb("get", "configmaps");
    let (code, status) = get(&client, "/api/v1/namespaces/flux-system/configmaps/x").await;
    assert_eq!(code, 403);
    assert_eq!(
        status["message"],
        "configmaps is forbidden: User \"system:serviceaccount:flux-system:flux-status-exporter\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"flux-system\""
    );
    assert_eq!(
        status["details"],
        json!({"kind": "configmaps", "name": "x"})
    );
    let requests = fake.requests();
    let verbs: Vec<&str> = requests.iter().map(|r| r.verb()).collect();
    assert_eq!(verbs, ["watch", "watch", "list", "get", "get"]);
}

#[tokio::test]
async fn served_counts_objects_of_lists_and_watch_events_but_not_bookmarks() {
    let fake = FakeKube::with_dump(example());
    fake.set_bookmark_interval(Duration::from_millis(500));
    let client = client(&fake).await;
    fake.reset_served();
    let request = http::Request::get(KS)
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    use http_body_util::BodyExt;
    let list = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        fake.served(),
        Served {
            objects: 11,
            bytes: list.len() as u64,
            watch_events: 0,
            bookmarks: 0
        }
    );

    let mut watch = Watch::open(
        &client,
        &format!("{KS}?watch=true&resourceVersion=0&allowWatchBookmarks=true"),
    )
    .await;
    watch.events(11).await;
    fake.put(new_kustomization(&fake, "new-app")).unwrap();
    assert_eq!(watch.event().await.unwrap()["type"], "ADDED");
    assert_eq!(watch.event().await.unwrap()["type"], "BOOKMARK");
    fake.break_watches();
    assert_eq!(watch.line().await, None);
    wait_for_open_watches(&fake, 0);
    assert_eq!(
        fake.served(),
        Served {
            objects: 11 + 12,
            bytes: (list.len() + watch.received) as u64,
            watch_events: 12,
            bookmarks: 1
        }
    );
    fake.reset_served();
    assert_eq!(fake.served(), Served::default());
}

#[tokio::test]
async fn a_watch_is_written_as_chunked_json_lines_and_closed_when_its_client_disconnects() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeKube::with_dump(example());
    let mut tcp = tokio::net::TcpStream::connect(fake.addr).await.unwrap();
    tcp.write_all(format!("GET {KS}?watch=true HTTP/1.1\r\nHost: fake\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0u8; 4096];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0);
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("\r\ncontent-type: application/json\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{text}"
    );
    // The first chunk is the first event's line.
    let first = fake.objects("kustomizations")[0].to_string();
    let line = format!("{{\"type\":\"ADDED\",\"object\":{first}}}\n");
    assert!(
        text.contains(&format!("\r\n\r\n{:X}\r\n{line}\r\n", line.len())),
        "{text}"
    );
    wait_for_open_watches(&fake, 1);
    // Unlike a hyper client dropping a response, which closes the connection only when the
    // next chunk arrives.
    drop(tcp);
    wait_for_open_watches(&fake, 0);
}
