//! Loopback fakes of the forges' commit-status APIs. Each records every request and rejects
//! what the real API rejects (auth header form, path shape, unknown states, missing or unknown
//! fields, over-long values, forge-specific rules), and can inject latency, error answers,
//! dropped connections and hangs.

pub mod azure_devops;
pub mod bitbucket_cloud;
pub mod bitbucket_server;
pub mod gitea;
pub mod github;
pub mod gitlab;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use flux_status_exporter::forge::Clock;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    /// Path and query, exactly as sent (percent-encoding kept).
    pub path: String,
    /// Lower-case header names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON, or `Null` when empty or not JSON.
    pub body: Value,
    pub raw_body: String,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The path without its query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// A query parameter's (undecoded) value.
    pub fn query(&self, name: &str) -> Option<&str> {
        let query = self.path.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// `Null` sends no body.
    pub body: Value,
    /// Sent as-is instead of `body` when set (e.g. an HTML page).
    pub raw: Option<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
            raw: None,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply::json(status, Value::Null)
    }

    /// GitHub/Gitea/GitLab-style error document.
    pub fn message(status: u16, message: &str) -> Reply {
        Reply::json(status, json!({ "message": message }))
    }

    pub fn header(mut self, name: &str, value: impl ToString) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// What to do with the next request instead of (or before) handling it.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this instead of handling the request.
    Respond(Reply),
    /// Close the connection without answering.
    Drop,
    /// Never answer.
    Hang,
}

/// A forge's rules: turns a recorded request into an answer.
pub trait ForgeLogic: Send + 'static {
    fn handle(&mut self, request: &Recorded, now: SystemTime, mono: Instant) -> Reply;
}

struct Shared<L> {
    logic: L,
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    latency: Duration,
    /// While set, every request gets this answer (after queued faults): the forge is down.
    outage: Option<Reply>,
    /// Bytes added to every successful JSON answer (see [`FakeServer::pad_success_bodies`]).
    padding: usize,
}

/// A fake forge listening on 127.0.0.1.
pub struct FakeServer<L> {
    addr: std::net::SocketAddr,
    shared: Arc<Mutex<Shared<L>>>,
    task: tokio::task::JoinHandle<()>,
}

impl<L> Drop for FakeServer<L> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<L: ForgeLogic> FakeServer<L> {
    /// Starts serving `logic` on a free loopback port; `clock` is the fake's notion of time.
    pub async fn start(logic: L, clock: Arc<dyn Clock>) -> FakeServer<L> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Mutex::new(Shared {
            logic,
            requests: Vec::new(),
            faults: VecDeque::new(),
            latency: Duration::ZERO,
            outage: None,
            padding: 0,
        }));
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                let clock = clock.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        let clock = clock.clone();
                        async move { serve(state, clock, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeServer { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// Queues a fault for the next request not yet faulted.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().unwrap().faults.push_back(fault);
    }

    /// Delays every answer by `latency` (real time).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().unwrap().latency = latency;
    }

    /// Answers every request with `reply` until called again with `None`: the forge is down
    /// for as long as a test needs, however many requests that takes.
    pub fn set_outage(&self, reply: Option<Reply>) {
        self.shared.lock().unwrap().outage = reply;
    }

    /// Makes every successful JSON answer about `bytes` longer, as real forges' answers are
    /// (creators, links, avatars): an extra field in each object, or spread over an array's
    /// objects. The exporter must read what it needs from answers of any normal size.
    pub fn pad_success_bodies(&self, bytes: usize) {
        self.shared.lock().unwrap().padding = bytes;
    }

    /// Reads or changes the forge's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut L) -> R) -> R {
        f(&mut self.shared.lock().unwrap().logic)
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fake")
    }
}

impl std::error::Error for Dropped {}

async fn serve<L: ForgeLogic>(
    shared: Arc<Mutex<Shared<L>>>,
    clock: Arc<dyn Clock>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let raw = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let raw_body = String::from_utf8_lossy(&raw).into_owned();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
    };
    let (fault, latency, padding) = {
        let mut s = shared.lock().unwrap();
        s.requests.push(recorded.clone());
        let fault = s
            .faults
            .pop_front()
            .or_else(|| s.outage.clone().map(Fault::Respond));
        (fault, s.latency, s.padding)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let reply = match fault {
        Some(Fault::Drop) => return Err(Dropped),
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Respond(reply)) => reply,
        None => shared
            .lock()
            .unwrap()
            .logic
            .handle(&recorded, clock.wall(), clock.now()),
    };
    Ok(to_response(pad(reply, padding)))
}

