//! The exporter binary run as a user runs it (`run` or `once`), with no ambient Kubernetes
//! configuration, its log collected line by line, and the address it serves on read from its
//! log; plain HTTP/1.0 requests to it; and a fake GitHub for it to deliver to.
//!
//! Waiting is always for a condition, polled until a deadline ([`PATIENCE`]); a test that gives
//! up panics with what it waited for and the exporter's log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use flux_status_exporter::forge::TokioClock;

use super::fake_forges::FakeServer;
use super::fake_forges::github::GitHubFake;

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_flux-status-exporter");

/// How long to wait for a condition before giving up (not a claim about how fast anything is).
pub const PATIENCE: Duration = Duration::from_secs(90);

/// How often a condition is checked while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it gives a value; panics naming `what` (and `context()`) at the deadline.
pub fn wait_for<T>(
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}\n{}",
            context()
        );
        thread::sleep(POLL);
    }
}

/// A command for the binary with no ambient configuration: a private HOME, no KUBECONFIG, not
/// in a pod, no configuration from the environment.
pub fn command(home: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("FLUX_STATUS_EXPORTER_CONFIG")
        .env_remove("FLUX_STATUS_EXPORTER_LOG")
        .env_remove("FLUX_STATUS_EXPORTER_LOG_FORMAT")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("GITHUB_TOKEN")
        .env("HOME", home)
        .stdin(Stdio::null());
    command
}

/// Runs `once` to completion.
pub fn once(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    command(home)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("the binary runs")
}

