//! Read benchmark: the exporter's full read (and assess and plan, printing the default table;
//! `-o json` is measured too) of a synthetic cluster served
//! by the fake API server, against `kubectl get kustomizations,helmreleases,gitrepositories -A
//! -o json` on the same server in the same run. Both run as child processes under GNU time, so
//! wall time, CPU time and peak RSS are measured the same way for each.
//!
//! `cargo bench --bench read -- [SIZES...]` (default 2000 20000 100000). `BENCH_RUNS` sets the
//! runs per measurement (default 3, or 1 above 20,000 objects); the median is reported.
//! `BENCH_SERVE_SECONDS=N` only serves the synthetic cluster for N seconds and prints the path of
//! a kubeconfig for it, for profiling by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;

use support::bench::{GNU_TIME as TIME, against_kubectl, kubectl_get_json, measure, median};
use support::fake_kube::FakeKube;
use support::synthetic;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("sizes are numbers of objects"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![2_000, 20_000, 100_000]
    } else {
        sizes
    };
    assert!(
        Path::new(TIME).exists(),
        "{TIME} (GNU time) is needed to measure CPU and peak RSS: apt-get install time"
    );
    let exporter = env!("CARGO_BIN_EXE_flux-status-exporter");
    println!(
        "| objects | JSON MB | ours wall s | ours CPU s | ours peak RSS MB | kubectl wall s | kubectl CPU s | kubectl peak RSS MB | wall ratio | CPU ratio | RSS ratio | ours -o json: wall s, CPU s, RSS MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for size in sizes {
        let runs: usize = std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(if size > 20_000 { 1 } else { 3 });
        let fake = FakeKube::start();
        let mut json_bytes = 0usize;
        let objects = synthetic::cluster(size);
        let count = objects.len();
        for object in objects {
            json_bytes += object.to_string().len();
            fake.put(object).unwrap();
        }
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = fake.write_kubeconfig(home.path());
        let kubeconfig = kubeconfig.to_str().unwrap();
        if let Some(seconds) = std::env::var("BENCH_SERVE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            // For profiling by hand: keep the fake up instead of measuring.
            println!("serving {count} objects; kubeconfig: {kubeconfig}");
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            continue;
        }

        let ours_json = median(runs, || {
            measure(
                home.path(),
                exporter,
                &["plan", "--kubeconfig", kubeconfig, "-o", "json"],
            )
            .0
        });
        let ours = median(runs, || {
            let (usage, stderr) =
                measure(home.path(), exporter, &["plan", "--kubeconfig", kubeconfig]);
            let read = stderr
                .split_whitespace()
                .find_map(|w| w.strip_prefix("objects="))
                .and_then(|n| n.parse::<usize>().ok());
            assert_eq!(
                read,
                Some(count),
                "the exporter read every object: {stderr}"
            );
            usage
        });
        let kubectl = median(runs, || {
            kubectl_get_json(
                home.path(),
                kubeconfig,
                "kustomizations,helmreleases,gitrepositories",
            )
        });
        println!(
            "| {count} | {:.0} | {} | {:.2}, {:.2}, {:.0} |",
            json_bytes as f64 / 1e6,
            against_kubectl(&ours, &kubectl),
            ours_json.wall,
            ours_json.cpu,
            ours_json.peak_rss_mb,
        );
    }
}