/// `reply` with about `bytes` more in its JSON body when it is a success.
fn pad(mut reply: Reply, bytes: usize) -> Reply {
    if bytes == 0 || !(200..300).contains(&reply.status) {
        return reply;
    }
    let filler = |n: usize| Value::String("x".repeat(n));
    match &mut reply.body {
        Value::Object(fields) => {
            fields.insert("padding".into(), filler(bytes));
        }
        Value::Array(items) if !items.is_empty() => {
            let share = bytes / items.len();
            for item in items.iter_mut() {
                if let Value::Object(fields) = item {
                    fields.insert("padding".into(), filler(share));
                }
            }
        }
        _ => {}
    }
    reply
}

fn to_response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k, v);
    }
    let body = match (&reply.raw, &reply.body) {
        (Some((content_type, text)), _) => {
            builder = builder.header("content-type", content_type);
            Bytes::from(text.clone())
        }
        (None, Value::Null) => Bytes::new(),
        (None, value) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(value.to_string())
        }
    };
    builder.body(Full::new(body)).unwrap()
}

/// A virtual clock: time moves only by sleeps (which complete at once) and [`SkipClock::advance`],
/// so tests see every wait, and assert on it exactly, without waiting.
#[derive(Debug)]
pub struct SkipClock {
    start: Instant,
    wall_start: SystemTime,
    skipped: Mutex<Duration>,
    sleeps: Mutex<Vec<Duration>>,
}

impl SkipClock {
    pub fn new() -> Arc<SkipClock> {
        Arc::new(SkipClock {
            start: Instant::now(),
            // A fixed wall clock keeps epochs in answers and assertions reproducible.
            wall_start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            skipped: Mutex::new(Duration::ZERO),
            sleeps: Mutex::new(Vec::new()),
        })
    }

    /// Every wait asked of the clock, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }

    /// Waits longer than `min` (to leave out pacing's short gaps).
    pub fn sleeps_over(&self, min: Duration) -> Vec<Duration> {
        self.sleeps().into_iter().filter(|d| *d > min).collect()
    }

    /// Moves time forward without a sleep (time passing between ticks).
    pub fn advance(&self, by: Duration) {
        *self.skipped.lock().unwrap() += by;
    }

    fn offset(&self) -> Duration {
        *self.skipped.lock().unwrap()
    }
}

impl Clock for SkipClock {
    fn now(&self) -> Instant {
        self.start + self.offset()
    }

    fn wall(&self) -> SystemTime {
        self.wall_start + self.offset()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.sleeps.lock().unwrap().push(duration);
        *self.skipped.lock().unwrap() += duration;
        Box::pin(tokio::task::yield_now())
    }
}

/// Seconds since the epoch.
pub fn epoch(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// The JSON object body, or the forge's answer to a body that is not one.
pub fn object_body(
    request: &Recorded,
    refuse: impl Fn(&str) -> Reply,
) -> Result<serde_json::Map<String, Value>, Reply> {
    let content_type = request.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(refuse("content type must be application/json"));
    }
    match &request.body {
        Value::Object(map) => Ok(map.clone()),
        _ => Err(refuse("body must be a JSON object")),
    }
}

/// Refuses fields the API does not define (a typo would otherwise pass silently).
pub fn known_fields(
    body: &serde_json::Map<String, Value>,
    allowed: &[&str],
    refuse: impl Fn(&str) -> Reply,
) -> Result<(), Reply> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(refuse(&format!("unknown field `{k}`"))),
        None => Ok(()),
    }
}

/// A string field, required or optional, at most `max` characters.
pub fn string_field(
    body: &serde_json::Map<String, Value>,
    name: &str,
    required: bool,
    max: Option<usize>,
    refuse: impl Fn(&str) -> Reply,
) -> Result<Option<String>, Reply> {
    match body.get(name) {
        None | Some(Value::Null) if required => Err(refuse(&format!("{name} is missing"))),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if let Some(max) = max
                && s.chars().count() > max
            {
                return Err(refuse(&format!(
                    "{name} is too long (maximum is {max} characters)"
                )));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(refuse(&format!("{name} must be a string"))),
    }
}

/// Whether `s` is a 40-hex commit sha.
pub fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Decodes `%XX` escapes.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `user:password` of a Basic header.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}
