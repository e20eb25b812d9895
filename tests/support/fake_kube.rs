//! A fake Kubernetes API server on an ephemeral 127.0.0.1 port, faithful enough that real
//! `kubectl` and kube-rs talk to it: discovery (`/api`, `/apis`, `/apis/{group}/{version}`),
//! list and get for the Flux kinds (cluster-wide and namespaced) with `labelSelector`, `limit`
//! and `continue` (real `metadata.continue`, `resourceVersion`, `remainingItemCount`, and 410
//! once a snapshot is compacted), Kubernetes `Status` error bodies, and ConfigMaps, Secrets and
//! Leases with get/create/update/patch/delete and resourceVersion conflicts (409).
//!
//! Watches (`watch=true` on a collection) stream the event log every write and delete appends
//! to: `resourceVersion` (synthetic `ADDED` events from `0` or none, 410 `ERROR` events once
//! compacted), `allowWatchBookmarks`, `timeoutSeconds`, `labelSelector` (objects leaving the
//! selection are `DELETED`), `sendInitialEvents`, and namespace scope. RBAC can refuse a verb
//! on a resource with the API server's 403, and [`FakeKube::served`] counts what the server
//! serialised.
//!
//! It runs on its own thread and runtime, so a test may block (e.g. on a `kubectl` child
//! process) while it serves. Faults are injected per path: status codes, latency, dropped
//! connections, expired continue tokens, and canned bodies.
//!
//! Objects are loaded from the same `kubectl get -o yaml|json` dumps as `--snapshot`, and served
//! whole, as loaded (plus a resourceVersion).

mod store;
mod watch;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

pub use store::{ApiError, registry};
use store::{ListParams, Store, dump_items};

/// The API server's limit on a ConfigMap's data; larger ones are refused with 422.
pub const CONFIG_MAP_MAX_BYTES: usize = store::CONFIG_MAP_MAX_BYTES;

/// The user named in the fake's 403 messages, as a service account would appear.
pub const FAKE_USER: &str = "system:serviceaccount:flux-system:flux-status-exporter";

/// A running fake API server; stopped when dropped.
pub struct FakeKube {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a watch (`watch=true`, `watch=1`, ...).
    pub fn is_watch(&self) -> bool {
        watch::is_true(self.param("watch"))
    }

    /// The verb RBAC checks this request against: `get`, `list` or `watch` for a `GET` (of an
    /// object, of a collection, with `watch` set), `create`, `update`, `patch`, `delete`,
    /// `deletecollection`; `get` for a path that names no resource (discovery).
    pub fn verb(&self) -> &str {
        let named = ResourcePath::parse(&self.path).map(|p| p.name.is_some());
        match (self.method.as_str(), named) {
            ("GET" | "HEAD", Some(_)) if self.is_watch() => "watch",
            ("GET" | "HEAD", Some(true)) => "get",
            ("GET" | "HEAD", Some(false)) => "list",
            ("POST", Some(_)) => "create",
            ("PUT", Some(_)) => "update",
            ("PATCH", Some(_)) => "patch",
            ("DELETE", Some(true)) => "delete",
            ("DELETE", Some(false)) => "deletecollection",
            _ => "get",
        }
    }
}

/// What the fake serialised for lists and watches since it started (or since
/// [`FakeKube::reset_served`]): the work an API server does for its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Served {
    /// Objects in list pages plus objects in `ADDED`, `MODIFIED` and `DELETED` watch events.
    pub objects: u64,
    /// Bytes of every list body (200 answers) and watch body sent, bookmarks and `ERROR`
    /// events included.
    pub bytes: u64,
    /// `ADDED`, `MODIFIED` and `DELETED` watch events sent.
    pub watch_events: u64,
    /// `BOOKMARK` watch events sent; not objects.
    pub bookmarks: u64,
}

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this code and a realistic `Status` body.
    Status(u16),
    /// Answer with this code and exactly this body.
    Respond { code: u16, body: String },
    /// Wait this long, then answer normally (or with the next matching fault).
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Answer a request that carries a continue token with 410 Gone.
    ExpireContinue,
}

