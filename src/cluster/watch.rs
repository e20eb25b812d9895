//! `kube.read: watch`: each Flux collection's state is read once and then watched, with
//! bookmarks, into an in-memory store of the partial types. The state comes from a streaming
//! list where the server has them (a watch with `sendInitialEvents=true`: the objects, a
//! bookmark marking their end, then the changes, all in one request), else from a paged list
//! (as `kube.read: list` reads it) and a watch from its resourceVersion. The schedule still decides when to assess and post: a tick takes
//! a copy of the stores ([`ClusterWatch::read`]), so everything downstream is as with a list.
//!
//! A store that is not in sync (its first list not finished, its watch broken and not yet
//! re-established, its list or watch refused) fails the read, as a half-read cluster does: a
//! tick never posts from it. A watch the server ends (its `timeoutSeconds`) is renewed from the
//! last resourceVersion; one whose resourceVersion expired (410) lists again; errors back off
//! with jitter.

pub mod store;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;

use super::Snapshot;
use super::kube::{
    KubeReader, KubeRequest, ListTarget, Listed, ReadError, ReadFailure, ReadOutcome, refusal,
};
use crate::backoff::{Backoff, Grain};
use store::{CollectionStore, Next, decode_event};

/// Shortest `timeoutSeconds` asked of a watch; each asks for a random one up to twice as long,
/// so that many watches do not all renew at once (as client-go's reflector does).
const WATCH_TIMEOUT_MIN: u64 = 300;
/// How long to wait before listing again a kind the API server does not serve (its CRD may be
/// installed later).
const MISSING_KIND_RELIST: Duration = Duration::from_secs(60);
/// Backoff after a failed list or watch.
const RETRY: Backoff = Backoff {
    base: Duration::from_secs(1),
    max: Duration::from_secs(30),
};
/// Longest line of a watch: one object, far beyond any Flux object's size.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Where one watched collection stands.
#[derive(Debug, Clone)]
enum Phase {
    /// The first list has not finished.
    FirstList,
    /// The store holds the collection as of its resourceVersion.
    Synced,
    /// The API server does not serve the kind (its CRD is not installed).
    NotServed,
    /// The list or watch failed; the store is stale until it recovers.
    Failed(ReadFailure),
}

#[derive(Debug)]
struct State {
    store: CollectionStore,
    phase: Phase,
    /// Requests made since the last read, for metrics.
    requests: Vec<KubeRequest>,
}

/// One watched collection: its store and where it stands.
#[derive(Debug)]
struct Watched {
    target: ListTarget,
    state: Mutex<State>,
    /// Woken whenever the phase changes, for a read waiting for the first sync.
    changed: tokio::sync::Notify,
}

impl Watched {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_phase(&self, phase: Phase) {
        self.state().phase = phase;
        self.changed.notify_waiters();
    }

    fn record(&self, requests: Vec<KubeRequest>) {
        self.state().requests.extend(requests);
    }
}

