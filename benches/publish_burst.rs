//! A burst of status updates against a fake GitHub that answers after a latency and refuses
//! more than a number of posts per minute, as GitHub's secondary rate limit does. Runs in real
//! time (a 1,000-update burst at 80 per minute takes about 12.6 minutes) and prints the
//! figures recorded in BENCHMARKS.md.
//!
//! cargo bench --bench publish_burst -- [--updates N] [--latency-ms MS] [--per-minute N]

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_status_exporter::config::Config;
use flux_status_exporter::flux::revision::CommitSha;
use flux_status_exporter::flux::{FluxKind, ResourceRef};
use flux_status_exporter::forge::{
    Clock, CredentialSources, DeliveryPolicy, DeliveryResult, Publishers, TokioClock,
};
use flux_status_exporter::model::CommitState;
use flux_status_exporter::model::StatusKey;
use flux_status_exporter::model::{Delivery, StatusUpdate};
use support::fake_forges::FakeServer;
use support::fake_forges::github::GitHubFake;

const TOKEN: &str = "ghp_BenchmarkToken";

struct Args {
    updates: usize,
    latency: Duration,
    per_minute: u32,
}

fn args() -> Args {
    let mut args = Args {
        updates: 1000,
        latency: Duration::from_millis(20),
        per_minute: 80,
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let value = |i: usize| raw.get(i + 1).and_then(|v| v.parse::<u64>().ok());
    for (i, arg) in raw.iter().enumerate() {
        // `cargo bench` adds `--bench`; other unknown arguments are ignored the same way.
        match arg.as_str() {
            "--updates" => args.updates = value(i).expect("--updates N") as usize,
            "--latency-ms" => {
                args.latency = Duration::from_millis(value(i).expect("--latency-ms MS"))
            }
            "--per-minute" => args.per_minute = value(i).expect("--per-minute N") as u32,
            _ => {}
        }
    }
    args
}

fn update(i: usize) -> StatusUpdate {
    StatusUpdate {
        key: StatusKey {
            host: "github.com".into(),
            repository: "acme/app".into(),
            sha: CommitSha::from_hex("0123456789abcdef0123456789abcdef01234567").unwrap(),
            context: format!("flux/bench/Kustomization/apps/app-{i:04}"),
        },
        delivery: Delivery::Forge {
            forge: "github".into(),
        },
        state: CommitState::Success,
        reason: "ReconciliationSucceeded".into(),
        description: "reconciliation succeeded".into(),
        target_url: None,
        resource: ResourceRef {
            kind: FluxKind::Kustomization,
            namespace: "apps".into(),
            name: format!("app-{i:04}"),
        },
        previous: None,
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock);
    let fake = FakeServer::start(
        GitHubFake::new(TOKEN).limit_per_minute(args.per_minute as usize),
        clock.clone(),
    )
    .await;
    fake.set_latency(args.latency);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    // The per-hour budget is lifted: the fake enforces only the per-minute limit under test.
    let config = Config::from_yaml(
        &format!(
            "forges:\n  - type: github\n    apiUrl: {}\n    credentials: {{token: {{file: {}}}}}\n    rateLimit: {{perMinute: {}, perHour: 1000000, concurrency: 1}}\n",
            fake.url(),
            token.display(),
            args.per_minute
        ),
        "bench.yaml",
    )
    .unwrap();
    let publishers = Publishers::from_config_with(
        &config,
        &CredentialSources::new(),
        DeliveryPolicy::default(),
        clock,
    )
    .unwrap();
    let updates: Vec<StatusUpdate> = (0..args.updates).map(update).collect();

    let started = Instant::now();
    let outcomes = publishers.publish(&updates).await;
    let elapsed = started.elapsed();

    let delivered = outcomes
        .iter()
        .filter(|o| o.result == DeliveryResult::Delivered)
        .count();
    let retries: u32 = outcomes.iter().map(|o| o.attempts.saturating_sub(1)).sum();
    let (rejections, busiest) = fake.with(|f| (f.rate_limited, f.busiest_minute()));
    let limit = Duration::from_secs_f64(args.updates as f64 * 60.0 / f64::from(args.per_minute));
    let deviation = (elapsed.as_secs_f64() / limit.as_secs_f64() - 1.0) * 100.0;
    let within = deviation.abs() <= 5.0;

    println!("updates                 {}", args.updates);
    println!("fake latency            {} ms", args.latency.as_millis());
    println!("fake limit              {} posts per 60 s", args.per_minute);
    println!("delivered               {delivered}");
    println!("rate-limit rejections   {rejections}");
    println!("retries                 {retries}");
    println!("busiest 60 s            {busiest} posts");
    println!("total time              {:.1} s", elapsed.as_secs_f64());
    println!(
        "pacing limit            {:.1} s ({} / {} per minute)",
        limit.as_secs_f64(),
        args.updates,
        args.per_minute
    );
    println!("deviation               {deviation:+.2} %");
    println!(
        "mean per update         {:.1} ms",
        elapsed.as_secs_f64() * 1000.0 / args.updates as f64
    );
    println!(
        "result                  {}",
        if rejections == 0 && delivered == args.updates && within {
            "PASS (no rejections, within 5% of the pacing limit)"
        } else {
            "FAIL"
        }
    );
}
