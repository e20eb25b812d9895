//! Watches: a `GET` of a collection with `watch=true`, answered as the API server's watch cache
//! does. The answer is `200`, `application/json`, chunked, one event per line
//! (`{"type":"ADDED","object":{...}}\n`), written as the changes happen; it ends at
//! `timeoutSeconds`, on [`super::FakeKube::break_watches`], or after an `ERROR` event.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use flux_status_exporter::cluster::selector::LabelSelector;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::store::{ApiError, Event, EventType, Expired, Resource, Stored, registry};
use super::{Answer, RecordedRequest, Shared, error, lock};

/// The length of a watch that names no `timeoutSeconds`: the API server's minimum request
/// timeout (it picks a random one between that and twice that).
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// How long a watch that allows bookmarks stays idle before it gets one, unless set with
/// [`super::FakeKube::set_bookmark_interval`]. Real API servers send one about once a minute;
/// tests should not wait that long.
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether a query parameter says true, as Go's `strconv.ParseBool` reads it.
pub fn is_true(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "t" | "T" | "true" | "TRUE" | "True"))
}

/// One line of a watch body, with what it counts as in [`super::Served`].
enum Line {
    /// `ADDED`, `MODIFIED` or `DELETED`: one object serialised.
    Object(Bytes),
    Bookmark(Bytes),
    /// An `ERROR` event carrying a `Status`.
    Error(Bytes),
}

impl Line {
    fn into_bytes(self) -> Bytes {
        match self {
            Line::Object(b) | Line::Bookmark(b) | Line::Error(b) => b,
        }
    }
}

/// The query parameters of a watch.
struct WatchParams {
    /// `resourceVersion`, unless absent or `0`.
    since: Option<u64>,
    /// Whether the watch begins with an `ADDED` event for every current object.
    send_initial: bool,
    /// `sendInitialEvents=true`: the initial events end with a bookmark saying so.
    initial_end_bookmark: bool,
    bookmarks: bool,
    timeout: Duration,
    selector: Option<LabelSelector>,
}

fn watch_params(request: &RecordedRequest) -> Result<WatchParams, ApiError> {
    let since = match request.param("resourceVersion") {
        None | Some("" | "0") => None,
        Some(rv) => Some(parse_resource_version(rv)?),
    };
    let timeout = match request.param("timeoutSeconds") {
        None | Some("") => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            ApiError::new(
                400,
                "BadRequest",
                format!("strconv.ParseInt: parsing \"{text}\": invalid syntax"),
            )
        })?),
    };
    let selector = match request.param("labelSelector") {
        Some(s) if !s.trim().is_empty() => Some(LabelSelector::parse(s).map_err(|e| {
            ApiError::new(
                400,
                "BadRequest",
                format!("unable to parse requirement: {e}"),
            )
        })?),
        _ => None,
    };
    let bookmarks = is_true(request.param("allowWatchBookmarks"));
    let send_initial_events = request.param("sendInitialEvents").map(|v| is_true(Some(v)));
    let version_match = request
        .param("resourceVersionMatch")
        .filter(|m| !m.is_empty());
    // The API server's validation of ListOptions for a watch.
    let mut invalid = Vec::new();
    match (send_initial_events, version_match) {
        (None, Some(_)) => invalid.push(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
        (Some(_), m) if m != Some("NotOlderThan") => invalid.push(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
        _ => {}
    }
    if send_initial_events.is_some() && !bookmarks {
        invalid.push(
            "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
        );
    }
    match invalid.as_slice() {
        [] => {}
        [one] => {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("ListOptions.meta.k8s.io \"\" is invalid: {one}"),
            ));
        }
        many => {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "ListOptions.meta.k8s.io \"\" is invalid: [{}]",
                    many.join(", ")
                ),
            ));
        }
    }
    Ok(WatchParams {
        since,
        // Without sendInitialEvents, only a watch from "any" or "most recent" state begins
        // with the current objects.
        send_initial: send_initial_events.unwrap_or(since.is_none()),
        initial_end_bookmark: send_initial_events == Some(true),
        bookmarks,
        // Zero or less means "the server's default", as for the API server.
        timeout: timeout
            .filter(|t| *t > 0)
            .map_or(DEFAULT_WATCH_TIMEOUT, |t| {
                Duration::from_secs(t.unsigned_abs())
            }),
        selector,
    })
}