/// The Flux collections, listed once and then watched; dropping it stops every watch.
#[derive(Debug)]
pub struct ClusterWatch {
    watched: Vec<Arc<Watched>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// How long a read waits for the first lists to finish.
    first_sync_wait: Duration,
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ClusterWatch {
    /// Starts listing and watching every collection `reader` reads; `watch_client` sends the
    /// watches (a client without a read timeout: a quiet watch sends nothing for minutes).
    pub fn start(reader: KubeReader, watch_client: kube::Client) -> ClusterWatch {
        let first_sync_wait = reader.request_timeout();
        let watched: Vec<Arc<Watched>> = reader
            .targets()
            .into_iter()
            .map(|target| {
                Arc::new(Watched {
                    target,
                    state: Mutex::new(State {
                        store: CollectionStore::default(),
                        phase: Phase::FirstList,
                        requests: Vec::new(),
                    }),
                    changed: tokio::sync::Notify::new(),
                })
            })
            .collect();
        let tasks = watched
            .iter()
            .map(|w| {
                let follower = Follower {
                    reader: reader.clone(),
                    client: watch_client.clone(),
                    watched: Arc::clone(w),
                };
                tokio::spawn(follower.run())
            })
            .collect();
        ClusterWatch {
            watched,
            tasks,
            first_sync_wait,
        }
    }

    /// Every store's objects as one snapshot, or the first collection not in sync. Waits (up
    /// to the request timeout) for first lists still running, so the first tick after a start
    /// is not lost.
    pub async fn read(&self) -> Result<ReadOutcome, ReadError> {
        let deadline = tokio::time::Instant::now() + self.first_sync_wait;
        for watched in &self.watched {
            loop {
                let notified = watched.changed.notified();
                if !matches!(watched.state().phase, Phase::FirstList) {
                    break;
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break;
                }
            }
        }
        let mut snapshot = Snapshot::default();
        let mut requests = Vec::new();
        let mut failure = None;
        for watched in &self.watched {
            let mut state = watched.state();
            requests.append(&mut state.requests);
            match &state.phase {
                Phase::Synced => {
                    // Grown once to size instead of by doubling.
                    snapshot.reserve(watched.target.kind, state.store.len());
                    state.store.copy_into(&mut snapshot);
                }
                Phase::NotServed => snapshot.missing_kinds.push(watched.target.kind),
                Phase::FirstList => {
                    failure.get_or_insert(ReadFailure::NotSynced {
                        target: watched.target.clone(),
                        why: format!(
                            "its first list has not finished within {:?}",
                            self.first_sync_wait
                        ),
                    });
                }
                Phase::Failed(why) => {
                    failure.get_or_insert(why.clone());
                }
            }
        }
        if let Some(failure) = failure {
            return Err(ReadError { failure, requests });
        }
        snapshot.sort();
        Ok(ReadOutcome { snapshot, requests })
    }
}

/// How one watch ended.
enum WatchEnd {
    /// The server does not stream lists (it refused `sendInitialEvents`, or sent no bookmark
    /// ending the initial events in time): list instead, from now on.
    NoStreaming(String),
    /// The server ended it cleanly (its timeout): watch again from the store's version.
    Renew,
    /// The resourceVersion expired (410): list again.
    Expired(String),
    /// It failed; watch again after a backoff.
    Failed(ReadFailure),
}

/// Lists and watches one collection for as long as the [`ClusterWatch`] lives.
struct Follower {
    reader: KubeReader,
    client: kube::Client,
    watched: Arc<Watched>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// From the store's resourceVersion.
    Resume,
    /// A streaming list: the whole state first, into a fresh store.
    Stream,
}

impl Follower {
    async fn run(self) {
        let target = self.watched.target.clone();
        let mut failures = 0u32;
        let mut streaming = true;
        loop {
            if streaming {
                match self.watch_once(&mut failures, Start::Stream).await {
                    WatchEnd::NoStreaming(why) => {
                        tracing::info!(
                            "the API server does not stream the list of {target} ({why}); listing it instead"
                        );
                        streaming = false;
                        continue;
                    }
                    WatchEnd::Renew => {}
                    WatchEnd::Expired(_) => continue,
                    WatchEnd::Failed(failure) => {
                        tracing::warn!("{failure}; watching again");
                        self.watched.set_phase(Phase::Failed(failure));
                        self.pause(&mut failures).await;
                        continue;
                    }
                }
                if !matches!(self.watched.state().phase, Phase::Synced) {
                    continue;
                }
            } else {
                let mut requests = Vec::new();
                let listed = self.reader.read_list(&target, &mut requests).await;
                self.watched.record(requests);
                match listed {
                    Ok(Listed::Objects {
                        objects,
                        resource_version,
                    }) => {
                        self.watched
                            .state()
                            .store
                            .replace(*objects, resource_version);
                        self.watched.set_phase(Phase::Synced);
                    }
                    Ok(Listed::NotServed) => {
                        self.watched.state().store.clear();
                        self.watched.set_phase(Phase::NotServed);
                        tokio::time::sleep(MISSING_KIND_RELIST).await;
                        continue;
                    }
                    Err(failure) => {
                        tracing::warn!("{failure}; listing again");
                        self.watched.set_phase(Phase::Failed(failure));
                        self.pause(&mut failures).await;
                        continue;
                    }
                }
            }
            // Watch until the resourceVersion expires.
            loop {
                match self.watch_once(&mut failures, Start::Resume).await {
                    WatchEnd::Renew | WatchEnd::NoStreaming(_) => {}
                    WatchEnd::Expired(message) => {
                        tracing::info!(
                            "the watch of {target} expired ({message}); listing it again"
                        );
                        break;
                    }
                    WatchEnd::Failed(failure) => {
                        tracing::warn!("{failure}; watching again");
                        self.watched.set_phase(Phase::Failed(failure));
                        self.pause(&mut failures).await;
                    }
                }
            }
        }
    }

    /// A watch refused for its credentials (401) or permissions (403).
    fn refused(&self, target: &ListTarget, status: u16, message: String) -> WatchEnd {
        if status == 403 {
            return WatchEnd::Failed(ReadFailure::WatchForbidden {
                target: target.clone(),
                message,
            });
        }
        // The body may echo a token rotated since it was last read.
        crate::cluster::client::register_token_files();
        WatchEnd::Failed(ReadFailure::NotSynced {
            target: target.clone(),
            why: format!("the API server refused the credentials (401): {message}"),
        })
    }

    /// Waits out the backoff after one more failure in a row.
    async fn pause(&self, failures: &mut u32) {
        let wait = RETRY.jittered(*failures, Grain::Millis, fastrand::u64);
        *failures = failures.saturating_add(1);
        tokio::time::sleep(wait).await;
    }

