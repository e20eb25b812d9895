//! The real binary as a child process: its standard error collected as it runs, signals sent
//! by pid, and waits that poll a condition with a bound instead of sleeping.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::root;

/// How long to wait for anything before failing the test: a bound, not an expectation.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `flux-status-exporter`, killed (by its pid) if still running when dropped.
pub struct Exporter {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    stream: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    })
}

impl Exporter {
    /// Starts the binary with `args`, in the repository root, with info logging.
    pub fn start(args: &[&str]) -> Exporter {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flux-status-exporter"))
            .args(args)
            .current_dir(root())
            .env_remove("FLUX_STATUS_EXPORTER_CONFIG")
            .env_remove("KUBECONFIG")
            .env("FLUX_STATUS_EXPORTER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stderr.take().unwrap(), stderr.clone()),
            collect(child.stdout.take().unwrap(), stdout.clone()),
        ];
        Exporter {
            child,
            stderr,
            stdout,
            readers,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.stderr().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `needle` has been logged `times` times.
    pub async fn wait_logged(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.count(needle) < times {
            assert!(
                Instant::now() < deadline,
                "gave up waiting for `{needle}` x{times} in:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`, `KILL`) to this process only.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {name}");
    }

    /// Waits for the process to exit.
    pub async fn exited(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The pipes close with the process: the readers have the last lines.
                for reader in self.readers.drain(..) {
                    reader.join().unwrap();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The HTTP address `run` logged it serves on.
    pub async fn address(&self) -> SocketAddr {
        self.wait_logged("serving /metrics", 1).await;
        let text = self.stderr();
        let line = text
            .lines()
            .find(|l| l.contains("serving /metrics"))
            .unwrap();
        let address = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("address="))
            .unwrap();
        address.parse().unwrap()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to completion off the async runtime (so the fakes keep serving).
pub async fn run_to_end(args: &[&str]) -> (Option<i32>, String, String) {
    let mut exporter = Exporter::start(args);
    let status = exporter.exited().await;
    (status.code(), exporter.stdout(), exporter.stderr())
}

/// `GET path` on a local HTTP server: status and body.
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// A `kubectl get -o json` dump of `objects`, written atomically (a running exporter re-reads
/// the file every tick and must never see it half-written).
pub fn write_snapshot(path: &Path, objects: &[Value]) {
    let dump = json!({"apiVersion": "v1", "kind": "List", "items": objects, "metadata": {}});
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, serde_json::to_vec_pretty(&dump).unwrap()).unwrap();
    std::fs::rename(&temp, path).unwrap();
}