/// A fault for requests to `path` (exact, without query; `*` matches every path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub path: String,
    pub action: FaultAction,
    /// How many requests it applies to; `None`: all.
    pub times: Option<u32>,
}

#[derive(Debug, Default)]
struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<RecordedRequest>>,
    token: Mutex<Option<String>>,
    /// (verb, resource) pairs RBAC refuses.
    denied: Mutex<Vec<(String, String)>>,
    served: Mutex<Served>,
    /// `None`: [`watch::DEFAULT_BOOKMARK_INTERVAL`].
    bookmark_interval: Mutex<Option<Duration>>,
    /// Bumped by [`FakeKube::break_watches`]; every open watch ends when it changes.
    breaks: tokio::sync::watch::Sender<u64>,
    open_watches: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeKube {
    /// Starts an empty fake over plain HTTP.
    pub fn start() -> FakeKube {
        let shared = Arc::new(Shared::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-kube".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("fake kube runtime: {e}"));
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .unwrap_or_else(|e| panic!("fake kube bind: {e}"));
                    let _ = addr_tx.send(listener.local_addr());
                    loop {
                        tokio::select! {
                            _ = &mut shutdown_rx => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let shared = server_shared.clone();
                                tokio::spawn(async move {
                                    let service = hyper::service::service_fn(move |req| {
                                        let shared = shared.clone();
                                        async move { handle(&shared, req).await }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                });
                            }
                        }
                    }
                });
            })
            .unwrap_or_else(|e| panic!("fake kube thread: {e}"));
        let addr = addr_rx
            .recv()
            .unwrap_or_else(|e| panic!("fake kube did not start: {e}"))
            .unwrap_or_else(|e| panic!("fake kube address: {e}"));
        FakeKube {
            base_url: format!("http://{addr}"),
            addr,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// Starts a fake serving the objects of a dump file.
    pub fn with_dump(path: &Path) -> FakeKube {
        let fake = FakeKube::start();
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        fake.load_dump_text(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        fake
    }

    /// Loads every object of a `kubectl get -o yaml|json` dump; returns how many were stored.
    /// Objects of a kind the fake does not serve are an error, so a test cannot silently
    /// serve less than its dump.
    pub fn load_dump_text(&self, text: &str) -> Result<usize, String> {
        let items = dump_items(text)?;
        let count = items.len();
        for item in items {
            self.put(item)?;
        }
        Ok(count)
    }

    /// Adds or replaces an object (its kind and apiVersion choose the resource).
    pub fn put(&self, object: Value) -> Result<Value, String> {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let index = registry()
            .iter()
            .position(|r| r.api_version() == api_version && r.kind == kind)
            .ok_or_else(|| format!("the fake does not serve `{api_version} {kind}`"))?;
        lock(&self.shared.store)
            .put(index, object)
            .map_err(|e| e.message)
    }

    /// Deletes an object by resource (plural or `plural.group`), namespace and name.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> bool {
        let mut store = lock(&self.shared.store);
        let index = resource_index(&store, resource);
        store.remove(index, namespace, name)
    }

    /// One object as served.
    pub fn object(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let store = lock(&self.shared.store);
        let index = resource_index(&store, resource);
        store.get_value(index, namespace, name)
    }

    /// Every object of a resource as served, in list order (namespace, then name).
    pub fn objects(&self, resource: &str) -> Vec<Value> {
        let store = lock(&self.shared.store);
        let index = resource_index(&store, resource);
        store.values(index)
    }

    /// Stops serving a resource, as when its CRD is not installed: its paths answer 404 and
    /// discovery no longer lists it.
    pub fn uninstall(&self, resource: &str) {
        let mut store = lock(&self.shared.store);
        let index = resource_index(&store, resource);
        store.set_installed(index, false);
    }

    /// Forgets every list snapshot and every past event, as etcd compaction does: continue
    /// tokens issued so far get 410 Gone, and so does a watch resuming from a resourceVersion
    /// older than the current one (an `ERROR` event). Open watches go on.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    /// The store's current resourceVersion (that of its latest write or delete).
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).resource_version()
    }

    /// How long a watch that allows bookmarks may stay idle before it gets a `BOOKMARK`
    /// (default 1 s, [`watch::DEFAULT_BOOKMARK_INTERVAL`]); applies to open watches too.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        *lock(&self.shared.bookmark_interval) = Some(interval);
    }

    /// Ends every open watch response now (cleanly, as an API server restart or a load
    /// balancer does); clients must watch again.
    pub fn break_watches(&self) {
        self.shared.breaks.send_modify(|n| *n += 1);
    }

    /// How many watch responses are open.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// RBAC refuses `verb` (`get`, `list`, `watch`, `create`, ...; see
    /// [`RecordedRequest::verb`]) on a resource (plural, or `plural.group`), in every
    /// namespace: such requests get the API server's 403 `Status`.
    pub fn deny_verb(&self, verb: &str, resource_plural: &str) {
        lock(&self.shared.denied).push((verb.to_string(), resource_plural.to_string()));
    }

    /// What was serialised for lists and watches so far.
    pub fn served(&self) -> Served {
        *lock(&self.shared.served)
    }

    /// Sets [`FakeKube::served`] back to zero.
    pub fn reset_served(&self) {
        *lock(&self.shared.served) = Served::default();
    }

    /// Requires `Authorization: Bearer TOKEN` on every request; others get 401.
    pub fn require_token(&self, token: &str) {
        *lock(&self.shared.token) = Some(token.to_string());
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Answers `times` requests to `path` (all when `None`) with `code` and a `Status` body.
    pub fn fail(&self, path: &str, code: u16, times: Option<u32>) {
        self.inject(Fault {
            path: path.to_string(),
            action: FaultAction::Status(code),
            times,
        });
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).clone()
    }

    /// The requests received for one path.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// A kubeconfig pointing at the fake, with one context `fake` whose namespace is
    /// `namespace`, and a bearer token (the required one, if set).
    pub fn kubeconfig(&self, namespace: &str) -> String {
        let token = lock(&self.shared.token)
            .clone()
            .unwrap_or_else(|| "fake-token".to_string());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user:\n    token: {token}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\ncurrent-context: fake\n",
            self.base_url
        )
    }

    /// Writes [`FakeKube::kubeconfig`] (namespace `flux-system`) to `dir/kubeconfig`.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig("flux-system"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// A connection to the fake as the exporter makes one, through a kubeconfig written in
    /// `dir`.
    pub async fn connect(
        &self,
        dir: &Path,
        request_timeout: Duration,
    ) -> flux_status_exporter::cluster::client::Connection {
        use flux_status_exporter::cluster::client::{ConnectOptions, connect};
        connect(&ConnectOptions {
            kubeconfig: Some(self.write_kubeconfig(dir)),
            context: None,
            request_timeout,
        })
        .await
        .unwrap_or_else(|e| panic!("connecting to the fake: {e}"))
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn resource_index(store: &Store, resource: &str) -> usize {
    store
        .find_any(resource)
        .unwrap_or_else(|| panic!("the fake has no resource `{resource}`"))
}

/// A boxed body, so that watches can stream theirs.
type Answer = Response<UnsyncBoxBody<Bytes, Infallible>>;

/// The connection is closed without an answer when a handler returns this.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

async fn handle(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Answer, DropConnection> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = parse_query(request.uri().query().unwrap_or(""));
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query,
    };
    lock(&shared.log).push(recorded.clone());

    let (delay, action) = next_faults(shared, &recorded);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match action {
        Some(FaultAction::Drop) => return Err(DropConnection),
        Some(FaultAction::Status(code)) => return Ok(error(&fault_status(code, &recorded))),
        Some(FaultAction::Respond { code, body }) => return Ok(respond(code, Bytes::from(body))),
        Some(FaultAction::ExpireContinue) => {
            return Ok(error(&ApiError::new(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            )));
        }
        Some(FaultAction::Delay(_)) | None => {}
    }

    if let Some(token) = lock(&shared.token).clone() {
        let sent = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if sent != Some(&format!("Bearer {token}")) {
            return Ok(error(&ApiError::new(401, "Unauthorized", "Unauthorized")));
        }
    }

    // Authorisation comes after authentication and before the resource is looked up.
    if let Some(target) = ResourcePath::parse(&path) {
        let verb = recorded.verb();
        let denied = lock(&shared.denied).iter().any(|(v, resource)| {
            v == verb && (*resource == target.plural || *resource == target.qualified())
        });
        if denied {
            return Ok(error(&forbidden(&recorded)));
        }
    }

    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    Ok(route(
        shared,
        &method,
        &path,
        &recorded,
        &content_type,
        &body,
    ))
}

