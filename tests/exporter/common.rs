//! The world the exporter runs in: a fake API server holding the Flux objects, the ledger
//! ConfigMaps and the Lease; a strict fake GitHub and GitLab; a virtual clock for delivery;
//! and builders for the Flux objects a scripted cluster goes through.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flux_status_exporter::app::{
    Exporter, Parts, RunOptions, TickOutcome, TickReport, build_parts,
};
use flux_status_exporter::config::Config;
use flux_status_exporter::forge::{CredentialSources, DeliveryPolicy, Publishers};
use flux_status_exporter::leader::Leadership;
use flux_status_exporter::ledger::{ConfigMapStore, Ledger};
use flux_status_exporter::metrics::Metrics;
use serde_json::{Value, json};

use crate::support::fake_forges::github::GitHubFake;
use crate::support::fake_forges::gitlab::GitLabFake;
use crate::support::fake_forges::{FakeServer, Recorded, SkipClock};
use crate::support::fake_kube::FakeKube;

pub const GITHUB_TOKEN: &str = "ghp_ExporterLoopTestToken01";
pub const GITLAB_TOKEN: &str = "glpat-ExporterLoopTestToken01";
/// The exporter's namespace in the fake (the kubeconfig context's namespace).
pub const NAMESPACE: &str = "flux-system";
pub const LEDGER: &str = "flux-status-exporter-ledger";
pub const CONFIGMAPS: &str = "/api/v1/namespaces/flux-system/configmaps";

/// Commits of `acme/fleet` on GitHub.
pub const A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
pub const B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
pub const C: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
pub const D: &str = "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4";
/// Commits of `acme/podinfo` on GitLab.
pub const P1: &str = "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5";
pub const P2: &str = "f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6";

/// The status context of the Kustomization `namespace/name` in cluster `test`.
pub fn context(namespace: &str, name: &str) -> String {
    format!("flux/test/Kustomization/{namespace}/{name}")
}

/// A letter for each known commit, so expected request lists read like the script.
pub fn letter(sha: &str) -> &'static str {
    match sha {
        A => "A",
        B => "B",
        C => "C",
        D => "D",
        P1 => "P1",
        P2 => "P2",
        _ => "?",
    }
}

/// A GitRepository whose artifact is at `sha`.
pub fn git_repository(namespace: &str, name: &str, url: &str, sha: &str) -> Value {
    let revision = format!("main@sha1:{sha}");
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"interval": "1m", "url": url, "ref": {"branch": "main"}},
        "status": {
            "observedGeneration": 1,
            "artifact": {
                "revision": revision,
                "path": format!("gitrepository/{namespace}/{name}/{sha}.tar.gz"),
                "url": format!("http://source-controller.flux-system.svc/gitrepository/{namespace}/{name}/latest.tar.gz"),
                "digest": "sha256:2f0d7a8c0e3b5f6a7c9d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b",
                "lastUpdateTime": "2026-08-14T09:00:00Z",
                "size": 1234,
            },
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Succeeded", "observedGeneration": 1,
                "lastTransitionTime": "2026-08-14T09:00:00Z",
                "message": format!("stored artifact for revision '{revision}'"),
            }],
        },
    })
}

/// `acme/fleet` on GitHub, in the exporter's namespace, at `sha`.
pub fn fleet(sha: &str) -> Value {
    git_repository(NAMESPACE, "fleet", "https://github.com/acme/fleet", sha)
}

/// `acme/podinfo` on GitLab, in `team-a`, at `sha`.
pub fn podinfo_repo(sha: &str) -> Value {
    git_repository(
        "team-a",
        "podinfo",
        "https://gitlab.com/acme/podinfo.git",
        sha,
    )
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "observedGeneration": 1, "lastTransitionTime": "2026-08-14T09:10:00Z",
    })
}

/// A Kustomization of a GitRepository of the same namespace, in the states Flux puts it in.
#[derive(Debug, Clone, Copy)]
pub struct Ks {
    pub namespace: &'static str,
    pub name: &'static str,
    pub source: &'static str,
}

/// `flux-system/apps` of `acme/fleet`.
pub const APPS: Ks = Ks {
    namespace: NAMESPACE,
    name: "apps",
    source: "fleet",
};