/// `GET path` over HTTP/1.0 (so the answer is never chunked): status and body.
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address)
        .unwrap_or_else(|e| panic!("cannot connect to {address} for {path}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// A running `flux-status-exporter run`; killed on drop.
pub struct RunningExporter {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<thread::JoinHandle<()>>,
    address: Option<SocketAddr>,
}

impl RunningExporter {
    /// Starts `command` (from [`command`], with `run` and its arguments) with its log collected.
    pub fn spawn(mut command: Command) -> RunningExporter {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        RunningExporter {
            child,
            log,
            reader: Some(reader),
            address: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `check` holds; panics with the log if the process exits or time runs out.
    pub fn wait_until<T>(&mut self, what: &str, mut check: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader drain what the process wrote last.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                panic!(
                    "the exporter exited ({status}) while waiting for {what}; its log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; the exporter's log:\n{}",
                self.log()
            );
            thread::sleep(POLL);
        }
    }

    /// The address it serves on, from its `serving ... address=ADDR` log line.
    pub fn address(&mut self) -> SocketAddr {
        if let Some(address) = self.address {
            return address;
        }
        let address = self.wait_until("the exporter to log the address it serves on", |e| {
            e.log()
                .lines()
                .find(|l| l.contains("serving /metrics, /healthz, /readyz and /status"))
                .and_then(|l| l.split("address=").nth(1))
                .and_then(|a| a.split_whitespace().next())
                .and_then(|a| a.parse().ok())
        });
        self.address = Some(address);
        address
    }

    /// `GET path` on the exporter (whose address must be known: see [`Self::address`]).
    pub fn get(&self, path: &str) -> (u16, String) {
        let address = self
            .address
            .expect("the address is read from the log first (RunningExporter::address)");
        http_get(address, path)
    }

    /// `/metrics`, checked to be served.
    pub fn scrape(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "/metrics answered {status}: {body}");
        body
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM failed");
        let child = &mut self.child;
        let log = Arc::clone(&self.log);
        let status = wait_for(
            "the exporter to exit after SIGTERM",
            || child.try_wait().ok().flatten(),
            || format!("its log:\n{}", log.lock().unwrap()),
        );
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }
}

impl Drop for RunningExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A fake GitHub on loopback with its own runtime, accepting one token and reporting a
/// rate-limit budget on every accepted post.
pub struct GitHub {
    /// Dropped (its task aborted) before the runtime it runs on.
    pub server: FakeServer<GitHubFake>,
    _runtime: tokio::runtime::Runtime,
}

impl GitHub {
    /// Budget the fake reports before any post: `x-ratelimit-remaining` counts down from it.
    pub const BUDGET: u64 = 5000;

    /// Starts the fake, accepting `token`.
    pub fn start(token: &str) -> GitHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let reset = jiff::Timestamp::now().as_second() as u64 + 3600;
        let mut logic = GitHubFake::new(token);
        logic.budget = Some((GitHub::BUDGET, GitHub::BUDGET, reset));
        let server = runtime.block_on(FakeServer::start(logic, Arc::new(TokioClock)));
        GitHub {
            server,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Status posts it accepted.
    pub fn accepted(&self) -> usize {
        self.server.with(|g| g.accepted_at.len())
    }
}

/// A temporary directory holding a configuration file (and whatever else a test puts there).
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` and returns its path as a string.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }
}

/// The token the fake GitHub accepts. It must never appear in a log, `/metrics` or `/status`.
pub const GITHUB_TOKEN: &str = "ghp_e2eSecretTokenThatMustNeverBeShown01";

/// The bearer token the fake API server requires. It must never appear anywhere either.
pub const KUBE_TOKEN: &str = "kube-e2e-secret-token-never-shown";

/// The cluster name of these scenarios.
pub const CLUSTER: &str = "e2e";

/// A fake cluster, a fake GitHub and a workspace for one exporter (or a series of `once` runs).
pub struct Setup {
    pub kube: super::fake_kube::FakeKube,
    pub github: GitHub,
    pub work: Workspace,
    pub kubeconfig: String,
}

impl Setup {
    /// Serves `objects`; the API server requires [`KUBE_TOKEN`], GitHub [`GITHUB_TOKEN`].
    pub fn new(objects: Vec<serde_json::Value>) -> Setup {
        let kube = super::fake_kube::FakeKube::start();
        kube.require_token(KUBE_TOKEN);
        for object in objects {
            kube.put(object).unwrap();
        }
        let work = Workspace::new();
        let kubeconfig = kube
            .write_kubeconfig(work.dir.path())
            .to_str()
            .unwrap()
            .to_string();
        Setup {
            kube,
            github: GitHub::start(GITHUB_TOKEN),
            work,
            kubeconfig,
        }
    }

    /// Where the file ledger lives.
    pub fn ledger_path(&self) -> String {
        self.work.path("ledger.json").to_str().unwrap().to_string()
    }

    /// Writes a configuration: cluster [`CLUSTER`], a poll every second, the file ledger, and
    /// GitHub (`acme/*` on github.com) at the fake with pacing out of the way; `extra` is
    /// appended (top-level YAML). Returns its path.
    pub fn write_config(&self, extra: &str) -> String {
        let text = format!(
            "cluster: {CLUSTER}\n\
             schedule: 1s\n\
             ledger:\n  backend: file\n  path: {}\n\
             forges:\n\
             \x20 - type: github\n\
             \x20   host: github.com\n\
             \x20   apiUrl: {}\n\
             \x20   credentials:\n      token: {{env: GITHUB_TOKEN}}\n\
             \x20   repositories: [\"acme/*\"]\n\
             \x20   rateLimit: {{perMinute: 6000, perHour: 100000, concurrency: 1}}\n\
             {extra}",
            self.ledger_path(),
            self.github.url(),
        );
        self.work.write("config.yaml", &text)
    }

    /// Starts `run --kubeconfig K --listen 127.0.0.1:0` with `config` and `extra` arguments.
    pub fn run(&self, config: &str, extra: &[&str]) -> RunningExporter {
        let mut command = command(self.work.dir.path());
        command
            .args(["--config", config, "run", "--kubeconfig", &self.kubeconfig])
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("GITHUB_TOKEN", GITHUB_TOKEN);
        let mut exporter = RunningExporter::spawn(command);
        exporter.address();
        exporter
    }

    /// Runs `once --kubeconfig K` with `config` to completion.
    pub fn once(&self, config: &str) -> Output {
        once(
            self.work.dir.path(),
            &["--config", config, "once", "--kubeconfig", &self.kubeconfig],
            &[("GITHUB_TOKEN", GITHUB_TOKEN)],
        )
    }
}