/// The delay and the other fault that apply to this request, each counted down.
fn next_faults(
    shared: &Shared,
    request: &RecordedRequest,
) -> (Option<Duration>, Option<FaultAction>) {
    let mut faults = lock(&shared.faults);
    let mut delay = None;
    let mut action = None;
    for fault in faults.iter_mut() {
        let applies = (fault.path == "*" || fault.path == request.path)
            && fault.times != Some(0)
            && (fault.action != FaultAction::ExpireContinue
                || request.param("continue").is_some_and(|c| !c.is_empty()));
        if !applies {
            continue;
        }
        let taken = match (&fault.action, &delay, &action) {
            (FaultAction::Delay(d), None, _) => {
                delay = Some(*d);
                true
            }
            (FaultAction::Delay(_), Some(_), _) => false,
            (other, _, None) => {
                action = Some(other.clone());
                true
            }
            (_, _, Some(_)) => false,
        };
        if taken && let Some(times) = &mut fault.times {
            *times -= 1;
        }
    }
    (delay, action)
}

fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    request: &RecordedRequest,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => json_answer(
            200,
            json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "platform": "linux/amd64"}),
        ),
        ["api"] => json_answer(
            200,
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        ["apis"] => json_answer(200, group_list(&lock(&shared.store))),
        ["api", version] => resource_list(&lock(&shared.store), "", version),
        ["apis", group, version] => resource_list(&lock(&shared.store), group, version),
        ["api", version, rest @ ..] => resource_call(
            shared,
            method,
            "",
            version,
            rest,
            request,
            content_type,
            body,
        ),
        ["apis", group, version, rest @ ..] => resource_call(
            shared,
            method,
            group,
            version,
            rest,
            request,
            content_type,
            body,
        ),
        _ => error(&ApiError::not_found_path()),
    }
}

