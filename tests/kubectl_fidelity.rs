//! Real `kubectl` against the fake API server: proof that the fake speaks the protocol the
//! exporter's reader is tested with (discovery, lists, label selectors, chunked lists).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::fake_kube::FakeKube;

fn example() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/cluster-snapshot.yaml"
    ))
}

/// Runs kubectl with a private home (so no discovery cache or user config leaks in) and returns
/// its parsed JSON output; `None` when kubectl is not installed.
fn kubectl(fake: &FakeKube, args: &[&str]) -> Option<Value> {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(home.path());
    let output = match Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--server", &fake.base_url, "--request-timeout=30s"])
        .args(args)
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: kubectl is not installed, so the fidelity test cannot run");
            return None;
        }
        Err(e) => panic!("kubectl: {e}"),
    };
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().unwrap().clone()
}

fn name_of(object: &Value) -> String {
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap(),
        object["metadata"]["namespace"].as_str().unwrap(),
        object["metadata"]["name"].as_str().unwrap()
    )
}

#[test]
fn kubectl_get_all_namespaces_sees_exactly_the_objects_the_fake_serves() {
    let fake = FakeKube::with_dump(example());
    let Some(list) = kubectl(&fake, &["get", "kustomizations", "-A", "-o", "json"]) else {
        return;
    };
    let served = fake.objects("kustomizations");
    assert_eq!(served.len(), 11);
    assert_eq!(items(&list), served);
    let lists: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations")
        .collect();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].param("limit"), Some("500"));
    assert!(
        fake.requests().iter().any(|r| r.path == "/apis"),
        "kubectl found the resource through discovery"
    );
}

#[test]
fn kubectl_paged_and_labelled_gets_see_exactly_the_selected_objects() {
    let fake = FakeKube::with_dump(example());
    // Give a few objects a shard label so the selector has something to exclude.
    for (resource, namespace, name) in [
        ("kustomizations", "team-a", "podinfo"),
        ("helmreleases", "team-a", "redis"),
        ("gitrepositories", "flux-system", "flux-system"),
    ] {
        let mut object = fake.object(resource, namespace, name).unwrap();
        object["metadata"]["labels"]["sharding.fluxcd.io/key"] = Value::from("shard1");
        fake.put(object).unwrap();
    }
    let Some(list) = kubectl(
        &fake,
        &[
            "get",
            "kustomizations,helmreleases,gitrepositories",
            "-A",
            "-l",
            "!sharding.fluxcd.io/key",
            "--chunk-size=3",
            "-o",
            "json",
        ],
    ) else {
        return;
    };
    let mut expected = Vec::new();
    for resource in ["kustomizations", "helmreleases", "gitrepositories"] {
        expected.extend(
            fake.objects(resource)
                .into_iter()
                .filter(|o| o["metadata"]["labels"]["sharding.fluxcd.io/key"].is_null()),
        );
    }
    assert_eq!(
        items(&list).iter().map(name_of).collect::<Vec<_>>(),
        expected.iter().map(name_of).collect::<Vec<_>>()
    );
    assert_eq!(items(&list), expected);
    assert_eq!(expected.len(), 11 + 2 + 6 - 3);

    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations")
        .collect();
    assert_eq!(pages.len(), 4, "10 selected Kustomizations in chunks of 3");
    assert!(pages.iter().all(|r| r.param("limit") == Some("3")
        && r.param("labelSelector") == Some("!sharding.fluxcd.io/key")));
    assert_eq!(pages[0].param("continue"), None);
    assert!(pages[1..].iter().all(|r| r.param("continue").is_some()));
}
