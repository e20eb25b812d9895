//! `flux-status-exporter publish`: the bundled example planned and posted to fake forges by
//! the real binary, as a user would run it after `plan`.

use std::path::Path;
use std::process::Output;

use crate::common::secret_file;
use crate::support::fake_forges::gitea::GiteaFake;
use crate::support::fake_forges::github::GitHubFake;
use crate::support::fake_forges::gitlab::GitLabFake;
use crate::support::fake_forges::{FakeServer, SkipClock};

const GITHUB_TOKEN: &str = "ghp_CliTestToken000";
const GITLAB_TOKEN: &str = "glpat-CliTestToken000";
const GITEA_TOKEN: &str = "gitea-CliTestToken000";

struct Forges {
    github: FakeServer<GitHubFake>,
    gitlab: FakeServer<GitLabFake>,
    gitea: FakeServer<GiteaFake>,
    dir: tempfile::TempDir,
}

async fn forges() -> Forges {
    let clock = SkipClock::new();
    Forges {
        github: FakeServer::start(GitHubFake::new(GITHUB_TOKEN), clock.clone()).await,
        gitlab: FakeServer::start(
            GitLabFake::new(GITLAB_TOKEN, &[("acme/platform/podinfo", 12)]),
            clock.clone(),
        )
        .await,
        gitea: FakeServer::start(GiteaFake::new(GITEA_TOKEN), clock).await,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Forges {
    fn config(&self, github_token: &str) -> String {
        self.config_reading_back(github_token, false)
    }

    fn config_reading_back(&self, github_token: &str, read_back: bool) -> String {
        let dir = self.dir.path();
        let fast = "rateLimit: {perMinute: 6000, perHour: 100000}";
        let yaml = format!(
            "cluster: demo\nstatuses: {{readBack: {read_back}}}\nforges:\n\
             - type: github\n  apiUrl: {}\n  repositories: [\"acme/*\"]\n  {fast}\n  credentials: {{token: {{file: {}}}}}\n\
             - type: gitlab\n  apiUrl: {}\n  {fast}\n  credentials: {{token: {{file: {}}}}}\n\
             - type: gitea\n  host: gitea.example.com\n  apiUrl: {}\n  repositories: [\"ops/tools\"]\n  {fast}\n  credentials: {{token: {{file: {}}}}}\n",
            self.github.url(),
            secret_file(dir, "github", github_token),
            self.gitlab.url(),
            secret_file(dir, "gitlab", GITLAB_TOKEN),
            self.gitea.url(),
            secret_file(dir, "gitea", GITEA_TOKEN),
        );
        let path = dir.join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        path.display().to_string()
    }
}

/// Runs the binary off the async runtime, so the fakes keep serving meanwhile.
async fn exporter(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_flux-status-exporter"))
            .args(&args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .env_remove("FLUX_STATUS_EXPORTER_CONFIG")
            .env("FLUX_STATUS_EXPORTER_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(config: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "publish",
        "--snapshot",
        "examples/cluster-snapshot.yaml",
        "--config",
        config,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_posts_the_example_plan_to_each_configured_forge_and_nowhere_else() {
    let forges = forges().await;
    let config = forges.config(GITHUB_TOKEN);
    let out = exporter(args(&config, &["-o", "json"])).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", text(&out.stdout));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes = json["outcomes"].as_array().unwrap();
    let count = |host: &str, result: &str| {
        outcomes
            .iter()
            .filter(|o| o["key"]["host"] == host && o["result"] == result)
            .count()
    };
    assert_eq!(outcomes.len(), 13);
    assert_eq!(count("github.com", "delivered"), 5);
    assert_eq!(count("gitlab.com", "delivered"), 3);
    assert_eq!(count("gitea.example.com", "delivered"), 2);
    assert_eq!(count("dev.azure.com", "skipped_unmatched"), 1);
    assert_eq!(count("git.example.com", "skipped_unmatched"), 2);
    assert_eq!(forges.github.requests().len(), 5);
    assert_eq!(forges.gitlab.requests().len(), 3);
    assert_eq!(forges.gitea.requests().len(), 2);
    for token in [GITHUB_TOKEN, GITLAB_TOKEN, GITEA_TOKEN] {
        assert!(!stderr.contains(token), "{stderr}");
        assert!(!text(&out.stdout).contains(token));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_dry_run_sends_nothing_and_reads_no_credential() {
    let forges = forges().await;
    let config = forges.config(GITHUB_TOKEN);
    std::fs::remove_file(forges.dir.path().join("github")).unwrap();
    let out = exporter(args(&config, &["--dry-run"])).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("dry run: would post this status"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with("\n13 updates: 10 delivered, 3 skipped_unmatched\n"),
        "{stdout}"
    );
    assert!(forges.github.requests().is_empty());
    assert!(forges.gitlab.requests().is_empty());
    assert!(forges.gitea.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_exits_1_and_still_prints_every_outcome_when_a_forge_refuses() {
    let forges = forges().await;
    let config = forges.config("ghp_RevokedToken");
    let out = exporter(args(&config, &[])).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with("\n13 updates: 5 delivered, 5 retry_later, 3 skipped_unmatched\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("github answered 401: Bad credentials"),
        "{stdout}"
    );
    assert_eq!(
        text(&out.stderr).lines().last(),
        Some("error: 5 of 13 statuses were not delivered")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_read_back_posts_nothing_the_forges_already_show() {
    let forges = forges().await;
    let config = forges.config_reading_back(GITHUB_TOKEN, true);
    let first = exporter(args(&config, &[])).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let posts = |fake: &[crate::support::fake_forges::Recorded]| {
        fake.iter().filter(|r| r.method == "POST").count()
    };
    assert_eq!(posts(&forges.github.requests()), 5);
    assert_eq!(posts(&forges.gitlab.requests()), 3);
    assert_eq!(posts(&forges.gitea.requests()), 2);

    // Nothing is remembered between runs; the forges are read instead.
    let second = exporter(args(&config, &["-o", "json"])).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    let json: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    let delivered_by_reading = json["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["result"] == "delivered" && o["attempts"] == 1)
        .count();
    assert_eq!(delivered_by_reading, 10);
    assert_eq!(posts(&forges.github.requests()), 5);
    assert_eq!(posts(&forges.gitlab.requests()), 3);
    assert_eq!(posts(&forges.gitea.requests()), 2);
    let reads = |fake: &[crate::support::fake_forges::Recorded]| {
        fake.iter().filter(|r| r.method == "GET").count()
    };
    assert_eq!(reads(&forges.github.requests()), 10);
    assert_eq!(reads(&forges.gitlab.requests()), 6);
    assert_eq!(reads(&forges.gitea.requests()), 4);
}
