//! The exporter at fleet scale, against the fake API server and the strict fake GitHub on
//! loopback, with the synthetic fleet of `tests/support/fleet.rs`. One command per scenario
//! (see BENCHMARKS.md for what each measures and how to read it):
//!
//! ```sh
//! cargo bench --bench fleet -- tick [SIZES...]      # whole tick vs kubectl (2k, 20k, 100k)
//! cargo bench --bench fleet -- idle [SIZES...]      # 100 ticks with nothing changed
//! cargo bench --bench fleet -- storm [CHANGES]      # 5,000 changes at once at GitHub's pacing
//! cargo bench --bench fleet -- endurance [SIZE] [TICKS]  # 1,000 ticks of `run`, 1% changing
//! cargo bench --bench fleet -- endurance-commits [SIZE] [TICKS]  # the same, with new commits
//! cargo bench --bench fleet -- cold [SIZE]          # start to first tick; binary size
//! cargo bench --bench fleet -- cronjob [SIZE]       # `once` with the ConfigMap ledger
//! cargo bench --bench fleet                         # all but endurance
//! cargo bench --bench fleet -- serve [SIZE] [SECONDS]  # a settled fleet to profile by hand
//! ```
//!
//! `BENCH_RUNS` sets the runs per child-process measurement (default 3, 1 above 20,000
//! objects); medians are reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use flux_status_exporter::app::inputs::read_snapshot;
use flux_status_exporter::assess::assess;
use flux_status_exporter::config::Config;
use flux_status_exporter::ledger::FileStore;
use flux_status_exporter::plan::plan;
use support::bench::{
    self, Bench, GNU_TIME, Limits, Usage, against_kubectl, kubectl_get_json, logged_field, measure,
    median, median_of, rss, series, series_naming, sum, thread_cpu,
};
use support::exporter::{RunningExporter, command};

const BINARY: &str = env!("CARGO_BIN_EXE_flux-status-exporter");

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let scenario = args.first().map(String::as_str).unwrap_or("all");
    let numbers: Vec<usize> = args
        .iter()
        .skip(1)
        .map(|a| a.parse().expect("sizes are numbers"))
        .collect();
    assert!(
        Path::new(GNU_TIME).exists(),
        "{GNU_TIME} (GNU time) is needed to measure CPU and peak RSS: apt-get install time"
    );
    let or = |default: &[usize]| {
        if numbers.is_empty() {
            default.to_vec()
        } else {
            numbers.clone()
        }
    };
    match scenario {
        "tick" => tick(&or(&[2_000, 20_000, 100_000])),
        "idle" => idle(&or(&[2_000, 20_000])),
        "storm" => storm(or(&[5_000])[0]),
        "endurance" | "endurance-commits" => endurance(
            numbers.first().copied().unwrap_or(2_000),
            numbers.get(1).copied().unwrap_or(1_000),
            scenario == "endurance-commits",
        ),
        "cold" => cold(or(&[2_000])[0]),
        "cronjob" => cronjob(or(&[2_000])[0]),
        "serve" => serve(
            numbers.first().copied().unwrap_or(20_000),
            numbers.get(1).copied().unwrap_or(600),
        ),
        "all" => {
            tick(&[2_000, 20_000, 100_000]);
            idle(&[2_000, 20_000]);
            storm(5_000);
            cold(2_000);
            cronjob(2_000);
        }
        other => panic!("unknown scenario {other}: tick, idle, storm, endurance, cold, cronjob"),
    }
}

fn runs_for(size: usize) -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if size > 20_000 { 1 } else { 3 })
}

/// A runtime for the fake forges (and in-process exporters) of one scenario.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A single-threaded runtime, for in-process scenarios whose CPU time is read from the thread.
fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fleet in the fake cluster with every status already posted and recorded in the ledger
/// the configuration names (the first `once`, not measured): the steady state every later tick
/// starts from. Returns the configuration's path.
fn settled(bench: &Bench, ledger: &str) -> (String, Usage, String) {
    let config = bench.write_config("bench.yaml", Limits::NONE, ledger);
    let kubeconfig = bench.kubeconfig.display().to_string();
    let (usage, log) = measure(
        bench.dir.path(),
        BINARY,
        &["--config", &config, "once", "--kubeconfig", &kubeconfig],
    );
    let delivered = logged_field(&log, "poll finished", "delivered").unwrap_or_default();
    (config, usage, delivered)
}

// --- Whole tick against kubectl -------------------------------------------------------------