/// A resourceVersion as etcd reads it: an unsigned decimal. Real API servers answer a malformed
/// one with this message (with code 500 up to now, kubernetes/kubernetes#139485; 400 is the
/// fix under review, and what a client error deserves).
fn parse_resource_version(text: &str) -> Result<u64, ApiError> {
    let why = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        match text.parse::<u64>() {
            Ok(rv) => return Ok(rv),
            Err(_) => "value out of range",
        }
    } else {
        "invalid syntax"
    };
    Err(ApiError::new(
        400,
        "BadRequest",
        format!(
            "resourceVersion: Invalid value: \"{text}\": strconv.ParseUint: parsing \"{text}\": {why}"
        ),
    ))
}

/// Answers a watch of resource `index` in `namespace` (all when `None`).
pub fn start(
    shared: &Arc<Shared>,
    index: usize,
    namespace: Option<&str>,
    request: &RecordedRequest,
) -> Answer {
    let params = match watch_params(request) {
        Ok(params) => params,
        Err(e) => return error(&e),
    };
    let mut store = lock(&shared.store);
    let mut watch = Watch {
        shared: shared.clone(),
        resource: &registry()[index],
        namespace: namespace.map(str::to_string),
        selector: params.selector,
        pending: VecDeque::new(),
        finished: false,
        bookmarks: params.bookmarks,
        deadline: Instant::now() + params.timeout,
        last_sent: Instant::now(),
        breaks: shared.breaks.subscribe(),
        // Subscribed under the same lock as the past is read: no change falls in between.
        events: store.subscribe(index),
        _open: OpenWatch::new(shared),
    };
    if params.send_initial {
        for stored in store.current_objects(index, namespace) {
            if watch.selects(&stored) {
                watch
                    .pending
                    .push_back(Line::Object(event_line("ADDED", &stored.json)));
            }
        }
        if params.initial_end_bookmark {
            let bookmark = watch.bookmark(store.resource_version(), true);
            watch.pending.push_back(bookmark);
        }
    } else if let Some(since) = params.since {
        match store.events_after(index, since) {
            Ok(events) => {
                for event in &events {
                    if let Some(line) = watch.convert(event) {
                        watch.pending.push_back(Line::Object(line));
                    }
                }
            }
            Err(expired) => {
                watch.pending.push_back(expired_line(expired));
                watch.finished = true;
            }
        }
    }
    drop(store);
    let stream = futures_util::stream::unfold(watch, |mut watch| async move {
        let line = watch.next_line().await?;
        watch.count(&line);
        Some((Ok::<_, Infallible>(Frame::data(line.into_bytes())), watch))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Counts a watch in [`super::FakeKube::open_watches`] while it lives.
struct OpenWatch(Arc<Shared>);

impl OpenWatch {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.open_watches.fetch_add(1, Ordering::SeqCst);
        OpenWatch(shared.clone())
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One open watch.
struct Watch {
    shared: Arc<Shared>,
    resource: &'static Resource,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
    pending: VecDeque<Line>,
    /// The body ends once `pending` is sent.
    finished: bool,
    bookmarks: bool,
    deadline: Instant,
    last_sent: Instant,
    breaks: tokio::sync::watch::Receiver<u64>,
    /// The resource's changes, sent by the store as they are made.
    events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    _open: OpenWatch,
}

/// What a waiting watch woke up for.
enum Wake {
    End,
    Change(Event),
    Idle,
}

impl Watch {
    /// The next line to send; `None` ends the body.
    async fn next_line(&mut self) -> Option<Line> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                self.last_sent = Instant::now();
                return Some(line);
            }
            if self.finished {
                return None;
            }
            let interval =
                lock(&self.shared.bookmark_interval).unwrap_or(DEFAULT_BOOKMARK_INTERVAL);
            let idle_until = self.last_sent + interval;
            let wake = tokio::select! {
                _ = self.breaks.changed() => Wake::End,
                _ = tokio::time::sleep_until(self.deadline) => Wake::End,
                event = self.events.recv() => event.map_or(Wake::End, Wake::Change),
                _ = tokio::time::sleep_until(idle_until), if self.bookmarks => Wake::Idle,
            };
            match wake {
                Wake::End => self.finished = true,
                Wake::Change(event) => {
                    if let Some(line) = self.convert(&event) {
                        self.pending.push_back(Line::Object(line));
                    }
                }
                Wake::Idle => {
                    // A bookmark promises that every event up to its resourceVersion was sent:
                    // the store sends events under its lock, so holding it, whatever is not in
                    // the channel yet is newer than the resourceVersion read.
                    let store = lock(&self.shared.store);
                    while let Ok(event) = self.events.try_recv() {
                        if let Some(line) = self.convert(&event) {
                            self.pending.push_back(Line::Object(line));
                        }
                    }
                    if self.pending.is_empty() {
                        let bookmark = self.bookmark(store.resource_version(), false);
                        self.pending.push_back(bookmark);
                    }
                }
            }
        }
    }

    fn selects(&self, stored: &Stored) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|s| s.matches(&stored.labels))
    }

    /// The event this watch sees for a change, with the watch cache's selector semantics: an
    /// object that starts matching is `ADDED`, one that stops matching is `DELETED` (its previous
    /// state at the change's resourceVersion).
    fn convert(&self, event: &Event) -> Option<Bytes> {
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != event.namespace)
        {
            return None;
        }
        let now = event.kind != EventType::Deleted && self.selects(&event.object);
        let before = event.previous.as_deref().is_some_and(|p| self.selects(p));
        match (before, now) {
            (false, true) => Some(event_line("ADDED", &event.object.json)),
            (true, true) => Some(event_line("MODIFIED", &event.object.json)),
            (true, false) if event.kind == EventType::Deleted => {
                Some(event_line("DELETED", &event.object.json))
            }
            (true, false) => {
                let previous = event.previous.as_deref()?;
                let mut object: Value = serde_json::from_slice(&previous.json).ok()?;
                object["metadata"]["resourceVersion"] = json!(event.resource_version.to_string());
                Some(event_line("DELETED", object.to_string().as_bytes()))
            }
            (false, false) => None,
        }
    }

    /// A bookmark at resourceVersion `rv`; `initial_end` marks the end of the initial events.
    fn bookmark(&self, rv: u64, initial_end: bool) -> Line {
        let mut metadata = format!("{{\"resourceVersion\":\"{rv}\"");
        if initial_end {
            metadata.push_str(",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}");
        }
        metadata.push('}');
        let object = format!(
            "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{metadata}}}",
            json!(self.resource.kind),
            json!(self.resource.api_version()),
        );
        Line::Bookmark(event_line("BOOKMARK", object.as_bytes()))
    }

    fn count(&self, line: &Line) {
        let mut served = lock(&self.shared.served);
        match line {
            Line::Object(bytes) => {
                served.objects += 1;
                served.watch_events += 1;
                served.bytes += bytes.len() as u64;
            }
            Line::Bookmark(bytes) => {
                served.bookmarks += 1;
                served.bytes += bytes.len() as u64;
            }
            Line::Error(bytes) => served.bytes += bytes.len() as u64,
        }
    }
}

/// `{"type":TYPE,"object":OBJECT}\n`.
fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + kind.len() + 24);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// The `ERROR` event of a watch from a forgotten resourceVersion, byte for byte as the API
/// server writes it.
fn expired_line(expired: Expired) -> Line {
    let status = format!(
        "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"too old resource version: {} ({})\",\"reason\":\"Expired\",\"code\":410}}",
        expired.requested, expired.floor
    );
    Line::Error(event_line("ERROR", status.as_bytes()))
}
