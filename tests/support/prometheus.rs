//! The real Prometheus tools from the Debian packages, on loopback: a Prometheus server
//! scraping one target every second (as the ServiceMonitor would: `honor_labels`, a target
//! `namespace`), a Pushgateway, and `promtool check metrics`; plus a reader for the text
//! exposition format so tests can compare samples label by label.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::exporter::{PATIENCE, http_get};

/// The scrape job, as the ServiceMonitor's jobLabel names it.
pub const JOB: &str = "flux-status-exporter";

/// A free loopback port (free when asked; the tools below take a port, not port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A Prometheus server on loopback, with its own config and storage; killed on drop.
pub struct Prometheus {
    child: Child,
    pub address: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, with `rule_file` loaded if given.
    pub fn start(target: SocketAddr, rule_file: Option<&Path>) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let rules = rule_file.map_or_else(String::new, |file| {
            format!("rule_files:\n  - {}\n", file.display())
        });
        // honor_labels and a target `namespace`, as the ServiceMonitor and PodMonitor set up.
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 {rules}\
                 scrape_configs:\n  - job_name: {JOB}\n    honor_labels: true\n    static_configs:\n\
                 \x20     - targets: ['{target}']\n        labels:\n          namespace: flux-status-exporter\n"
            ),
        )
        .unwrap();
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.path().join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run prometheus ({e}); install it with `apt-get install prometheus`")
            });
        let mut prometheus = Prometheus {
            child,
            address,
            log,
            _dir: dir,
        };
        prometheus.wait_until("Prometheus to be ready", |p| {
            TcpStream::connect(p.address).is_ok() && http_get(p.address, "/-/ready").0 == 200
        });
        prometheus
    }

    /// Prometheus's own log.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds, polling; panics with Prometheus's log when it never does.
    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut(&Prometheus) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prometheus exited ({status}) before {what}:\n{}",
                    self.log()
                );
            }
            if ready(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; prometheus log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the target has been scraped successfully `scrapes` times in the last minute.
    pub fn wait_for_scrapes(&mut self, scrapes: usize) {
        let up = format!(
            "count_over_time(up{{job=\"{JOB}\"}}[1m]) >= {scrapes} and up{{job=\"{JOB}\"}} == 1"
        );
        self.wait_until(&format!("{scrapes} successful scrapes"), |p| {
            p.sample_count(&up) == Ok(1)
        });
    }

    /// An instant query now: the whole API answer.
    pub fn query(&self, expr: &str) -> Value {
        let (status, body) = http_get(
            self.address,
            &format!("/api/v1/query?query={}", percent_encode(expr)),
        );
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("HTTP {status}, not JSON ({e}): {body}"))
    }

    /// How many samples (series, or one for a scalar) `expr` returns; `Err` on a query error.
    pub fn sample_count(&self, expr: &str) -> Result<usize, String> {
        let answer = self.query(expr);
        if answer["status"] != "success" {
            return Err(format!(
                "{}: {}",
                answer["errorType"].as_str().unwrap_or("?"),
                answer["error"].as_str().unwrap_or("?")
            ));
        }
        let data = &answer["data"];
        Ok(match data["resultType"].as_str() {
            Some("scalar" | "string") => 1,
            _ => data["result"].as_array().map_or(0, Vec::len),
        })
    }

    /// The instant vector `expr` returns, as (labels without `__name__`, value) sorted by
    /// labels; panics on a query error.
    pub fn vector(&self, expr: &str) -> Vec<(BTreeMap<String, String>, String)> {
        let answer = self.query(expr);
        assert_eq!(answer["status"], "success", "`{expr}`: {answer}");
        assert_eq!(answer["data"]["resultType"], "vector", "`{expr}`: {answer}");
        let mut samples: Vec<(BTreeMap<String, String>, String)> = answer["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sample| {
                let labels = sample["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| *k != "__name__")
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                (labels, sample["value"][1].as_str().unwrap().to_string())
            })
            .collect();
        samples.sort();
        samples
    }

    /// The single value `expr` returns, `None` when it returns nothing.
    pub fn value(&self, expr: &str) -> Option<String> {
        let samples = self.vector(expr);
        assert!(samples.len() <= 1, "`{expr}` returned {samples:?}");
        samples.into_iter().next().map(|(_, v)| v)
    }

    /// Waits until the single value of `expr` is `expected`; panics with what it was.
    pub fn wait_for_value(&mut self, expr: &str, expected: &str) {
        let mut last = None;
        self.wait_until(&format!("`{expr}` to be {expected}"), |p| {
            last = Some(p.value(expr));
            last.as_ref()
                .is_some_and(|v| v.as_deref() == Some(expected))
        });
    }

    /// Waits until `expr` returns no sample at all.
    pub fn wait_for_nothing(&mut self, expr: &str) {
        self.wait_until(&format!("`{expr}` to return nothing"), |p| {
            p.vector(expr).is_empty()
        });
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Pushgateway on loopback without persistence; killed on drop.
pub struct Pushgateway {
    child: Child,
    pub address: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pushgateway {
    pub fn start() -> Pushgateway {
        let dir = tempfile::tempdir().unwrap();
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.path().join("pushgateway.log");
        let child = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address={address}"))
            // Debian's build persists to /var/lib/prometheus by default: keep memory only, so
            // nothing outlives the test and nothing from elsewhere shows up in it.
            .arg("--persistence.file=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run prometheus-pushgateway ({e}); install it with `apt-get install prometheus-pushgateway`"
                )
            });
        let mut gateway = Pushgateway {
            child,
            address,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + PATIENCE;
        while !(TcpStream::connect(gateway.address).is_ok()
            && http_get(gateway.address, "/-/ready").0 == 200)
        {
            if let Ok(Some(status)) = gateway.child.try_wait() {
                panic!("the pushgateway exited ({status}):\n{}", gateway.log());
            }
            assert!(
                Instant::now() < deadline,
                "the pushgateway never became ready:\n{}",
                gateway.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
        gateway
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What Prometheus would scrape from the gateway.
    pub fn metrics(&self) -> String {
        let (status, body) = http_get(self.address, "/metrics");
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `promtool check metrics` on `text`: whether it passed, and everything it printed.
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install it with `apt-get install prometheus`")
        });
    let mut stdin = child.stdin.take().unwrap();
    let text = text.to_string();
    let writer = thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

/// One sample of the text exposition format.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// As written.
    pub value: String,
}

/// Every sample in `text` (comments skipped), label values unescaped.
pub fn samples(text: &str) -> Vec<Sample> {
    let mut found = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() && chars[i] != '{' && chars[i] != ' ' {
            i += 1;
        }
        let name: String = chars[..i].iter().collect();
        let mut labels = BTreeMap::new();
        if chars.get(i) == Some(&'{') {
            i += 1;
            loop {
                while chars.get(i).is_some_and(|c| *c == ',' || *c == ' ') {
                    i += 1;
                }
                match chars.get(i) {
                    None => break,
                    Some('}') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {}
                }
                let key_start = i;
                while chars.get(i).is_some_and(|c| *c != '=') {
                    i += 1;
                }
                let key: String = chars[key_start..i].iter().collect();
                i += 2; // `="`
                let mut value = String::new();
                while let Some(&c) = chars.get(i) {
                    i += 1;
                    match c {
                        '\\' => {
                            match chars.get(i) {
                                Some('n') => value.push('\n'),
                                Some(other) => value.push(*other),
                                None => {}
                            }
                            i += 1;
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
            }
        }
        let rest: String = chars[i.min(chars.len())..].iter().collect();
        let value = rest.split_whitespace().next().unwrap_or("").to_string();
        found.push(Sample {
            name,
            labels,
            value,
        });
    }
    found
}

/// The samples of one series name in `text` whose labels include every pair of `matching`.
pub fn find(text: &str, name: &str, matching: &[(&str, &str)]) -> Vec<Sample> {
    samples(text)
        .into_iter()
        .filter(|s| {
            s.name == name
                && matching
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The value of the one sample of `name` matching `matching`; panics unless there is exactly one.
pub fn value_of(text: &str, name: &str, matching: &[(&str, &str)]) -> String {
    let found = find(text, name, matching);
    assert_eq!(
        found.len(),
        1,
        "expected one sample of {name} with {matching:?}, found {found:?}"
    );
    found[0].value.clone()
}
