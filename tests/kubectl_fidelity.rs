//! Real `kubectl` against the fake API server: proof that the fake speaks the protocol the
//! exporter's reader is tested with (discovery, lists, label selectors, chunked lists, and the
//! list-then-watch handshake with streamed watch events).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
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

/// `kubectl get … --watch` as a child process, its stdout parsed as it comes.
struct KubectlWatch {
    child: std::process::Child,
    chunks: mpsc::Receiver<Vec<u8>>,
    buffer: Vec<u8>,
    _home: tempfile::TempDir,
}

impl KubectlWatch {
    /// Starts kubectl with a private home; `None` when kubectl is not installed.
    fn start(fake: &FakeKube, args: &[&str]) -> Option<KubectlWatch> {
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = fake.write_kubeconfig(home.path());
        let mut child = match Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--server", &fake.base_url])
            .args(args)
            .env("HOME", home.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: kubectl is not installed, so the fidelity test cannot run");
                return None;
            }
            Err(e) => panic!("kubectl: {e}"),
        };
        let mut stdout = child.stdout.take().unwrap();
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Some(KubectlWatch {
            child,
            chunks,
            buffer: Vec::new(),
            _home: home,
        })
    }

    /// The next JSON document kubectl printed; panics at `deadline`.
    fn next(&mut self, deadline: Instant) -> Value {
        loop {
            let mut documents = serde_json::Deserializer::from_slice(&self.buffer).into_iter();
            match documents.next() {
                Some(Ok(value)) => {
                    let used = documents.byte_offset();
                    self.buffer.drain(..used);
                    return value;
                }
                Some(Err(e)) if !e.is_eof() => panic!("kubectl printed something not JSON: {e}"),
                _ => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.buffer.extend_from_slice(&chunk),
                Err(e) => panic!(
                    "kubectl printed no complete event in time ({e}); so far: {}",
                    String::from_utf8_lossy(&self.buffer)
                ),
            }
        }
    }
}

impl Drop for KubectlWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done` holds, up to `deadline`.
fn wait_until(deadline: Instant, what: &str, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kubectl_get_watch_lists_then_watches_from_the_lists_version_and_prints_every_event() {
    const KS: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";
    let fake = FakeKube::with_dump(example());
    let list_rv = fake.resource_version().to_string();
    let Some(mut kubectl) = KubectlWatch::start(
        &fake,
        &[
            "get",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "-A",
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ],
    ) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);

    // The existing objects first, as ADDED events from the list.
    let served = fake.objects("kustomizations");
    for object in &served {
        let event = kubectl.next(deadline);
        assert_eq!(event["type"], "ADDED");
        assert_eq!(&event["object"], object);
    }
    wait_until(deadline, "kubectl's watch", || fake.open_watches() == 1);
    let calls = fake.requests_to(KS);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].verb(), "list");
    assert_eq!(calls[1].verb(), "watch");
    assert_eq!(calls[1].param("watch"), Some("true"));
    assert_eq!(calls[1].param("resourceVersion"), Some(list_rv.as_str()));

    let mut object = fake.object("kustomizations", "team-a", "podinfo").unwrap();
    object["metadata"]["name"] = json!("watched");
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let added = fake.put(object).unwrap();
    let mut modified = added.clone();
    modified["spec"]["suspend"] = json!(true);
    let modified = fake.put(modified).unwrap();
    assert!(fake.delete("kustomizations", "team-a", "watched"));
    let mut deleted = modified.clone();
    deleted["metadata"]["resourceVersion"] = json!(fake.resource_version().to_string());

    for (kind, object) in [
        ("ADDED", added),
        ("MODIFIED", modified),
        ("DELETED", deleted),
    ] {
        let event = kubectl.next(deadline);
        assert_eq!(event["type"], kind);
        assert_eq!(event["object"], object, "{kind}");
    }
    assert_eq!(fake.requests_to(KS).len(), 2, "one list and one watch");
}
