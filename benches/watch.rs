//! What each way of reading the cluster makes the API server do, counted by the fake API
//! server (objects and bytes it serialises), since a fake cannot measure a real server's CPU:
//! `kube.read: list` at several page sizes, and `kube.read: watch` for its first sync, an idle
//! tick and a tick with 1% of the objects changed. Then the client: `run` as a process for
//! each mode (dry run, 2 s schedule) with its CPU time and peak RSS after the same ticks.
//!
//! `cargo bench --bench watch -- [OBJECTS]` (default 20000). Results in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use flux_status_exporter::cluster::kube::KubeReader;
use flux_status_exporter::cluster::watch::ClusterWatch;
use flux_status_exporter::config::Config;
use support::bench::rss;
use support::fake_kube::{FakeKube, Served};
use support::synthetic;

fn row(what: &str, served: Served, wall: Duration) {
    println!(
        "| {what} | {} | {:.1} | {} | {} | {:.0} |",
        served.objects,
        served.bytes as f64 / 1e6,
        served.watch_events,
        served.bookmarks,
        wall.as_secs_f64() * 1e3
    );
}

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(20_000, |a| a.parse().expect("a number of objects"));
    let fake = FakeKube::start();
    let objects = synthetic::cluster(size);
    let count = objects.len();
    for object in &objects {
        fake.put(object.clone()).unwrap();
    }
    fake.set_bookmark_interval(Duration::from_secs(1));
    let home = tempfile::tempdir().unwrap();
    let connection = fake.connect(home.path(), Duration::from_secs(60)).await;
    let kubeconfig = home.path().join("kubeconfig");
    println!("{count} Flux objects in the fake API server\n");
    println!(
        "| read | objects serialised | MB serialised | watch events | bookmarks | client wall ms |"
    );
    println!("|---|---|---|---|---|---|");
    for (what, kube) in [
        ("list, pageSize 500 (every tick)", "pageSize: 500"),
        ("list, pageSize 5000 (every tick)", "pageSize: 5000"),
        ("list, pageSize 10000 (every tick)", "pageSize: 10000"),
        ("list, listFromCache (every tick)", "listFromCache: true"),
    ] {
        let config = Config::from_yaml(
            &format!("kube: {{{kube}, requestTimeout: 60s}}\n"),
            "bench.yaml",
        )
        .unwrap();
        let reader = KubeReader::new(connection.client.clone(), &config);
        fake.reset_served();
        let started = Instant::now();
        let read = reader.read().await.unwrap();
        assert_eq!(read.snapshot.object_count(), count);
        row(what, fake.served(), started.elapsed());
    }

    let config =
        Config::from_yaml("kube: {read: watch, requestTimeout: 60s}\n", "bench.yaml").unwrap();
    let reader = KubeReader::new(connection.client.clone(), &config);
    fake.reset_served();
    let started = Instant::now();
    let watch = ClusterWatch::start(reader, connection.watch_client.clone());
    let first = watch.read().await.unwrap();
    assert_eq!(first.snapshot.object_count(), count);
    row("watch, first sync", fake.served(), started.elapsed());

    fake.reset_served();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let started = Instant::now();
    let idle = watch.read().await.unwrap();
    assert_eq!(idle.snapshot, first.snapshot);
    row("watch, idle tick (2.5 s)", fake.served(), started.elapsed());

    // 1% of the objects change (a new revision applied): only they are sent.
    let changed = count / 100;
    fake.reset_served();
    for object in objects.iter().take(changed) {
        let mut object = object.clone();
        object["metadata"]["annotations"] = serde_json::json!({"bench/changed": "yes"});
        fake.put(object).unwrap();
    }
    let started = Instant::now();
    loop {
        if fake.served().watch_events >= changed as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    watch.read().await.unwrap();
    row(
        &format!("watch, tick with {changed} objects changed (1%)"),
        fake.served(),
        started.elapsed(),
    );
    drop(watch);

    // The client: `run` as a process, per mode, over the same ticks.
    println!("\n| run, 2 s schedule, 5 ticks | process CPU s | peak RSS MB |");
    println!("|---|---|---|");
    let exporter = env!("CARGO_BIN_EXE_flux-status-exporter");
    for (index, kube) in [
        "read: list",
        "read: list, listFromCache: true",
        "read: watch",
    ]
    .into_iter()
    .enumerate()
    {
        let config = home.path().join(format!("mode-{index}.yaml"));
        std::fs::write(
            &config,
            format!(
                "cluster: bench\nschedule: 2s\nkube: {{{kube}, requestTimeout: 60s}}\nledger: {{backend: memory}}\nhttp: {{listen: \"127.0.0.1:0\"}}\n"
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(exporter)
            .args(["--config", config.to_str().unwrap(), "run", "--dry-run"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env("HOME", home.path())
            .env("FLUX_STATUS_EXPORTER_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        let pid = child.id();
        let cpu = cpu_seconds(pid);
        let (peak, _) = rss(pid);
        let _ = child.kill();
        let _ = child.wait();
        println!("| `{kube}` | {cpu:.2} | {:.0} |", peak as f64 / 1e6);
    }
}