#[allow(clippy::too_many_arguments)]
fn resource_call(
    shared: &Arc<Shared>,
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    request: &RecordedRequest,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let (namespace, plural, name) = match rest {
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        _ => return error(&ApiError::not_found_path()),
    };
    let mut store = lock(&shared.store);
    let Some(index) = store.find(group, version, plural) else {
        return error(&ApiError::not_found_path());
    };
    let namespaced = registry()[index].namespaced;
    if *method == Method::GET && name.is_none() && request.is_watch() {
        drop(store);
        return watch::start(shared, index, namespace, request);
    }
    let result = match (method, name, namespace) {
        (&Method::GET, None, _) => {
            let params = match list_params(request) {
                Ok(params) => params,
                Err(e) => return error(&e),
            };
            store.list(index, namespace, &params).map(|page| {
                let mut served = lock(&shared.served);
                served.objects += page.items as u64;
                served.bytes += page.body.len() as u64;
                (200, page.body)
            })
        }
        (_, Some(_), None) if namespaced => Err(ApiError::not_found_path()),
        (&Method::POST, None, Some(ns)) => store.create(index, ns, body).map(|b| (201, b)),
        (&Method::GET, Some(name), ns) => {
            store.get(index, ns.unwrap_or(""), name).map(|b| (200, b))
        }
        (&Method::PUT, Some(name), ns) => store
            .update(index, ns.unwrap_or(""), name, body)
            .map(|b| (200, b)),
        (&Method::PATCH, Some(name), ns) => store
            .patch(index, ns.unwrap_or(""), name, content_type, body)
            .map(|b| (200, b)),
        (&Method::DELETE, Some(name), ns) => store
            .delete(index, ns.unwrap_or(""), name)
            .map(|b| (200, b)),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )),
    };
    match result {
        Ok((code, body)) => respond(code, body),
        Err(e) => error(&e),
    }
}

