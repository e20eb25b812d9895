//! The performance scenarios of `benches/fleet.rs`, shared with their CI smoke versions in
//! `tests/bench_smoke.rs` (same code, small sizes, no timing assertions). Everything runs
//! against the fake API server and the strict fake GitHub on loopback; the exporter is either
//! built in this process exactly as `run` builds it (with deliveries on a virtual clock when a
//! scenario needs hours of pacing) or run as the real binary.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_status_exporter::app::{Exporter, RunOptions, TickOutcome, TickReport, build_parts};
use flux_status_exporter::config::Config;
use flux_status_exporter::forge::{Clock, CredentialSources, DeliveryPolicy, Publishers};
use flux_status_exporter::leader::Leadership;
use flux_status_exporter::metrics::Metrics;
use jiff::Timestamp;

use super::fake_forges::github::GitHubFake;
use super::fake_forges::{FakeServer, Recorded, SkipClock};
use super::fake_kube::FakeKube;
use super::fleet::{Fleet, Health};

pub const TOKEN: &str = "ghp_benchbenchbenchbenchbenchbench0001";

/// The Flux list endpoints a tick reads, by the resource's plural name.
pub const LIST_PATHS: [(&str, &str); 6] = [
    (
        "kustomizations",
        "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
    ),
    (
        "helmreleases",
        "/apis/helm.toolkit.fluxcd.io/v2/helmreleases",
    ),
    (
        "gitrepositories",
        "/apis/source.toolkit.fluxcd.io/v1/gitrepositories",
    ),
    (
        "ocirepositories",
        "/apis/source.toolkit.fluxcd.io/v1/ocirepositories",
    ),
    ("helmcharts", "/apis/source.toolkit.fluxcd.io/v1/helmcharts"),
    ("buckets", "/apis/source.toolkit.fluxcd.io/v1/buckets"),
];

/// A fake cluster holding a fleet, a fake GitHub, and a scratch directory.
pub struct Bench {
    pub kube: FakeKube,
    pub github: FakeServer<GitHubFake>,
    pub fleet: Fleet,
    pub clock: Arc<SkipClock>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// GitHub's secondary limits as the fake enforces them and the exporter paces to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_minute: usize,
    pub per_hour: usize,
}

impl Limits {
    /// GitHub's documented content-creation limits (and the exporter's defaults).
    pub const GITHUB: Limits = Limits {
        per_minute: 80,
        per_hour: 500,
    };
    /// Limits no scenario reaches: for scenarios about reading, not pacing.
    pub const NONE: Limits = Limits {
        per_minute: 1_000_000,
        per_hour: 60_000_000,
    };
}