fn tick(sizes: &[usize]) {
    println!("## Whole tick (`once`, nothing to publish) against kubectl\n");
    println!(
        "| objects | JSON MB | catch-up posts | ours wall s | ours CPU s | ours peak RSS MB | kubectl wall s | kubectl CPU s | kubectl peak RSS MB | wall ratio | CPU ratio | RSS ratio | assess µs/object | plan µs/object |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &size in sizes {
        let rt = runtime();
        let bench = rt.block_on(Bench::start(size, Limits::NONE));
        let count = bench.fleet.len();
        let json_bytes: usize = bench.fleet.objects().map(|o| o.to_string().len()).sum();
        let ledger_path = bench.path("ledger.json");
        let ledger = format!("{{backend: file, path: {}}}", ledger_path.display());
        let (config, _, delivered) = settled(&bench, &ledger);
        let kubeconfig = bench.kubeconfig.display().to_string();
        let runs = runs_for(size);
        let ours = median(runs, || {
            let (usage, log) = measure(
                bench.dir.path(),
                BINARY,
                &["--config", &config, "once", "--kubeconfig", &kubeconfig],
            );
            assert_eq!(
                logged_field(&log, "poll finished", "planned").as_deref(),
                Some("0"),
                "a settled fleet plans nothing: {log}"
            );
            usage
        });
        let kubectl = median(runs, || {
            kubectl_get_json(
                bench.dir.path(),
                &kubeconfig,
                "kustomizations,helmreleases,gitrepositories,ocirepositories,helmcharts",
            )
        });
        let (assess_us, plan_us) = assess_and_plan_cpu(&bench, &config, &ledger_path);
        println!(
            "| {count} | {:.0} | {delivered} | {} | {assess_us:.2} | {plan_us:.2} |",
            json_bytes as f64 / 1e6,
            against_kubectl(&ours, &kubectl),
        );
    }
    println!();
}

/// CPU time per object of `assess` and of `plan` (against the settled ledger), in this thread,
/// over enough repetitions to span seconds.
fn assess_and_plan_cpu(bench: &Bench, config_path: &str, ledger_path: &Path) -> (f64, f64) {
    let dump = bench.path("fleet.json");
    {
        let items: Vec<_> = bench.fleet.objects().collect();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        std::fs::write(&dump, list.to_string()).unwrap();
    }
    let text = std::fs::read_to_string(config_path).unwrap();
    let config = Config::from_yaml(&text, config_path).unwrap();
    let snapshot = read_snapshot(&dump, &config).unwrap();
    std::fs::remove_file(&dump).unwrap();
    let ledger = FileStore::new(ledger_path).load().unwrap().ledger;
    let objects = bench.fleet.len() as f64;
    let reps = (400_000 / bench.fleet.len()).clamp(3, 200);
    let started = thread_cpu();
    let mut assessment = None;
    for _ in 0..reps {
        assessment = Some(std::hint::black_box(assess(&snapshot, &config)));
    }
    let assess_cpu = thread_cpu() - started;
    let assessment = assessment.unwrap();
    let started = thread_cpu();
    for _ in 0..reps {
        let planned = std::hint::black_box(plan(&assessment, &ledger, &config));
        assert!(planned.updates.is_empty(), "the ledger is settled");
    }
    let plan_cpu = thread_cpu() - started;
    let per_object = |d: Duration| d.as_secs_f64() * 1e6 / reps as f64 / objects;
    (per_object(assess_cpu), per_object(plan_cpu))
}

// --- Idle ---------------------------------------------------------------------------------

fn idle(sizes: &[usize]) {
    println!("## Idle: 100 ticks with nothing changed (in process, ConfigMap ledger)\n");
    println!(
        "| objects | catch-up posts | forge requests in 100 ticks | list sequences per kind per tick | pages per tick | other API requests | median tick ms | CPU ms per tick |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &size in sizes {
        let rt = current_thread_runtime();
        let report = rt.block_on(bench::idle(size, 100));
        let sequences: Vec<usize> = report
            .list_sequences
            .values()
            .flat_map(|v| v.iter().copied())
            .collect();
        let (min, max) = (
            sequences.iter().min().copied().unwrap_or(0),
            sequences.iter().max().copied().unwrap_or(0),
        );
        let pages: usize = report.pages.values().map(|v| v[0]).sum();
        println!(
            "| {} | {} | {} | {} | {pages} | {} | {:.1} | {:.1} |",
            report.objects,
            report.first_tick_posts,
            report.forge_requests,
            if min == max {
                format!(
                    "{min} (all {} kinds, every tick)",
                    report.list_sequences.len()
                )
            } else {
                format!("{min}..{max}")
            },
            report.other_kube_requests.len(),
            median_of(&report.tick_seconds) * 1000.0,
            report.cpu_seconds_total * 1000.0 / report.ticks as f64,
        );
    }
    println!();
}

