//! Credentials read from Kubernetes Secrets (`token: {secret: {name, key}}`), end to end: the
//! exporter's own kube client reads the Secret from the fake API server and the fake forge
//! receives its value.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use flux_status_exporter::cluster::client::{ConnectOptions, connect};
use flux_status_exporter::forge::{CredentialSources, DeliveryResult, Publishers};
use flux_status_exporter::model::CommitState;
use serde_json::{Value, json};

use crate::common::{self, Logs, SHA, config, publish_one};
use crate::support::fake_forges::github::GitHubFake;
use crate::support::fake_forges::{FakeServer, SkipClock};
use crate::support::fake_kube::FakeKube;

/// The exporter's own namespace: the kubeconfig context's.
const OWN_NAMESPACE: &str = "flux-status-exporter";
const TOKEN: &str = "ghp_FromKubernetesSecret_0123";
const ROTATED: &str = "ghp_RotatedKubernetesSecret_4567";

/// A Secret object as the API server stores it (`data` base64-encoded).
fn secret(namespace: &str, name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": data,
    })
}

fn secret_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/secrets/{name}")
}

/// A fake cluster, a fake GitHub accepting `tokens`, and publishers for a GitHub forge whose
/// token is `reference` (the YAML of a `secret:` reference).
struct Setup {
    kube: FakeKube,
    github: FakeServer<GitHubFake>,
    publishers: Publishers,
    clock: Arc<SkipClock>,
    logs: Logs,
    _dir: tempfile::TempDir,
}

