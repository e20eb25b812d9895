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

#[test]
fn a_snapshot_that_is_not_a_dump_exits_2_naming_the_file() {
    let out = exporter(&["plan", "--snapshot", "config.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: config.yaml: document 1, item 1: has no apiVersion and kind: not a Kubernetes object (is this a kubectl dump?)\n"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_missing_snapshot_exits_2_naming_the_file() {
    let out = exporter(&["plan", "--snapshot", "does-not-exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
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
            "error: {path}: schedule: `every minute` is neither an interval (e.g. 30s, 5m) nor a cron expression: expected 5 fields (standard cron) or 6-7 fields with seconds, found 2\n"
        )
    );
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