    /// One watch request, applied to the store until it ends: from the store's resourceVersion,
    /// or as a streaming list whose initial events fill a fresh store that replaces the old one
    /// at the bookmark ending them.
    async fn watch_once(&self, failures: &mut u32, start: Start) -> WatchEnd {
        let target = &self.watched.target;
        let timeout_seconds = WATCH_TIMEOUT_MIN + fastrand::u64(0..=WATCH_TIMEOUT_MIN);
        let uri = match start {
            Start::Resume => {
                let resource_version = self.watched.state().store.resource_version().to_string();
                self.reader
                    .watch_uri(target, &resource_version, timeout_seconds)
            }
            Start::Stream => self.reader.streaming_list_uri(target, timeout_seconds),
        };
        // The initial state of a streaming list, until the bookmark that ends it.
        let mut initial = (start == Start::Stream).then(CollectionStore::default);
        let initial_deadline = tokio::time::Instant::now() + self.reader.request_timeout();
        let broken = |message: String| {
            WatchEnd::Failed(ReadFailure::NotSynced {
                target: target.clone(),
                why: format!("its watch broke ({message}) and is being re-established"),
            })
        };
        let request = match http::Request::get(&uri)
            .header(http::header::ACCEPT, "application/json")
            .body(kube::client::Body::empty())
        {
            Ok(request) => request,
            Err(e) => return broken(e.to_string()),
        };
        let started = Instant::now();
        let sent =
            tokio::time::timeout(self.reader.request_timeout(), self.client.send(request)).await;
        let code = match &sent {
            Ok(Ok(response)) => Some(response.status().as_u16()),
            _ => None,
        };
        self.watched.record(vec![KubeRequest {
            resource: target.kind.plural(),
            verb: "watch",
            code,
            duration: started.elapsed(),
        }]);
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return broken(crate::forge::text::error_chain(&e)),
            Err(_) => {
                return broken(format!(
                    "no answer within {:?}",
                    self.reader.request_timeout()
                ));
            }
        };
        if response.status().as_u16() != 200 {
            let (status, message) = refusal(response).await;
            return match status {
                403 | 401 => self.refused(target, status, message),
                // A refusal of the request itself: this server does not stream lists. A busy
                // or failing server (429, 5xx) is retried as a stream, not given up on.
                400..=499 if start == Start::Stream && status != 429 => {
                    WatchEnd::NoStreaming(format!("it answered {status}: {message}"))
                }
                410 => WatchEnd::Expired(message),
                _ => broken(format!("the API server answered {status}: {message}")),
            };
        }
        if initial.is_none() {
            // The server answered: the events since our resourceVersion follow at once.
            *failures = 0;
            self.watched.set_phase(Phase::Synced);
        }
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(timeout_seconds)
            + self.reader.request_timeout();
        let mut body = response.into_body();
        let mut pending = BytesMut::new();
        loop {
            let wait = if initial.is_some() {
                initial_deadline
            } else {
                deadline
            };
            let frame = match tokio::time::timeout_at(wait, body.frame()).await {
                Err(_) if initial.is_some() => {
                    return WatchEnd::NoStreaming(format!(
                        "no bookmark ended the initial events within {:?}",
                        self.reader.request_timeout()
                    ));
                }
                Err(_) => return broken("the server did not end it at its timeout".into()),
                Ok(None) if initial.is_some() => {
                    return WatchEnd::NoStreaming(
                        "the stream ended before a bookmark ended the initial events".into(),
                    );
                }
                Ok(None) => return WatchEnd::Renew,
                Ok(Some(Err(e))) => return broken(crate::forge::text::error_chain(&e)),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(data.chunk());
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line = pending.split_to(end + 1);
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                let event = match decode_event(target.kind, line) {
                    Ok(event) => event,
                    Err(e) => return broken(e.to_string()),
                };
                let initial_end = matches!(
                    event,
                    store::WatchEvent::Bookmark {
                        initial_events_end: true,
                        ..
                    }
                );
                let next = match initial.as_mut() {
                    Some(fresh) => fresh.apply(event),
                    None => self.watched.state().store.apply(event),
                };
                if initial_end && let Some(fresh) = initial.take() {
                    self.watched.state().store = fresh;
                    *failures = 0;
                    self.watched.set_phase(Phase::Synced);
                }
                match next {
                    Next::Watch => {}
                    Next::Relist(message) => return WatchEnd::Expired(message),
                    Next::Rewatch { code, message } => {
                        return broken(format!("the server sent error {code}: {message}"));
                    }
                }
            }
            if pending.len() > MAX_EVENT_BYTES {
                return broken(format!("an event longer than {MAX_EVENT_BYTES} bytes"));
            }
        }
    }
}