async fn setup(reference: &str, secrets: &[Value]) -> Setup {
    let logs = Logs::capture();
    let kube = FakeKube::start();
    for s in secrets {
        kube.put(s.clone()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig(OWN_NAMESPACE)).unwrap();
    let connection = connect(&ConnectOptions {
        kubeconfig: Some(kubeconfig),
        context: None,
        request_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    assert_eq!(connection.default_namespace, OWN_NAMESPACE);
    let clock = SkipClock::new();
    let github = FakeServer::start(GitHubFake::new(TOKEN), clock.clone()).await;
    let config = config(&format!(
        "forges:\n  - type: github\n    apiUrl: {}\n    credentials: {{token: {{secret: {reference}}}}}\n",
        github.url()
    ));
    let sources =
        CredentialSources::new().with_kube(connection.client, connection.default_namespace);
    let publishers =
        Publishers::from_config_with(&config, &sources, common::policy(), clock.clone()).unwrap();
    Setup {
        kube,
        github,
        publishers,
        clock,
        logs,
        _dir: dir,
    }
}

fn update(state: CommitState) -> flux_status_exporter::model::StatusUpdate {
    common::update("github", "github.com", "acme/app", state)
}

impl Setup {
    fn authorizations(&self) -> Vec<String> {
        self.github
            .requests()
            .iter()
            .map(|r| r.header("authorization").unwrap_or("").to_string())
            .collect()
    }

    fn secret_reads(&self, namespace: &str, name: &str) -> usize {
        self.kube.requests_to(&secret_path(namespace, name)).len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_a_kubernetes_secret_is_sent_to_the_forge() {
    let run = setup(
        "{name: github-token, key: token, namespace: flux-system}",
        &[secret(
            "flux-system",
            "github-token",
            &[("token", &format!("{TOKEN}\n"))],
        )],
    )
    .await;
    let outcome = publish_one(&run.publishers, update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(run.authorizations(), [format!("Bearer {TOKEN}")]);
    let reads = run
        .kube
        .requests_to(&secret_path("flux-system", "github-token"));
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].method, "GET");
    assert_eq!(
        run.github
            .with(|f| f.stored("acme/app", SHA, common::CONTEXT).len()),
        1
    );
    run.logs.assert_never_contains(TOKEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_without_a_namespace_is_read_from_the_connections_namespace() {
    let run = setup(
        "{name: github-token, key: token}",
        &[
            secret(OWN_NAMESPACE, "github-token", &[("token", TOKEN)]),
            secret(
                "default",
                "github-token",
                &[("token", "ghp_WrongNamespace")],
            ),
        ],
    )
    .await;
    let outcome = publish_one(&run.publishers, update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(run.authorizations(), [format!("Bearer {TOKEN}")]);
    assert_eq!(run.secret_reads(OWN_NAMESPACE, "github-token"), 1);
    assert_eq!(run.secret_reads("default", "github-token"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_read_again_when_the_forge_refuses_the_old_token() {
    let run = setup(
        "{name: github-token, key: token}",
        &[secret(OWN_NAMESPACE, "github-token", &[("token", TOKEN)])],
    )
    .await;
    publish_one(&run.publishers, update(CommitState::Pending)).await;
    run.kube
        .put(secret(OWN_NAMESPACE, "github-token", &[("token", ROTATED)]))
        .unwrap();
    run.github.with(|f| {
        f.tokens.clear();
        f.tokens.insert(ROTATED.to_string());
    });
    let outcome = publish_one(&run.publishers, update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered, "{outcome:?}");
    assert_eq!(outcome.attempts, 2);
    assert_eq!(
        run.authorizations(),
        [
            format!("Bearer {TOKEN}"),
            format!("Bearer {TOKEN}"),
            format!("Bearer {ROTATED}")
        ]
    );
    assert_eq!(run.secret_reads(OWN_NAMESPACE, "github-token"), 2);
    run.logs.assert_never_contains(ROTATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_read_again_once_the_cached_value_is_five_minutes_old() {
    let run = setup(
        "{name: github-token, key: token}",
        &[secret(OWN_NAMESPACE, "github-token", &[("token", TOKEN)])],
    )
    .await;
    run.github.with(|f| f.tokens.insert(ROTATED.to_string()));
    publish_one(&run.publishers, update(CommitState::Pending)).await;
    run.kube
        .put(secret(OWN_NAMESPACE, "github-token", &[("token", ROTATED)]))
        .unwrap();
    run.clock.advance(Duration::from_secs(299));
    publish_one(&run.publishers, update(CommitState::Failure)).await;
    run.clock.advance(Duration::from_secs(1));
    publish_one(&run.publishers, update(CommitState::Success)).await;
    assert_eq!(
        run.authorizations(),
        [
            format!("Bearer {TOKEN}"),
            format!("Bearer {TOKEN}"),
            format!("Bearer {ROTATED}")
        ]
    );
    assert_eq!(run.secret_reads(OWN_NAMESPACE, "github-token"), 2);
}

/// The outcome of one update whose credential cannot be read: not sent, retried next tick.
async fn unreadable(run: &Setup) -> String {
    let outcome = publish_one(&run.publishers, update(CommitState::Success)).await;
    assert!(run.github.requests().is_empty(), "nothing may be sent");
    assert_eq!(outcome.attempts, 0);
    match outcome.result {
        DeliveryResult::RetryLater { error } => error,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_named_with_its_key() {
    let run = setup("{name: github-token, key: token}", &[]).await;
    assert_eq!(
        unreadable(&run).await,
        format!(
            "credentials: Secret {OWN_NAMESPACE}/github-token (key `token`): not found: create it, or fix the reference"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_named_with_the_keys_there_are_but_no_value() {
    let value = "s3cret-app-password";
    let run = setup(
        "{name: github-token, key: token}",
        &[secret(
            OWN_NAMESPACE,
            "github-token",
            &[("password", value), ("username", "bot")],
        )],
    )
    .await;
    let error = unreadable(&run).await;
    assert_eq!(
        error,
        format!(
            "credentials: Secret {OWN_NAMESPACE}/github-token (key `token`): the Secret has no such key (it has: password, username)"
        )
    );
    run.logs.assert_never_contains(value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rbac_refusal_says_which_permission_is_missing() {
    let run = setup(
        "{name: github-token, key: token}",
        &[secret(OWN_NAMESPACE, "github-token", &[("token", TOKEN)])],
    )
    .await;
    run.kube
        .fail(&secret_path(OWN_NAMESPACE, "github-token"), 403, None);
    assert_eq!(
        unreadable(&run).await,
        format!(
            "credentials: Secret {OWN_NAMESPACE}/github-token (key `token`): forbidden: the exporter may not get this Secret; grant `get` on it (deploy/components/secret-references) (secrets is forbidden: User \"system:serviceaccount:flux-system:flux-status-exporter\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{OWN_NAMESPACE}\")"
        )
    );
    run.logs.assert_never_contains(TOKEN);
}

/// Runs `publish` on the bundled example with a GitHub forge whose token is the Secret
/// `github-token` (key `token`) in the kubeconfig context's namespace, found through
/// `KUBECONFIG` as kubectl would.
async fn publish_with_secret(kube: &FakeKube, github: &FakeServer<GitHubFake>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig(OWN_NAMESPACE)).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "cluster: demo\nforges:\n  - type: github\n    apiUrl: {}\n    repositories: [\"acme/*\"]\n    rateLimit: {{perMinute: 6000, perHour: 100000}}\n    credentials: {{token: {{secret: {{name: github-token, key: token}}}}}}\n",
            github.url()
        ),
    )
    .unwrap();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_flux-status-exporter"))
            .args([
                "publish",
                "--snapshot",
                "examples/cluster-snapshot.yaml",
                "--config",
            ])
            .arg(&config)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .env_remove("FLUX_STATUS_EXPORTER_CONFIG")
            .env("KUBECONFIG", &kubeconfig)
            .env("FLUX_STATUS_EXPORTER_LOG", "info")
            .output()
            .unwrap();
        drop(dir);
        output
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_command_posts_with_the_token_of_a_kubernetes_secret() {
    let kube = FakeKube::start();
    kube.put(secret(OWN_NAMESPACE, "github-token", &[("token", TOKEN)]))
        .unwrap();
    let github = FakeServer::start(GitHubFake::new(TOKEN), SkipClock::new()).await;
    let out = publish_with_secret(&kube, &github).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let requests = github.requests();
    assert_eq!(requests.len(), 5);
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert!(
        !kube
            .requests_to(&secret_path(OWN_NAMESPACE, "github-token"))
            .is_empty()
    );
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_command_fails_setup_naming_a_missing_secret_key_and_posts_nothing() {
    let kube = FakeKube::start();
    let value = "s3cret-not-a-token";
    kube.put(secret(
        OWN_NAMESPACE,
        "github-token",
        &[("password", value)],
    ))
    .unwrap();
    let github = FakeServer::start(GitHubFake::new(TOKEN), SkipClock::new()).await;
    let out = publish_with_secret(&kube, &github).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some(
            format!(
                "error: forge `github`: credentials: Secret {OWN_NAMESPACE}/github-token (key `token`): the Secret has no such key (it has: password)"
            )
            .as_str()
        )
    );
    assert!(!stderr.contains(value), "{stderr}");
    assert!(github.requests().is_empty());
}