/// `team-a/podinfo` of `acme/podinfo`.
pub const PODINFO: Ks = Ks {
    namespace: "team-a",
    name: "podinfo",
    source: "podinfo",
};

fn revision(sha: &str) -> String {
    format!("main@sha1:{sha}")
}

impl Ks {
    fn object(&self, status: Value) -> Value {
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": self.name, "namespace": self.namespace, "generation": 1},
            "spec": {
                "interval": "10m", "path": "./deploy", "prune": true,
                "sourceRef": {"kind": "GitRepository", "name": self.source},
            },
            "status": status,
        })
    }

    /// Created, not reconciled yet: no status at all.
    pub fn never_reconciled(&self) -> Value {
        self.object(json!({}))
    }

    /// Working on `attempted` (Ready=Unknown, Reconciling=True with `reason`).
    pub fn reconciling(&self, attempted: &str, applied: Option<&str>, reason: &str) -> Value {
        let mut status = json!({
            "observedGeneration": 1,
            "lastAttemptedRevision": revision(attempted),
            "conditions": [
                condition("Reconciling", "True", reason, "Reconciliation in progress"),
                condition("Ready", "Unknown", reason, "Reconciliation in progress"),
            ],
        });
        if let Some(applied) = applied {
            status["lastAppliedRevision"] = json!(revision(applied));
        }
        self.object(status)
    }

    /// Applied and healthy at `sha`.
    pub fn ready(&self, sha: &str) -> Value {
        self.object(json!({
            "observedGeneration": 1,
            "lastAttemptedRevision": revision(sha),
            "lastAppliedRevision": revision(sha),
            "conditions": [condition(
                "Ready", "True", "ReconciliationSucceeded",
                &format!("Applied revision: {}", revision(sha)),
            )],
        }))
    }

    /// Ready=False for `attempted` with `reason`.
    pub fn failed(
        &self,
        attempted: &str,
        applied: Option<&str>,
        reason: &str,
        message: &str,
    ) -> Value {
        let mut status = json!({
            "observedGeneration": 1,
            "lastAttemptedRevision": revision(attempted),
            "conditions": [condition("Ready", "False", reason, message)],
        });
        if let Some(applied) = applied {
            status["lastAppliedRevision"] = json!(revision(applied));
        }
        self.object(status)
    }
}

/// Descriptions the exporter writes for the states above.
pub mod says {
    use super::revision;

    pub fn queued() -> String {
        "queued: waiting to be reconciled".into()
    }
    pub fn progressing() -> String {
        "progressing: Reconciliation in progress".into()
    }
    pub fn retrying() -> String {
        "progressing with retry: Reconciliation in progress".into()
    }
    pub fn applied(sha: &str) -> String {
        format!(
            "reconciliation succeeded: Applied revision: {}",
            revision(sha)
        )
    }
    pub fn superseded_by(sha: &str) -> String {
        format!("superseded by {}", &sha[..7])
    }
}

/// One status post as a forge received it: commit letter, forge state, context, description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub repository: String,
    pub commit: String,
    pub state: String,
    pub context: String,
    pub description: String,
}

/// `(commit letter, state, description)` for the common case of one context.
pub fn brief(posts: &[Post]) -> Vec<(String, String, String)> {
    posts
        .iter()
        .map(|p| (p.commit.clone(), p.state.clone(), p.description.clone()))
        .collect()
}

pub fn expect(rows: &[(&str, &str, String)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(c, s, d)| (c.to_string(), s.to_string(), d.clone()))
        .collect()
}