fn list_params(request: &RecordedRequest) -> Result<ListParams, ApiError> {
    let limit = match request.param("limit") {
        Some(limit) if !limit.is_empty() => Some(limit.parse::<usize>().map_err(|_| {
            ApiError::new(
                400,
                "BadRequest",
                format!("limit: Invalid value: \"{limit}\""),
            )
        })?),
        _ => None,
    };
    Ok(ListParams {
        limit,
        continue_token: request.param("continue").map(str::to_string),
        label_selector: request.param("labelSelector").map(str::to_string),
    })
}

fn group_list(store: &Store) -> Value {
    let mut groups: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, resource) in registry().iter().enumerate() {
        if store.is_installed(i) && !resource.group.is_empty() {
            groups.insert(&resource.group, &resource.version);
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, version)| {
            let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
            json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(store: &Store, group: &str, version: &str) -> Answer {
    let resources: Vec<Value> = registry()
        .iter()
        .enumerate()
        .filter(|(i, r)| store.is_installed(*i) && r.group == group && r.version == version)
        .map(|(_, r)| {
            json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": r.short_names,
            })
        })
        .collect();
    if resources.is_empty() {
        return error(&ApiError::not_found_path());
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_answer(
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// The API server's 403 for this request: its verb on its resource, in its namespace or at the
/// cluster scope (or on its path, for a path that names no resource).
fn forbidden(request: &RecordedRequest) -> ApiError {
    let verb = request.verb();
    let Some(target) = ResourcePath::parse(&request.path) else {
        return ApiError::new(
            403,
            "Forbidden",
            format!(
                "forbidden: User \"{FAKE_USER}\" cannot {verb} path \"{}\"",
                request.path
            ),
        );
    };
    let scope = match target.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut error = ApiError::new(
        403,
        "Forbidden",
        format!(
            "{} is forbidden: User \"{FAKE_USER}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
            target.qualified(),
            target.plural,
            target.group
        ),
    );
    // As metav1.StatusDetails: empty fields are omitted.
    let mut details = json!({"kind": target.plural});
    if !target.group.is_empty() {
        details["group"] = json!(target.group);
    }
    if let Some(name) = target.name {
        details["name"] = json!(name);
    }
    error.details = Some(details);
    error
}

/// The `Status` the API server would send for `code` on this request.
fn fault_status(code: u16, request: &RecordedRequest) -> ApiError {
    match code {
        401 => ApiError::new(401, "Unauthorized", "Unauthorized"),
        403 => forbidden(request),
        404 => ApiError::not_found_path(),
        409 => ApiError::new(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified",
        ),
        410 => ApiError::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result.",
        ),
        429 => ApiError::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        500 => ApiError::new(
            500,
            "InternalError",
            "Internal error occurred: injected fault",
        ),
        503 => ApiError::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => ApiError::new(
            504,
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
        ),
        code => ApiError::new(code, "Unknown", format!("injected fault {code}")),
    }
}

/// The resource a request path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResourcePath<'a> {
    /// Empty for the core group.
    group: &'a str,
    namespace: Option<&'a str>,
    plural: &'a str,
    name: Option<&'a str>,
}

impl<'a> ResourcePath<'a> {
    /// `None` for a path that names no resource (discovery, `/version`).
    fn parse(path: &'a str) -> Option<Self> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, rest) = match segments.as_slice() {
            ["api", _, rest @ ..] => ("", rest),
            ["apis", group, _, rest @ ..] => (*group, rest),
            _ => return None,
        };
        let (namespace, plural, name) = match rest {
            ["namespaces", ns, plural] => (Some(*ns), *plural, None),
            ["namespaces", ns, plural, name, ..] => (Some(*ns), *plural, Some(*name)),
            [plural] => (None, *plural, None),
            [plural, name, ..] => (None, *plural, Some(*name)),
            [] => return None,
        };
        Some(ResourcePath {
            group,
            namespace,
            plural,
            name,
        })
    }

    /// `plural.group`, or `plural` for the core group.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

fn respond(code: u16, body: Bytes) -> Answer {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn json_answer(code: u16, value: Value) -> Answer {
    respond(code, Bytes::from(value.to_string()))
}

fn error(e: &ApiError) -> Answer {
    let mut response = respond(e.code, e.body());
    if e.code == 429 {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    response
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` and `+` (Go's url.Values encodes spaces as `+`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
