//! Scrape benchmark: what one `/metrics` costs with 20,000 Flux objects, and what the metrics
//! keep in memory between scrapes.
//!
//! The cluster is `tests/support/synthetic.rs`'s (10,000 Kustomizations and 10,000
//! HelmReleases, the objects that get series, with 2,000 GitRepositories as their sources),
//! read from a dump, assessed and observed by a ledger as a poll does. Then:
//! - `Metrics::update_objects` is measured once (what the per-object view adds to the
//!   assessment the poll made, which the view keeps);
//! - `Metrics::render` is run `BENCH_RUNS` times (default 21): median wall time, bytes of text,
//!   series, and allocations (count and bytes) per render;
//! - `/metrics` is fetched `BENCH_RUNS` times over loopback from the exporter's own HTTP server:
//!   median wall time and response bytes.
//!
//! Allocations are counted by the `stats_alloc` crate's instrumented system allocator
//! (atomic counters around `System`; the crate forbids `unsafe`, so no allocator of our own).
//!
//! `cargo bench --bench scrape` (20,000 objects), or `cargo bench --bench scrape -- 2000 20000`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_status_exporter::app::inputs::read_snapshot;
use flux_status_exporter::assess::assess;
use flux_status_exporter::config::Config;
use flux_status_exporter::ledger::Ledger;
use flux_status_exporter::metrics::Metrics;
use flux_status_exporter::server::{Readiness, Server, ServerState};
use jiff::Timestamp;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};
use support::synthetic;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn net_bytes(stats: &Stats) -> i64 {
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64 + stats.bytes_reallocated as i64
}

fn mb(bytes: f64) -> f64 {
    bytes / 1_000_000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `GET /metrics` over HTTP/1.0: the body's length.
fn scrape(address: SocketAddr) -> usize {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let status_line = String::from_utf8_lossy(&response[..head_end]);
    assert!(
        status_line.split_whitespace().nth(1) == Some("200"),
        "not 200: {status_line}"
    );
    response.len() - head_end - 4
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("sizes are numbers of objects"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![20_000]
    } else {
        sizes
    };
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(21);
    println!(
        "| objects with series | series | series per object | render ms (median of {runs}) | text MB | allocations per render | MB allocated per render | HTTP scrape ms (median of {runs}) | response MB | view MB (assessment + facts) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for size in sizes {
        // synthetic::cluster(n) makes 5/11 Kustomizations, 5/11 HelmReleases, 1/11 sources.
        let objects = synthetic::cluster(size * 11 / 10);
        let dir = tempfile::tempdir().unwrap();
        let dump = dir.path().join("cluster.json");
        std::fs::write(
            &dump,
            serde_json::to_vec(
                &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects}),
            )
            .unwrap(),
        )
        .unwrap();
        drop(objects);
        let config = Config::from_yaml("cluster: bench\n", "bench.yaml").unwrap();
        let snapshot = read_snapshot(&dump, &config).unwrap();
        let metrics = Arc::new(Metrics::new(&config.cluster, "0.0.0", "bench").unwrap());
        let now = Timestamp::now();

        // What the view keeps: the assessment (shared with the poll until it ends) and the
        // per-object ledger facts update_objects adds.
        let region = Region::new(GLOBAL);
        let assessment = Arc::new(assess(&snapshot, &config));
        let assessment_bytes = net_bytes(&region.change());
        drop(snapshot);
        let objects = assessment.resources.len();
        let mut ledger = Ledger::new();
        ledger.observe(&assessment, now);
        let region = Region::new(GLOBAL);
        metrics.update_objects(Arc::clone(&assessment), &ledger, &config.kinds);
        let facts_bytes = net_bytes(&region.change());
        drop(assessment);
        metrics.record_poll("success", Duration::from_millis(500), Some(now));

        // Render, as a scrape does.
        let mut times = Vec::with_capacity(runs);
        let mut allocations = Vec::with_capacity(runs);
        let mut allocated = Vec::with_capacity(runs);
        let mut text_bytes = 0;
        let mut series = 0;
        let _ = metrics.render(now);
        for _ in 0..runs {
            let region = Region::new(GLOBAL);
            let started = Instant::now();
            let text = metrics.render(now);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            let stats = region.change();
            allocations.push((stats.allocations + stats.reallocations) as f64);
            allocated
                .push((stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize) as f64);
            text_bytes = text.len();
            series = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .count();
        }
        // Series that name an object, per object (7 each, plus one per failure reason).
        let per_object = {
            let text = metrics.render(now);
            let named = text
                .lines()
                .filter(|l| !l.starts_with('#') && l.contains(",name=\""))
                .count();
            named as f64 / objects as f64
        };

        // The same through the exporter's HTTP server.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let readiness = Arc::new(Readiness::new(Duration::from_secs(180)));
        let state = Arc::new(ServerState::new(Arc::clone(&metrics), readiness));
        let server = runtime
            .block_on(Server::bind("127.0.0.1:0".parse().unwrap(), state))
            .unwrap();
        let address = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let serving = runtime.spawn(server.serve(stopped, Duration::from_secs(1)));
        let _ = scrape(address);
        let mut http_times = Vec::with_capacity(runs);
        let mut response_bytes = 0;
        for _ in 0..runs {
            let started = Instant::now();
            response_bytes = scrape(address);
            http_times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        stop.send(true).unwrap();
        runtime.block_on(serving).unwrap();

        println!(
            "| {objects} | {series} | {per_object:.2} | {:.1} | {:.2} | {:.0} | {:.2} | {:.1} | {:.2} | {:.1} ({:.1} + {:.1}) |",
            median(times),
            mb(text_bytes as f64),
            median(allocations),
            mb(median(allocated)),
            median(http_times),
            mb(response_bytes as f64),
            mb((assessment_bytes + facts_bytes) as f64),
            mb(assessment_bytes as f64),
            mb(facts_bytes as f64),
        );
    }
}