// --- Change storm -----------------------------------------------------------------------------

fn storm(changes: usize) {
    println!("## Change storm: {changes} Kustomizations change at once (virtual clock)\n");
    println!(
        "| pacing (fake enforces the same) | objects | changed | planned in tick 1 | tick 1 read+plan+deliver wall s | ticks to drain | drain (virtual) | posts | rejections | busiest minute | settled midway | stale posts | wrong final | wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // Kustomizations are 40% of a fleet.
    let total = changes * 5 / 2;
    for (name, limits) in [
        ("80/min, 500/h (GitHub)", Limits::GITHUB),
        (
            "80/min, hourly lifted",
            Limits {
                per_minute: 80,
                per_hour: 1_000_000,
            },
        ),
    ] {
        let rt = current_thread_runtime();
        let r = rt.block_on(bench::storm(total, limits));
        println!(
            "| {name} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            r.objects,
            r.changed,
            r.planned_first_tick,
            r.first_tick_plan_seconds,
            r.ticks_to_drain,
            human(r.drain_virtual),
            r.posts,
            r.rejections,
            r.busiest_minute,
            r.settled_midway,
            r.stale_posts,
            r.wrong_final,
            r.wall_seconds,
        );
    }
    println!();
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
}

// --- Endurance ---------------------------------------------------------------------------

fn endurance(size: usize, ticks: usize, new_commits: bool) {
    println!(
        "## Endurance: `run` every second for {ticks} ticks, 1% of Kustomizations changing per tick{}\n",
        if new_commits {
            " (changes to progressing start a new commit)"
        } else {
            " (state changes on their commits)"
        }
    );
    let rt = runtime();
    let mut bench = rt.block_on(Bench::start(size, Limits::NONE));
    let ledger = format!(
        "{{backend: file, path: {}}}",
        bench.path("ledger.json").display()
    );
    let config_path = bench.path("endurance.yaml");
    let yaml = bench
        .yaml(Limits::NONE, &ledger)
        .replace("schedule: 1m", "schedule: 1s");
    std::fs::write(&config_path, yaml).unwrap();
    let mut cmd = command(bench.dir.path());
    cmd.env("FLUX_STATUS_EXPORTER_LOG", "info").args([
        "--config",
        config_path.to_str().unwrap(),
        "run",
        "--kubeconfig",
        bench.kubeconfig.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let mut exporter = RunningExporter::spawn(cmd);
    exporter.address();
    let pid = exporter.pid();
    let samples_at = [1, 10, 50, 100, 250, 500, 750, ticks];
    println!(
        "| tick | RSS MB | peak RSS MB | series | series of deleted objects | ledger entries | ledger KB | posts so far | delivery failures |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut deleted = Vec::new();
    let started = Instant::now();
    for tick in 1..=ticks {
        exporter.wait_until(&format!("tick {tick}"), |e| {
            (e.log().matches("poll finished").count() >= tick).then_some(())
        });
        if samples_at.contains(&tick) {
            let (peak, now) = rss(pid);
            let text = exporter.scrape();
            let of_deleted: usize = deleted
                .iter()
                .map(|i| {
                    let (_, ns, name) = bench.fleet.kustomization_id(*i);
                    series_naming(&text, &ns, &name)
                })
                .sum();
            let failures: f64 = bench::samples(&text, "flux_status_commit_status_deliveries_total")
                .iter()
                .filter(|(labels, _)| !labels.contains("outcome=\"delivered\""))
                .map(|(_, v)| v)
                .sum();
            println!(
                "| {tick} | {:.1} | {:.1} | {} | {of_deleted} | {} | {:.0} | {} | {failures} |",
                now as f64 / 1e6,
                peak as f64 / 1e6,
                series(&text),
                sum(&text, "flux_status_ledger_entries"),
                sum(&text, "flux_status_ledger_bytes") / 1e3,
                bench.posts_since(0).len(),
            );
        }
        bench::endurance_step(&mut bench, tick, &mut deleted, new_commits);
    }
    println!(
        "\n{ticks} ticks in {:.0} s; exit: {}\n",
        started.elapsed().as_secs_f64(),
        exporter.terminate()
    );
}

// --- Cold start and binary size ------------------------------------------------------------

fn cold(size: usize) {
    println!("## Cold start at {size} objects, and the binary\n");
    let rt = runtime();
    let bench = rt.block_on(Bench::start(size, Limits::NONE));
    let ledger = format!(
        "{{backend: file, path: {}}}",
        bench.path("ledger.json").display()
    );
    let (config, _, _) = settled(&bench, &ledger);
    let mut to_first_tick = Vec::new();
    let mut to_listening = Vec::new();
    for _ in 0..runs_for(size).max(5) {
        let mut cmd = command(bench.dir.path());
        cmd.env("FLUX_STATUS_EXPORTER_LOG", "info").args([
            "--config",
            &config,
            "run",
            "--kubeconfig",
            bench.kubeconfig.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
        let spawned = Instant::now();
        let mut exporter = RunningExporter::spawn(cmd);
        // Poll the log closely: this is a measurement, not a test's patience.
        let mut listening = None;
        loop {
            let log = exporter.log();
            if listening.is_none() && log.contains("serving /metrics") {
                listening = Some(spawned.elapsed());
            }
            if log.contains("poll finished") {
                to_first_tick.push(spawned.elapsed().as_secs_f64());
                break;
            }
            assert!(spawned.elapsed() < Duration::from_secs(120), "{log}");
            std::thread::sleep(Duration::from_millis(1));
        }
        to_listening.push(listening.unwrap_or_default().as_secs_f64());
        exporter.terminate();
    }
    let once = median(runs_for(size).max(5), || {
        measure(
            bench.dir.path(),
            BINARY,
            &[
                "--config",
                &config,
                "once",
                "--kubeconfig",
                bench.kubeconfig.to_str().unwrap(),
            ],
        )
        .0
    });
    let size_bytes = std::fs::metadata(BINARY).unwrap().len();
    println!(
        "| objects | `run`: start to serving ms | `run`: start to first completed tick ms | `once` wall ms (start to exit) | `once` peak RSS MB | binary MB (release, stripped) |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |\n",
        bench.fleet.len(),
        median_of(&to_listening) * 1000.0,
        median_of(&to_first_tick) * 1000.0,
        once.wall * 1000.0,
        once.peak_rss_mb,
        size_bytes as f64 / 1e6,
    );
}

// --- CronJob run with the ConfigMap ledger ---------------------------------------------------

fn cronjob(size: usize) {
    println!("## CronJob: `once` at {size} objects with the ConfigMap ledger\n");
    let rt = runtime();
    let bench = rt.block_on(Bench::start(size, Limits::NONE));
    let ledger = "{backend: configmap, configMapName: bench-ledger}";
    let (config, first, delivered) = settled(&bench, ledger);
    let kubeconfig = bench.kubeconfig.display().to_string();
    bench.kube.clear_requests();
    let runs = runs_for(size).max(5);
    let steady = median(runs, || {
        measure(
            bench.dir.path(),
            BINARY,
            &["--config", &config, "once", "--kubeconfig", &kubeconfig],
        )
        .0
    });
    let requests = bench.kube.requests();
    let configmap = |method: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path.contains("/configmaps"))
            .count()
            / runs
    };
    let stored = bench
        .kube
        .objects("configmaps")
        .iter()
        .map(|c| c.to_string().len())
        .sum::<usize>();
    println!(
        "| objects | run | statuses posted | wall s | CPU s | peak RSS MB | ConfigMap GET / PUT / POST per run | ledger ConfigMaps KB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | first (empty ledger, catch-up) | {delivered} | {:.2} | {:.2} | {:.0} | | |",
        bench.fleet.len(),
        first.wall,
        first.cpu,
        first.peak_rss_mb
    );
    println!(
        "| {} | next (settled, median of {runs}) | 0 | {:.2} | {:.2} | {:.0} | {} / {} / {} | {:.0} |\n",
        bench.fleet.len(),
        steady.wall,
        steady.cpu,
        steady.peak_rss_mb,
        configmap("GET"),
        configmap("PUT"),
        configmap("POST"),
        stored as f64 / 1e3,
    );
}

// --- Serving a settled fleet for profiling ---------------------------------------------------

/// Serves a settled fleet (ledger file written, every status posted) for `seconds` and prints
/// the `once` command that runs a tick against it, for heaptrack, massif or perf.
fn serve(size: usize, seconds: usize) {
    let rt = runtime();
    let bench = rt.block_on(Bench::start(size, Limits::NONE));
    let ledger = format!(
        "{{backend: file, path: {}}}",
        bench.path("ledger.json").display()
    );
    let (config, _, delivered) = settled(&bench, &ledger);
    println!(
        "serving {} objects ({delivered} statuses posted and recorded) for {seconds} s:\n{BINARY} --config {config} once --kubeconfig {}",
        bench.fleet.len(),
        bench.kubeconfig.display()
    );
    std::thread::sleep(Duration::from_secs(seconds as u64));
}