impl Bench {
    /// A fleet of about `total` objects in a fake cluster, and a fake GitHub that refuses posts
    /// over `limits` (on the virtual clock the exporter's deliveries also use). Must be called
    /// inside a Tokio runtime.
    pub async fn start(total: usize, limits: Limits) -> Bench {
        let kube = FakeKube::start();
        let fleet = Fleet::new(total);
        for object in fleet.objects() {
            kube.put(object).unwrap();
        }
        let clock = SkipClock::new();
        let github = FakeServer::start(
            GitHubFake::new(TOKEN)
                .limit_per_minute(limits.per_minute)
                .limit_per_hour(limits.per_hour),
            clock.clone(),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = kube.write_kubeconfig(dir.path());
        std::fs::write(dir.path().join("github-token"), TOKEN).unwrap();
        Bench {
            kube,
            github,
            fleet,
            clock,
            dir,
            kubeconfig,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Configuration for the fake GitHub, paced to `limits`; `ledger` is the YAML of the
    /// `ledger` section's value.
    pub fn yaml(&self, limits: Limits, ledger: &str) -> String {
        format!(
            "cluster: bench\nschedule: 1m\nforges:\n\
             - type: github\n  apiUrl: {}\n  repositories: [\"acme/*\"]\n  rateLimit: {{perMinute: {}, perHour: {}}}\n  requestTimeout: 10s\n  credentials: {{token: {{file: {}}}}}\n\
             ledger: {ledger}\n",
            self.github.url(),
            limits.per_minute,
            limits.per_hour,
            self.path("github-token").display(),
        )
    }

    /// Writes the configuration to `name` and returns its path.
    pub fn write_config(&self, name: &str, limits: Limits, ledger: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, self.yaml(limits, ledger)).unwrap();
        path.display().to_string()
    }

    /// An exporter built as `run` builds it, delivering on the virtual clock, ledger loaded;
    /// and its metrics.
    pub async fn exporter(&self, limits: Limits, ledger: &str) -> (Exporter, Arc<Metrics>) {
        let yaml = self.yaml(limits, ledger);
        let config = Config::from_yaml(&yaml, "bench.yaml").unwrap_or_else(|e| panic!("{e}"));
        let options = RunOptions {
            kubeconfig: Some(self.kubeconfig.clone()),
            ..RunOptions::default()
        };
        let mut parts = build_parts(&config, &options, false, config.kube.read)
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = self.clock.clone();
        parts.publishers = Arc::new(
            Publishers::from_config_with(
                &config,
                &CredentialSources::new(),
                DeliveryPolicy {
                    jitter_seed: Some(7),
                    ..DeliveryPolicy::default()
                },
                clock,
            )
            .unwrap(),
        );
        let metrics = Arc::new(Metrics::new(&config.cluster, "bench", "bench").unwrap());
        let mut exporter = Exporter::new(
            Arc::new(config),
            parts,
            metrics.clone(),
            Leadership::always(),
            false,
        );
        exporter.load_ledger().await.unwrap();
        (exporter, metrics)
    }

    /// Stores Kustomization `i` as the fleet now describes it.
    pub fn put_kustomization(&self, i: usize) {
        self.kube.put(self.fleet.kustomization(i)).unwrap();
    }

    /// Status posts the fake GitHub accepted or refused since request `from`.
    pub fn posts_since(&self, from: usize) -> Vec<Post> {
        posts(&self.github.requests()[from..])
    }
}

/// The status context of a Kustomization under the default template.
pub fn kustomization_context(namespace: &str, name: &str) -> String {
    format!("flux/bench/Kustomization/{namespace}/{name}")
}

/// One status post as the fake GitHub received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub repository: String,
    pub sha: String,
    pub context: String,
    pub state: String,
}

/// The status posts among `requests`.
pub fn posts(requests: &[Recorded]) -> Vec<Post> {
    requests
        .iter()
        .filter(|r| r.method == "POST")
        .filter_map(|r| {
            let rest = r.path_only().strip_prefix("/repos/")?;
            let parts: Vec<&str> = rest.split('/').collect();
            let [owner, repo, "statuses", sha] = parts.as_slice() else {
                return None;
            };
            Some(Post {
                repository: format!("{owner}/{repo}"),
                sha: (*sha).to_string(),
                context: r.body["context"].as_str()?.to_string(),
                state: r.body["state"].as_str()?.to_string(),
            })
        })
        .collect()
}

/// Series in a Prometheus text exposition (lines that are not comments or blank).
pub fn series(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// Series whose labels name `namespace/name` as an object.
pub fn series_naming(text: &str, namespace: &str, name: &str) -> usize {
    let ns = format!("namespace=\"{namespace}\"");
    let n = format!("name=\"{name}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&ns) && l.contains(&n))
        .count()
}

/// CPU time (user + system) this thread has used, from `/proc/thread-self/stat` (clock ticks
/// of 10 ms: measure spans of a second or more).
pub fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Peak and current resident set size of a process, in bytes, from `/proc/PID/status`.
pub fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().strip_suffix(" kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

// --- Idle ---------------------------------------------------------------------------------

/// What `ticks` ticks over an unchanged fleet cost.
#[derive(Debug, Clone)]
pub struct IdleReport {
    pub objects: usize,
    pub ticks: usize,
    /// Statuses posted by the first tick (the catch-up from an empty ledger).
    pub first_tick_posts: usize,
    /// Requests the fake GitHub received after the first tick.
    pub forge_requests: usize,
    /// Per kind: list sequences started (a request without `continue`) per idle tick.
    pub list_sequences: BTreeMap<&'static str, Vec<usize>>,
    /// Per kind: pages requested per idle tick.
    pub pages: BTreeMap<&'static str, Vec<usize>>,
    /// Requests other than Flux lists during the idle ticks, as `METHOD path`.
    pub other_kube_requests: Vec<String>,
    pub tick_seconds: Vec<f64>,
    /// CPU seconds of this thread per idle tick (the exporter and the fakes share it).
    pub cpu_seconds_total: f64,
    pub reports: Vec<TickReport>,
}

/// One catch-up tick, then `ticks` ticks with nothing changed, with the ConfigMap ledger.
/// Run on a current-thread runtime so the exporter's work is this thread's CPU time.
pub async fn idle(total: usize, ticks: usize) -> IdleReport {
    let bench = Bench::start(total, Limits::NONE).await;
    let ledger = "{backend: configmap, configMapName: bench-ledger}";
    let (mut exporter, _metrics) = bench.exporter(Limits::NONE, ledger).await;
    let first = exporter.tick().await;
    assert_eq!(first.outcome, TickOutcome::Completed, "{first:?}");
    let first_tick_posts = bench.posts_since(0).len();
    let forge_before = bench.github.requests().len();
    let mut list_sequences: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    let mut pages: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    let mut other = Vec::new();
    let mut tick_seconds = Vec::new();
    let mut reports = Vec::new();
    let cpu_before = thread_cpu();
    for _ in 0..ticks {
        bench.kube.clear_requests();
        let started = Instant::now();
        let report = exporter.tick().await;
        tick_seconds.push(started.elapsed().as_secs_f64());
        let requests = bench.kube.requests();
        for (kind, path) in LIST_PATHS {
            let to_kind: Vec<_> = requests.iter().filter(|r| r.path == path).collect();
            list_sequences.entry(kind).or_default().push(
                to_kind
                    .iter()
                    .filter(|r| r.param("continue").is_none())
                    .count(),
            );
            pages.entry(kind).or_default().push(to_kind.len());
        }
        other.extend(
            requests
                .iter()
                .filter(|r| !LIST_PATHS.iter().any(|(_, p)| *p == r.path))
                .map(|r| format!("{} {}", r.method, r.path)),
        );
        reports.push(report);
    }
    let cpu_seconds_total = (thread_cpu() - cpu_before).as_secs_f64();
    IdleReport {
        objects: bench.fleet.len(),
        ticks,
        first_tick_posts,
        forge_requests: bench.github.requests().len() - forge_before,
        list_sequences,
        pages,
        other_kube_requests: other,
        tick_seconds,
        cpu_seconds_total,
        reports,
    }
}

// --- Change storm ------------------------------------------------------------------------

/// A change storm and how it drained.
#[derive(Debug, Clone)]
pub struct StormReport {
    pub objects: usize,
    /// Kustomizations that changed at once.
    pub changed: usize,
    /// Updates the first tick planned.
    pub planned_first_tick: usize,
    pub first_tick_plan_seconds: f64,
    /// Ticks until nothing was left to post (the first included).
    pub ticks_to_drain: usize,
    /// Virtual time from the storm to the last post.
    pub drain_virtual: Duration,
    pub posts: usize,
    pub rejections: usize,
    /// The most posts the fake accepted within any 60 virtual seconds.
    pub busiest_minute: usize,
    /// Kustomizations that became ready while the storm was draining.
    pub settled_midway: usize,
    /// Posts that were already outdated when sent (a state an object had left).
    pub stale_posts: usize,
    /// Objects whose last post is not their current truth once drained.
    pub wrong_final: usize,
    /// Wall time of the whole drain.
    pub wall_seconds: f64,
}

/// Every Kustomization's source moves to a new commit at once and every Kustomization starts
/// applying it: `changed` new pending statuses. The exporter, paced to `limits` on a virtual
/// clock against a fake GitHub enforcing the same limits, ticks every virtual minute until
/// everything is posted. After the first tick, a tenth of the Kustomizations become ready,
/// so the rest of the drain must post their new truth, not the state they had.
pub async fn storm(total: usize, limits: Limits) -> StormReport {
    let mut bench = Bench::start(total, Limits::NONE).await;
    // Start from a settled fleet whose statuses are all posted.
    for h in bench.fleet.kustomizations.iter_mut() {
        *h = Health::Ready;
    }
    for i in 0..bench.fleet.kustomizations.len() {
        bench.put_kustomization(i);
    }
    let ledger_path = bench.path("ledger.json");
    let ledger = format!("{{backend: file, path: {}}}", ledger_path.display());
    {
        let (mut seed, _) = bench.exporter(Limits::NONE, &ledger).await;
        let report = seed.tick().await;
        assert_eq!(report.outcome, TickOutcome::Completed, "{report:?}");
        assert_eq!(report.retry_later, 0, "{report:?}");
    }
    bench.clock.advance(Duration::from_secs(7200));
    bench.github.with(|g| {
        g.per_minute = Some(limits.per_minute);
        g.per_hour = Some(limits.per_hour);
    });
    let (mut exporter, _metrics) = bench.exporter(limits, &ledger).await;
    let from = bench.github.requests().len();
    let accepted_before = bench.github.with(|g| g.accepted_at.len());

    // The storm.
    for r in 0..bench.fleet.git_generations.len() {
        bench.fleet.advance_git(r);
        bench.kube.put(bench.fleet.git_repository(r)).unwrap();
    }
    for o in 0..bench.fleet.oci_generations.len() {
        bench.fleet.advance_oci(o);
        bench.kube.put(bench.fleet.oci_repository(o)).unwrap();
    }
    let changed = bench.fleet.kustomizations.len();
    for i in 0..changed {
        bench.fleet.kustomizations[i] = Health::Progressing;
        bench.put_kustomization(i);
    }
    let started_virtual = bench.clock.now();
    let wall = Instant::now();

    let first = exporter.tick().await;
    let planned_first_tick = first.planned;
    let first_tick_plan_seconds = wall.elapsed().as_secs_f64();
    // Contexts posted pending by now; a tenth of the objects then become ready.
    let mut settled = HashMap::new();
    let posted_so_far = bench.posts_since(from).len();
    for i in (0..changed).step_by(10) {
        bench.fleet.kustomizations[i] = Health::Ready;
        bench.put_kustomization(i);
        let (_, ns, name) = bench.fleet.kustomization_id(i);
        settled.insert(kustomization_context(&ns, &name), ());
    }
    let mut ticks = 1;
    let mut last = first;
    // At least one tick after the settling, which may come after tick 1 drained everything.
    while last.retry_later > 0 || ticks == 1 {
        assert_eq!(last.permanent_errors, 0, "{last:?}");
        bench.clock.advance(Duration::from_secs(60));
        last = exporter.tick().await;
        ticks += 1;
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            eprintln!("tick {ticks}: {last:?}");
        }
        assert!(ticks < 100_000, "the storm never drained: {last:?}");
    }
    // The ledger is up to date: one more tick plans nothing.
    bench.clock.advance(Duration::from_secs(60));
    let settle = exporter.tick().await;
    assert_eq!(settle.planned, 0, "{settle:?}");

    let all = bench.posts_since(from);
    let drain_virtual = bench.clock.now() - started_virtual;
    let stale_posts = all[posted_so_far..]
        .iter()
        .filter(|p| settled.contains_key(&p.context) && p.state == "pending")
        .count();
    let mut last_state: HashMap<&str, &str> = HashMap::new();
    for p in &all {
        last_state.insert(&p.context, &p.state);
    }
    let wrong_final = (0..changed)
        .filter(|i| {
            let (_, ns, name) = bench.fleet.kustomization_id(*i);
            let context = kustomization_context(&ns, &name);
            let expected = if settled.contains_key(&context) {
                "success"
            } else {
                "pending"
            };
            last_state.get(context.as_str()) != Some(&expected)
        })
        .count();
    let (rejections, busiest_minute) = bench.github.with(|g| {
        let mut window = GitHubFake::new(TOKEN);
        window.accepted_at = g.accepted_at[accepted_before..].to_vec();
        (g.rate_limited, window.busiest_minute())
    });
    StormReport {
        objects: bench.fleet.len(),
        changed,
        planned_first_tick,
        first_tick_plan_seconds,
        ticks_to_drain: ticks,
        drain_virtual,
        posts: all.len(),
        rejections,
        busiest_minute,
        settled_midway: settled.len(),
        stale_posts,
        wrong_final,
        wall_seconds: wall.elapsed().as_secs_f64(),
    }
}

// --- Endurance (in process) ------------------------------------------------------------

/// What a long run kept.
#[derive(Debug, Clone)]
pub struct EnduranceSample {
    pub tick: usize,
    pub series: usize,
    pub ledger_entries: usize,
    /// Series naming an object deleted in an earlier tick (and not back).
    pub series_of_deleted: usize,
}

/// One endurance step: 1% of the Kustomizations move to their next health (with
/// `new_commits`, a move to progressing first advances the source to its next commit), and one
/// in 200 objects is deleted while the one deleted a step earlier comes back.
pub fn endurance_step(bench: &mut Bench, step: usize, deleted: &mut Vec<usize>, new_commits: bool) {
    let count = bench.fleet.kustomizations.len();
    let changes = (count / 100).max(1);
    for c in 0..changes {
        let i = (step * changes * 7 + c * 13) % count;
        let next = bench.fleet.kustomizations[i].next();
        if new_commits && next == Health::Progressing && !bench.fleet.git_generations.is_empty() {
            // A new commit on its source, which it starts to apply.
            let r = i % bench.fleet.git_generations.len();
            if i % 4 != 3 {
                bench.fleet.advance_git(r);
                bench.kube.put(bench.fleet.git_repository(r)).unwrap();
            }
        }
        bench.fleet.kustomizations[i] = next;
        if !deleted.contains(&i) {
            bench.put_kustomization(i);
        }
    }
    // Churn: objects come back, others go.
    for i in deleted.drain(..) {
        bench.put_kustomization(i);
    }
    for d in 0..(count / 200).max(1) {
        let i = (step * 31 + d * 97) % count;
        let (resource, ns, name) = bench.fleet.kustomization_id(i);
        if bench.kube.delete(resource, &ns, &name) {
            deleted.push(i);
        }
    }
}

/// `ticks` ticks of [`endurance_step`] in this process, sampled at the given ticks.
pub async fn endurance_in_process(
    total: usize,
    ticks: usize,
    samples_at: &[usize],
) -> Vec<EnduranceSample> {
    let mut bench = Bench::start(total, Limits::NONE).await;
    let ledger = format!(
        "{{backend: file, path: {}}}",
        bench.path("ledger.json").display()
    );
    let (mut exporter, metrics) = bench.exporter(Limits::NONE, &ledger).await;
    let mut deleted = Vec::new();
    let mut samples = Vec::new();
    for tick in 1..=ticks {
        let report = exporter.tick().await;
        assert_eq!(
            report.outcome,
            TickOutcome::Completed,
            "tick {tick}: {report:?}"
        );
        assert_eq!(report.retry_later, 0, "tick {tick}: {report:?}");
        if samples_at.contains(&tick) {
            let text = metrics.render(Timestamp::now());
            let series_of_deleted = deleted
                .iter()
                .map(|i| {
                    let (_, ns, name) = bench.fleet.kustomization_id(*i);
                    series_naming(&text, &ns, &name)
                })
                .sum();
            samples.push(EnduranceSample {
                tick,
                series: series(&text),
                ledger_entries: exporter.ledger().len(),
                series_of_deleted,
            });
        }
        endurance_step(&mut bench, tick, &mut deleted, true);
        bench.clock.advance(Duration::from_secs(60));
    }
    samples
}

/// The values of a metric family's samples in a text exposition, by their label text.
pub fn samples(text: &str, family: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(family))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let rest = name_labels.strip_prefix(family)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            Some((rest.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of a family's samples.
pub fn sum(text: &str, family: &str) -> f64 {
    samples(text, family).iter().map(|(_, v)| v).sum()
}

// --- Child processes under GNU time ----------------------------------------------------------

/// GNU time, which measures a child's wall time, CPU time and peak RSS.
pub const GNU_TIME: &str = "/usr/bin/time";

/// One measured run of a child process.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub wall: f64,
    /// User + system seconds.
    pub cpu: f64,
    pub peak_rss_mb: f64,
}

/// Runs `program` under GNU time with `HOME` at `home`, no ambient kubeconfig and its output
/// discarded; panics if it fails. The usage and its standard error.
pub fn measure(home: &Path, program: &str, args: &[&str]) -> (Usage, String) {
    let report = home.join("time.txt");
    let output = std::process::Command::new(GNU_TIME)
        .arg("-o")
        .arg(&report)
        .args(["-f", "%e %U %S %M", program])
        .args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("FLUX_STATUS_EXPORTER_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{program} failed: {stderr}");
    let text = std::fs::read_to_string(&report).unwrap();
    let fields: Vec<f64> = text
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let usage = Usage {
        wall: fields[0],
        cpu: fields[1] + fields[2],
        peak_rss_mb: fields[3] / 1024.0,
    };
    (usage, stderr)
}

/// `kubectl get RESOURCES -A -o json` against `kubeconfig`, measured as [`measure`] does.
pub fn kubectl_get_json(home: &Path, kubeconfig: &str, resources: &str) -> Usage {
    measure(
        home,
        "kubectl",
        &[
            "--kubeconfig",
            kubeconfig,
            "get",
            resources,
            "-A",
            "-o",
            "json",
        ],
    )
    .0
}

/// Table cells comparing our run with kubectl's: wall s, CPU s and peak RSS MB of each, then
/// the three ratios.
pub fn against_kubectl(ours: &Usage, kubectl: &Usage) -> String {
    format!(
        "{:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:.3} | {:.3} | {:.3}",
        ours.wall,
        ours.cpu,
        ours.peak_rss_mb,
        kubectl.wall,
        kubectl.cpu,
        kubectl.peak_rss_mb,
        ours.wall / kubectl.wall,
        ours.cpu / kubectl.cpu,
        ours.peak_rss_mb / kubectl.peak_rss_mb,
    )
}

/// The run with the median wall time.
pub fn median(runs: usize, mut run: impl FnMut() -> Usage) -> Usage {
    let mut all: Vec<Usage> = (0..runs.max(1)).map(|_| run()).collect();
    all.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    all[all.len() / 2]
}

/// The median of some figures.
pub fn median_of(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The `key=value` field of the last log line containing `message`.
pub fn logged_field(log: &str, message: &str, key: &str) -> Option<String> {
    let line = log.lines().rev().find(|l| l.contains(message))?;
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
        .map(str::to_string)
}
