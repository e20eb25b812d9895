//! `plan` against a live cluster (the fake API server), run as a user would run the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::fake_kube::FakeKube;

fn example() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/cluster-snapshot.yaml"
    ))
}

/// Runs the binary with no ambient Kubernetes configuration: a private HOME, no KUBECONFIG,
/// not in a pod.
fn exporter(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_flux-status-exporter"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("FLUX_STATUS_EXPORTER_CONFIG")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", home.path())
        .env("FLUX_STATUS_EXPORTER_LOG", "warn")
        .envs(envs.iter().copied())
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn plan_against_a_cluster_prints_the_same_plan_as_plan_on_a_dump_of_it() {
    let fake = FakeKube::with_dump(example());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    for extra in [
        &[][..],
        &["-o", "json"][..],
        &["--config", "config.yaml", "-o", "json"][..],
    ] {
        let (config, output) = match extra {
            ["--config", c, rest @ ..] => (vec!["--config", *c], rest.to_vec()),
            rest => (vec![], rest.to_vec()),
        };
        let mut live = config.clone();
        live.extend(["plan", "--kubeconfig", kubeconfig]);
        live.extend(&output);
        let mut dumped = config.clone();
        dumped.extend(["plan", "--snapshot", "examples/cluster-snapshot.yaml"]);
        dumped.extend(&output);
        let from_cluster = exporter(&live, &[]);
        let from_dump = exporter(&dumped, &[]);
        assert!(from_cluster.status.success(), "{}", stderr(&from_cluster));
        assert!(from_dump.status.success(), "{}", stderr(&from_dump));
        assert!(!stdout(&from_dump).is_empty());
        assert_eq!(stdout(&from_cluster), stdout(&from_dump), "{extra:?}");
    }
}

#[test]
fn plan_reads_the_kubeconfig_named_by_the_kubeconfig_variable() {
    let fake = FakeKube::with_dump(example());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path());
    let out = exporter(
        &["plan", "-o", "json"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(plan["updates"].as_array().unwrap().len(), 13);
    assert!(!fake.requests().is_empty());
}

#[test]
fn plan_with_a_kubeconfig_that_does_not_exist_exits_2_naming_it() {
    let out = exporter(&["plan", "--kubeconfig", "no-such-kubeconfig"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: kubeconfig no-such-kubeconfig: cannot read: No such file or directory (os error 2)\n"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn plan_with_an_unknown_context_exits_2_listing_the_known_contexts() {
    let fake = FakeKube::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    let out = exporter(
        &["plan", "--kubeconfig", kubeconfig, "--context", "prod"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!("error: kubeconfig {kubeconfig}: context `prod` not found (contexts: fake)\n")
    );
    assert!(fake.requests().is_empty(), "nothing is sent to the cluster");
}

#[test]
fn plan_without_any_kubernetes_configuration_exits_2_saying_where_it_looked() {
    let out = exporter(&["plan"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account\n"
    );
}

#[test]
fn plan_refuses_a_snapshot_and_a_kubeconfig_together() {
    let out = exporter(
        &[
            "plan",
            "--snapshot",
            "examples/cluster-snapshot.yaml",
            "--kubeconfig",
            "k",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("the argument '--snapshot <FILE>' cannot be used with '--kubeconfig <FILE>'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_exits_1_and_prints_no_plan_when_rbac_refuses_a_list() {
    let fake = FakeKube::with_dump(example());
    fake.fail(
        "/apis/source.toolkit.fluxcd.io/v1/gitrepositories",
        403,
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path());
    let out = exporter(&["plan", "--kubeconfig", kubeconfig.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "", "a partial read must not produce a plan");
    assert!(
        stderr(&out).starts_with("error: cannot list gitrepositories.source.toolkit.fluxcd.io in all namespaces: RBAC refused verb `list` on resource `gitrepositories` in API group `source.toolkit.fluxcd.io` (403 Forbidden); "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_warns_once_about_a_missing_crd_and_plans_from_the_other_kinds() {
    let fake = FakeKube::with_dump(example());
    fake.uninstall("buckets");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path());
    let out = exporter(
        &[
            "--log-format",
            "json",
            "plan",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let warnings: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["level"] == "warn")
        .collect();
    assert_eq!(warnings.len(), 1, "{}", stderr(&out));
    assert_eq!(
        warnings[0]["msg"],
        "skipping Bucket: the API server does not serve buckets.source.toolkit.fluxcd.io (source.toolkit.fluxcd.io/v1); is the Flux CRD installed?"
    );
    assert!(!stdout(&out).is_empty());
}

#[test]
fn plan_against_a_cluster_reads_the_configmap_ledger_there_and_writes_nothing() {
    use flux_status_exporter::cluster::client::{ConnectOptions, connect};
    use flux_status_exporter::ledger::{ConfigMapStore, Ledger};
    use flux_status_exporter::model::{CommitState, StatusKey};

    let fake = FakeKube::with_dump(example());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path());
    let plan = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec![
            "plan",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-o",
            "json",
        ];
        args.extend(extra);
        let out = exporter(&args, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        value["updates"].as_array().unwrap().clone()
    };
    let fresh = plan(&[]);

    // The ledger a tick would have saved after posting the first update as it is now.
    let first = &fresh[0];
    let mut ledger = Ledger::new();
    ledger.record(
        StatusKey {
            host: first["host"].as_str().unwrap().to_string(),
            repository: first["repository"].as_str().unwrap().to_string(),
            sha: first["sha"].as_str().unwrap().parse().unwrap(),
            context: first["context"].as_str().unwrap().to_string(),
        },
        serde_json::from_value::<CommitState>(first["state"].clone()).unwrap(),
        first["reason"].as_str().unwrap(),
        jiff::Timestamp::now(),
    );
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let connection = connect(&ConnectOptions {
            kubeconfig: Some(kubeconfig.clone()),
            context: None,
            request_timeout: std::time::Duration::from_secs(10),
        })
        .await
        .unwrap();
        ConfigMapStore::new(
            connection.client,
            &connection.default_namespace,
            "flux-status-exporter-ledger",
        )
        .save(&mut ledger)
        .await
        .unwrap();
    });
    let writes = |fake: &FakeKube| fake.requests().iter().filter(|r| r.method != "GET").count();
    let written = writes(&fake);

    let planned = plan(&[]);
    assert_eq!(
        planned.len(),
        fresh.len() - 1,
        "the posted status is unchanged"
    );
    assert!(!planned.contains(first));
    assert_eq!(plan(&["--no-ledger"]), fresh);
    assert_eq!(writes(&fake), written, "plan writes nothing");
}

#[test]
fn once_from_a_snapshot_with_a_configmap_ledger_and_no_cluster_names_the_ledger_and_the_ways_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "cluster: demo\nledger: {backend: configmap}\n").unwrap();
    let snapshot = example().to_str().unwrap();
    let out = exporter(
        &[
            "--config",
            config.to_str().unwrap(),
            "once",
            "--snapshot",
            snapshot,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().last().unwrap(),
        "error: `ledger.backend: configmap` keeps the ledger in the cluster, so it needs a cluster even with --snapshot: no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account; set `ledger.backend: file` (with `ledger.path`) or `memory`, add --dry-run (the ledger is then kept in memory), or make a cluster reachable (--kubeconfig or KUBECONFIG)"
    );
}