/// The status posts in a fake GitHub's request log (every other request is an error here).
pub fn github_posts(requests: &[Recorded]) -> Vec<Post> {
    requests
        .iter()
        .map(|r| {
            assert_eq!(r.method, "POST", "{r:?}");
            let parts: Vec<&str> = r.path_only().split('/').collect();
            let ["", "repos", owner, repo, "statuses", sha] = parts.as_slice() else {
                panic!("not a status post: {}", r.path);
            };
            Post {
                repository: format!("{owner}/{repo}"),
                commit: letter(sha).to_string(),
                state: r.body["state"].as_str().unwrap().to_string(),
                context: r.body["context"].as_str().unwrap().to_string(),
                description: r.body["description"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// The status posts in a fake GitLab's request log.
pub fn gitlab_posts(requests: &[Recorded]) -> Vec<Post> {
    requests
        .iter()
        .map(|r| {
            assert_eq!(r.method, "POST", "{r:?}");
            let parts: Vec<&str> = r.path_only().split('/').collect();
            let ["", "api", "v4", "projects", project, "statuses", sha] = parts.as_slice() else {
                panic!("not a status post: {}", r.path);
            };
            Post {
                repository: project.replace("%2F", "/"),
                commit: letter(sha).to_string(),
                state: r.body["state"].as_str().unwrap().to_string(),
                context: r.body["name"].as_str().unwrap().to_string(),
                description: r.body["description"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// Everything logged (at every level) on this thread while it lives.
pub struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn capture() -> Logs {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = BufferWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        Logs {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }

    /// The lines at `level` (`WARN`, `ERROR`, ...).
    pub fn lines_at(&self, level: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(level))
            .map(str::to_string)
            .collect()
    }
}

/// The fakes, a virtual clock for delivery and a scratch directory.
pub struct World {
    pub kube: FakeKube,
    pub github: FakeServer<GitHubFake>,
    pub gitlab: FakeServer<GitLabFake>,
    pub clock: Arc<SkipClock>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl World {
    /// Fakes with nothing in the cluster yet. Must be called inside a Tokio runtime (the fake
    /// forges serve on it).
    pub async fn start() -> World {
        let kube = FakeKube::start();
        let clock = SkipClock::new();
        let github = FakeServer::start(GitHubFake::new(GITHUB_TOKEN), clock.clone()).await;
        let gitlab = FakeServer::start(
            GitLabFake::new(GITLAB_TOKEN, &[("acme/podinfo", 12)]),
            clock.clone(),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = kube.write_kubeconfig(dir.path());
        std::fs::write(dir.path().join("github-token"), GITHUB_TOKEN).unwrap();
        std::fs::write(dir.path().join("gitlab-token"), GITLAB_TOKEN).unwrap();
        World {
            kube,
            github,
            gitlab,
            clock,
            dir,
            kubeconfig,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Configuration YAML for both fake forges; `extra` is appended at the top level.
    pub fn yaml(&self, extra: &str) -> String {
        let fast = "rateLimit: {perMinute: 6000, perHour: 100000}";
        format!(
            "cluster: test\nschedule: 1m\nforges:\n\
             - type: github\n  apiUrl: {}\n  repositories: [\"acme/*\"]\n  {fast}\n  requestTimeout: 5s\n  credentials: {{token: {{file: {}}}}}\n\
             - type: gitlab\n  apiUrl: {}\n  {fast}\n  requestTimeout: 5s\n  credentials: {{token: {{file: {}}}}}\n{extra}",
            self.github.url(),
            self.path("github-token").display(),
            self.gitlab.url(),
            self.path("gitlab-token").display(),
        )
    }

    pub fn config(&self, extra: &str) -> Config {
        let yaml = self.yaml(extra);
        Config::from_yaml(&yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    pub fn options(&self, dry_run: bool) -> RunOptions {
        RunOptions {
            kubeconfig: Some(self.kubeconfig.clone()),
            dry_run,
            ..RunOptions::default()
        }
    }

    /// An exporter as `run` builds it (reader, ledger store, publishers from `build_parts`),
    /// except that deliveries wait on the virtual clock, with its ledger loaded.
    pub async fn exporter(&self, config: &Config) -> Exporter {
        self.exporter_with(config, Leadership::always(), false)
            .await
    }

    pub async fn exporter_with(
        &self,
        config: &Config,
        leadership: Leadership,
        dry_run: bool,
    ) -> Exporter {
        let parts = self.parts(config, dry_run).await;
        let metrics = Arc::new(Metrics::new(&config.cluster, "test", "test").unwrap());
        let mut exporter = Exporter::new(
            Arc::new(config.clone()),
            parts,
            metrics,
            leadership,
            dry_run,
        );
        exporter.load_ledger().await.unwrap();
        exporter
    }

    /// The parts `build_parts` makes for `config`, delivering on the virtual clock.
    pub async fn parts(&self, config: &Config, dry_run: bool) -> Parts {
        let mut parts = build_parts(config, &self.options(dry_run), false, config.kube.read)
            .await
            .unwrap();
        if !dry_run {
            parts.publishers = Arc::new(
                Publishers::from_config_with(
                    config,
                    &CredentialSources::new(),
                    DeliveryPolicy {
                        jitter_seed: Some(7),
                        ..DeliveryPolicy::default()
                    },
                    self.clock.clone(),
                )
                .unwrap(),
            );
        }
        parts
    }

    /// Adds or replaces cluster objects.
    pub fn put(&self, objects: &[Value]) {
        for object in objects {
            self.kube.put(object.clone()).unwrap();
        }
    }

    /// Posts the fake GitHub received since `from` requests.
    pub fn github_since(&self, from: usize) -> Vec<Post> {
        github_posts(&self.github.requests()[from..])
    }

    pub fn gitlab_since(&self, from: usize) -> Vec<Post> {
        gitlab_posts(&self.gitlab.requests()[from..])
    }

    /// Requests that wrote a ConfigMap (create, update, patch, delete), as `METHOD name`.
    pub fn configmap_writes(&self) -> Vec<String> {
        self.kube
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with(CONFIGMAPS) && r.method != "GET")
            .map(|r| {
                let name = r
                    .path
                    .trim_start_matches(CONFIGMAPS)
                    .trim_start_matches('/');
                format!("{} {name}", r.method)
            })
            .collect()
    }

    /// The ledger as stored in the ConfigMaps, read as a new exporter would read it.
    pub async fn stored_ledger(&self) -> Ledger {
        let loaded = self.store().await.load().await.unwrap();
        assert_eq!(loaded.discarded, None);
        loaded.ledger
    }

    /// A store on the ledger ConfigMap, as the exporter makes it.
    pub async fn store(&self) -> ConfigMapStore {
        ConfigMapStore::new(self.client().await, NAMESPACE, LEDGER)
    }

    pub async fn client(&self) -> kube::Client {
        flux_status_exporter::cluster::client::connect(
            &flux_status_exporter::cluster::client::ConnectOptions {
                kubeconfig: Some(self.kubeconfig.clone()),
                context: None,
                request_timeout: Duration::from_secs(10),
            },
        )
        .await
        .unwrap()
        .client
    }

    /// Names of the ledger's ConfigMaps (head and shards), sorted.
    pub fn ledger_configmaps(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .kube
            .objects("configmaps")
            .iter()
            .filter(|cm| cm["metadata"]["namespace"] == NAMESPACE)
            .map(|cm| cm["metadata"]["name"].as_str().unwrap().to_string())
            .filter(|n| n.starts_with(LEDGER))
            .collect();
        names.sort();
        names
    }
}

/// `(repository, commit letter, context, state, reason)` of every status in a ledger, sorted.
pub fn ledger_rows(ledger: &Ledger) -> Vec<(String, String, String, String, String)> {
    let mut rows: Vec<_> = ledger
        .statuses()
        .map(|(k, p)| {
            (
                format!("{}/{}", k.host, k.repository),
                letter(&k.sha.to_hex()).to_string(),
                k.context.clone(),
                p.state.as_str().to_string(),
                p.reason.clone(),
            )
        })
        .collect();
    rows.sort();
    rows
}

pub fn row(
    repository: &str,
    commit: &str,
    context: &str,
    state: &str,
    reason: &str,
) -> (String, String, String, String, String) {
    (
        repository.to_string(),
        commit.to_string(),
        context.to_string(),
        state.to_string(),
        reason.to_string(),
    )
}

/// Asserts a tick completed, and returns it.
pub fn completed(report: TickReport) -> TickReport {
    assert_eq!(report.outcome, TickOutcome::Completed, "{report:?}");
    report
}

/// Polls `condition` until it holds or `patience` runs out (a bound on waiting, not a claim
/// about how long anything takes), yielding to the runtime between checks.
pub async fn wait_for_async(what: &str, patience: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The repository root (where the README's commands run).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
