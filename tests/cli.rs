//! The binary, run as a newcomer would run it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn exporter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flux-status-exporter"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("FLUX_STATUS_EXPORTER_CONFIG")
        .env("FLUX_STATUS_EXPORTER_LOG", "warn")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name),
    )
    .unwrap()
}

#[test]
fn plan_on_the_bundled_example_prints_the_expected_table() {
    let out = exporter(&["plan", "--snapshot", "examples/cluster-snapshot.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), golden("plan-example.txt"));
}

#[test]
fn plan_json_on_the_bundled_example_is_stable() {
    let out = exporter(&[
        "plan",
        "--snapshot",
        "examples/cluster-snapshot.yaml",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), golden("plan-example.json"));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let updates = value["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 13);
    assert!(
        updates
            .iter()
            .all(|u| u["sha"].as_str().unwrap().len() == 40)
    );
}

#[test]
fn plan_with_the_reference_config_routes_github_updates_to_the_configured_forge() {
    let out = exporter(&[
        "--config",
        "config.yaml",
        "plan",
        "--snapshot",
        "examples/cluster-snapshot.yaml",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let fleet: Vec<&serde_json::Value> = value["updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["repository"] == "acme/fleet")
        .collect();
    assert!(!fleet.is_empty());
    for update in fleet {
        assert_eq!(update["forge"], "github");
        assert_eq!(update["deliverable"], true);
        assert_eq!(
            update["context"].as_str().unwrap().split('/').nth(1),
            Some("demo")
        );
    }
}

/// Runs `plan --snapshot path`, checks it exits 2 and prints nothing, and returns its stderr.
fn plan_snapshot_exits_2(path: &str) -> String {
    let out = exporter(&["plan", "--snapshot", path]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    stderr(&out)
}

#[test]
fn a_snapshot_that_is_not_a_dump_exits_2_naming_the_file() {
    assert_eq!(
        plan_snapshot_exits_2("config.yaml"),
        "error: config.yaml: document 1, item 1: has no apiVersion and kind: not a Kubernetes object (is this a kubectl dump?)\n"
    );
}

#[test]
fn a_missing_snapshot_exits_2_naming_the_file() {
    assert_eq!(
        plan_snapshot_exits_2("does-not-exist.yaml"),
        "error: does-not-exist.yaml: cannot read: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_bad_config_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "schedule: every minute\n").unwrap();
    let path = path.to_str().unwrap();
    let out = exporter(&["--config", path, "check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {path}: schedule: `every minute` is neither an interval (e.g. 30s, 5m) nor a cron expression: expected 5 fields (minute hour day-of-month month day-of-week, as a CronJob's schedule) or 6-7 fields with seconds first, found 2\n"
        )
    );
}

#[test]
fn check_config_rejects_a_github_app_key_that_does_not_parse_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("app.pem");
    std::fs::write(
        &key,
        "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n",
    )
    .unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "forges:\n  - type: github\n    credentials:\n      githubApp: {{appId: 42, privateKey: {{file: {}}}}}\n",
            key.display()
        ),
    )
    .unwrap();
    let out = exporter(&["--config", config.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: forges[0] (github): credentials.githubApp.privateKey of GitHub App 42: the private key is not an RSA private key in PEM form\n"
    );
    assert!(!stderr(&out).contains("c2VjcmV0"));

    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github-app/private-key.pem"
        ),
        &key,
    )
    .unwrap();
    let out = exporter(&["--config", config.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn check_config_prints_the_resolved_config_with_credentials_only_as_references() {
    let out = Command::new(env!("CARGO_BIN_EXE_flux-status-exporter"))
        .args(["--config", "config.yaml", "check-config"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GITHUB_TOKEN", "ghp_supersecretvalue")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("env: GITHUB_TOKEN"), "{text}");
    assert!(text.contains("cluster: demo"), "{text}");
    assert!(
        !text.contains("null"),
        "only what is set or defaulted is printed: {text}"
    );
    assert!(!text.contains("ghp_supersecretvalue"));
    assert!(!stderr(&out).contains("ghp_supersecretvalue"));
}

#[test]
fn version_and_help_describe_the_program() {
    let out = exporter(&["--version"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).starts_with(&format!(
            "flux-status-exporter {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        stdout(&out)
    );
    let help = stdout(&exporter(&["--help"]));
    for needle in ["plan", "check-config", "--config"] {
        assert!(help.contains(needle), "{help}");
    }
}

#[test]
fn unknown_arguments_exit_2() {
    let out = exporter(&[
        "plan",
        "--snapshot",
        "examples/cluster-snapshot.yaml",
        "-o",
        "xml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'xml'"),
        "{}",
        stderr(&out)
    );
}

/// A configuration whose ledger is a file in `dir`.
fn file_ledger_config(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ledger = dir.join("ledger.json");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "cluster: demo\nledger: {{backend: file, path: {}}}\n",
            ledger.display()
        ),
    )
    .unwrap();
    (config, ledger)
}

fn plan_json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = exporter(args);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    value["updates"].as_array().unwrap().clone()
}

#[test]
fn plan_reads_the_configured_ledger_and_shows_what_the_next_tick_would_post() {
    use flux_status_exporter::ledger::{FileStore, Ledger};
    use flux_status_exporter::model::{CommitState, StatusKey};

    let dir = tempfile::tempdir().unwrap();
    let (config, ledger_path) = file_ledger_config(dir.path());
    let config = config.to_str().unwrap();
    let snapshot = "examples/cluster-snapshot.yaml";
    let fresh = plan_json(&[
        "--config",
        config,
        "plan",
        "--snapshot",
        snapshot,
        "-o",
        "json",
    ]);
    assert_eq!(fresh.len(), 13, "no ledger file yet: everything is new");

    // The first update was posted as it is now; the second was last posted as pending.
    let key = |u: &serde_json::Value| StatusKey {
        host: u["host"].as_str().unwrap().to_string(),
        repository: u["repository"].as_str().unwrap().to_string(),
        sha: u["sha"].as_str().unwrap().parse().unwrap(),
        context: u["context"].as_str().unwrap().to_string(),
    };
    let state = |u: &serde_json::Value| -> CommitState {
        serde_json::from_value(u["state"].clone()).unwrap()
    };
    let mut ledger = Ledger::new();
    let now = jiff::Timestamp::now();
    ledger.record(
        key(&fresh[0]),
        state(&fresh[0]),
        fresh[0]["reason"].as_str().unwrap(),
        now,
    );
    ledger.record(key(&fresh[1]), CommitState::Pending, "Progressing", now);
    FileStore::new(&ledger_path).save(&mut ledger).unwrap();
    let stored = std::fs::read(&ledger_path).unwrap();

    let planned = plan_json(&[
        "--config",
        config,
        "plan",
        "--snapshot",
        snapshot,
        "-o",
        "json",
    ]);
    assert_eq!(
        planned.len(),
        12,
        "the status posted as it is now is unchanged"
    );
    assert!(
        planned
            .iter()
            .all(|u| u["context"] != fresh[0]["context"] || u["sha"] != fresh[0]["sha"])
    );
    let second = planned
        .iter()
        .find(|u| u["context"] == fresh[1]["context"] && u["sha"] == fresh[1]["sha"])
        .unwrap();
    assert_eq!(second["previous_state"], "pending");
    assert_eq!(
        std::fs::read(&ledger_path).unwrap(),
        stored,
        "plan writes nothing"
    );

    let ignoring = plan_json(&[
        "--config",
        config,
        "plan",
        "--snapshot",
        snapshot,
        "--no-ledger",
        "-o",
        "json",
    ]);
    assert_eq!(
        ignoring, fresh,
        "--no-ledger plans as if nothing was ever posted"
    );
}

/// Runs the exporter under an address-space limit of `limit_kib`, as a memory bound.
fn exporter_within(limit_kib: u64, args: &[&str]) -> Output {
    let binary = env!("CARGO_BIN_EXE_flux-status-exporter");
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {limit_kib} && exec \"$0\" \"$@\""))
        .arg(binary)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("FLUX_STATUS_EXPORTER_CONFIG")
        .env("FLUX_STATUS_EXPORTER_LOG", "warn")
        .output()
        .expect("the binary runs")
}

#[test]
fn a_yaml_alias_bomb_snapshot_exits_2_naming_the_file_within_a_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MB scalar repeated by 5,000 aliases (5 GB expanded), and a nested variant: a list of
    // 100 aliases to it, itself aliased 60 times.
    let big = "x".repeat(1 << 20);
    let flat = format!(
        "apiVersion: v1\nkind: List\nbig: &big {big}\nitems:\n{}",
        "- *big\n".repeat(5000)
    );
    let nested = format!(
        "apiVersion: v1\nkind: List\nbig: &big {big}\nrow: &row [{}]\nitems:\n{}",
        vec!["*big"; 100].join(", "),
        "- *row\n".repeat(60)
    );
    for (name, text) in [("flat.yaml", flat), ("nested.yaml", nested)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let shown = path.display().to_string();
        for command in ["plan", "once"] {
            let mut args = vec![command, "--snapshot", &shown];
            if command == "once" {
                args.push("--dry-run");
            }
            // 1 GiB of address space: the expanded file would need gigabytes.
            let out = exporter_within(1 << 20, &args);
            let all = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{command} {name}: {all}");
            let err = format!("{}\n", all.lines().last().unwrap_or(""));
            assert!(
                err.starts_with(&format!("error: {shown}: "))
                    && err.contains(": refused: YAML aliases expand it far beyond its own size (")
                    && err.ends_with("); a dump written by kubectl has no aliases\n"),
                "{command} {name}: {err}"
            );
        }
    }
}

#[test]
fn a_fifo_or_a_directory_as_snapshot_exits_2_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("snapshot.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for (path, why) in [
        (
            fifo.display().to_string(),
            "it is not a regular file (a FIFO, socket or device)",
        ),
        (dir.path().display().to_string(), "it is a directory"),
    ] {
        assert_eq!(
            plan_snapshot_exits_2(&path),
            format!("error: {path}: cannot read: {why}\n")
        );
    }
}

#[test]
fn a_file_name_with_line_breaks_cannot_forge_a_log_line() {
    assert_eq!(
        plan_snapshot_exits_2("missing\nERROR forged line\r"),
        "error: missing\\nERROR forged line\\r: cannot read: No such file or directory (os error 2)\n"
    );
}
