//! The pure half of `kube.read: watch`: decoding one watch event line, and the store of one
//! watched collection that list results and events are applied to. No I/O: the driver in
//! [`super`] feeds it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::cluster::{FluxObject, Snapshot};
use crate::flux::FluxKind;

/// One event of a watch, reduced to what the store needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// `ADDED` or `MODIFIED`: the object as it is now.
    Applied {
        resource_version: String,
        object: Box<FluxObject>,
    },
    /// `DELETED`: the object is gone.
    Deleted {
        resource_version: String,
        namespace: String,
        name: String,
    },
    /// `BOOKMARK`: nothing changed up to this resourceVersion; `initial_events_end` marks the
    /// end of a streaming list's initial state (`sendInitialEvents=true`).
    Bookmark {
        resource_version: String,
        initial_events_end: bool,
    },
    /// `ERROR` with 410: the watch's resourceVersion is too old; list again.
    Expired { message: String },
    /// Any other `ERROR`.
    Failed { code: u16, message: String },
}

/// A line of a watch that is not a watch event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable watch event: {0}")]
pub struct EventError(String);

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    object: &'a RawValue,
}

/// Just the metadata an event's object must have.
#[derive(Deserialize)]
struct Identity {
    metadata: IdentityMeta,
}

#[derive(Deserialize)]
struct IdentityMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(rename = "resourceVersion", default)]
    resource_version: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The annotation of the bookmark that ends a streaming list's initial events.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    message: String,
}

/// Decodes one line of a watch of `kind`.
pub fn decode_event(kind: FluxKind, line: &[u8]) -> Result<WatchEvent, EventError> {
    let problem = |e: serde_json::Error| EventError(e.to_string());
    let event: RawEvent = serde_json::from_slice(line).map_err(problem)?;
    let object = event.object.get();
    match event.kind.as_str() {
        "ERROR" => {
            let status: Status = serde_json::from_str(object).map_err(problem)?;
            Ok(if status.code == 410 {
                WatchEvent::Expired {
                    message: status.message,
                }
            } else {
                WatchEvent::Failed {
                    code: status.code,
                    message: status.message,
                }
            })
        }
        other => {
            let identity: Identity = serde_json::from_str(object).map_err(problem)?;
            let resource_version = identity.metadata.resource_version;
            if resource_version.is_empty() {
                return Err(EventError(format!(
                    "{other} event without metadata.resourceVersion"
                )));
            }
            match other {
                "ADDED" | "MODIFIED" => Ok(WatchEvent::Applied {
                    resource_version,
                    object: Box::new(FluxObject::from_json(kind, object)),
                }),
                "DELETED" => Ok(WatchEvent::Deleted {
                    resource_version,
                    namespace: identity.metadata.namespace,
                    name: identity.metadata.name,
                }),
                "BOOKMARK" => Ok(WatchEvent::Bookmark {
                    resource_version,
                    initial_events_end: identity
                        .metadata
                        .annotations
                        .get(INITIAL_EVENTS_END)
                        .is_some_and(|v| v == "true"),
                }),
                unknown => Err(EventError(format!("unknown event type `{unknown}`"))),
            }
        }
    }
}

/// What applying an event asks of the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Keep watching.
    Watch,
    /// The resourceVersion expired: list again.
    Relist(String),
    /// The server reported an error: watch again from the store's resourceVersion.
    Rewatch { code: u16, message: String },
}

/// The objects of one watched collection, by (namespace, name), as of `resource_version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionStore {
    objects: BTreeMap<(String, String), FluxObject>,
    resource_version: String,
}

impl CollectionStore {
    /// Replaces everything with a list's objects and resourceVersion.
    pub fn replace(&mut self, list: Snapshot, resource_version: String) {
        self.objects = list
            .into_objects()
            .map(|object| {
                let (namespace, name) = object.key();
                ((namespace.to_string(), name.to_string()), object)
            })
            .collect();
        self.resource_version = resource_version;
    }

    /// Forgets every object (the kind is no longer served).
    pub fn clear(&mut self) {
        self.objects.clear();
        self.resource_version.clear();
    }

    /// Applies one event.
    pub fn apply(&mut self, event: WatchEvent) -> Next {
        match event {
            WatchEvent::Applied {
                resource_version,
                object,
            } => {
                let (namespace, name) = object.key();
                let key = (namespace.to_string(), name.to_string());
                self.objects.insert(key, *object);
                self.resource_version = resource_version;
            }
            WatchEvent::Deleted {
                resource_version,
                namespace,
                name,
            } => {
                self.objects.remove(&(namespace, name));
                self.resource_version = resource_version;
            }
            WatchEvent::Bookmark {
                resource_version, ..
            } => {
                self.resource_version = resource_version;
            }
            WatchEvent::Expired { message } => return Next::Relist(message),
            WatchEvent::Failed { code, message } => return Next::Rewatch { code, message },
        }
        Next::Watch
    }

    /// Where a watch resumes.
    pub fn resource_version(&self) -> &str {
        &self.resource_version
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Copies every object into `snapshot`.
    pub fn copy_into(&self, snapshot: &mut Snapshot) {
        for object in self.objects.values() {
            snapshot.push(object.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(namespace: &str, name: &str, rv: u32, suspend: bool) -> String {
        format!(
            r#"{{"apiVersion":"kustomize.toolkit.fluxcd.io/v1","kind":"Kustomization","metadata":{{"name":"{name}","namespace":"{namespace}","resourceVersion":"{rv}"}},"spec":{{"suspend":{suspend},"sourceRef":{{"kind":"GitRepository","name":"fleet"}}}}}}"#
        )
    }

    fn event(kind: &str, object: &str) -> Vec<u8> {
        format!(r#"{{"type":"{kind}","object":{object}}}"#).into_bytes()
    }

    fn apply(store: &mut CollectionStore, kind: &str, object: &str) -> Next {
        store.apply(decode_event(FluxKind::Kustomization, &event(kind, object)).unwrap())
    }

    fn names(store: &CollectionStore) -> Vec<(String, bool)> {
        let mut snapshot = Snapshot::default();
        store.copy_into(&mut snapshot);
        snapshot
            .kustomizations
            .iter()
            .map(|k| (k.metadata.name.clone(), k.spec.suspend))
            .collect()
    }

    #[test]
    fn added_modified_and_deleted_events_change_the_store_and_its_resource_version() {
        let mut store = CollectionStore::default();
        assert_eq!(
            apply(&mut store, "ADDED", &ks("a", "x", 11, false)),
            Next::Watch
        );
        assert_eq!(
            apply(&mut store, "ADDED", &ks("a", "y", 12, false)),
            Next::Watch
        );
        assert_eq!(
            apply(&mut store, "MODIFIED", &ks("a", "x", 13, true)),
            Next::Watch
        );
        assert_eq!(names(&store), [("x".into(), true), ("y".into(), false)]);
        assert_eq!(
            apply(&mut store, "DELETED", &ks("a", "y", 14, false)),
            Next::Watch
        );
        assert_eq!(names(&store), [("x".into(), true)]);
        assert_eq!(store.resource_version(), "14");
        let bookmark = r#"{"kind":"Kustomization","apiVersion":"kustomize.toolkit.fluxcd.io/v1","metadata":{"resourceVersion":"20"}}"#;
        assert_eq!(apply(&mut store, "BOOKMARK", bookmark), Next::Watch);
        assert_eq!(store.resource_version(), "20");
        let end = r#"{"kind":"Kustomization","metadata":{"resourceVersion":"21","annotations":{"k8s.io/initial-events-end":"true"}}}"#;
        assert_eq!(
            decode_event(FluxKind::Kustomization, &event("BOOKMARK", end)).unwrap(),
            WatchEvent::Bookmark {
                resource_version: "21".into(),
                initial_events_end: true
            }
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_410_error_event_asks_for_a_relist_and_other_errors_for_a_new_watch() {
        let mut store = CollectionStore::default();
        let expired = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (9)","reason":"Expired","code":410}"#;
        assert_eq!(
            apply(&mut store, "ERROR", expired),
            Next::Relist("too old resource version: 5 (9)".into())
        );
        let other = r#"{"kind":"Status","status":"Failure","message":"etcd is sad","code":500}"#;
        assert_eq!(
            apply(&mut store, "ERROR", other),
            Next::Rewatch {
                code: 500,
                message: "etcd is sad".into()
            }
        );
    }

    #[test]
    fn an_object_that_does_not_fit_its_type_is_kept_as_undecodable_by_its_name() {
        let mut store = CollectionStore::default();
        let broken = r#"{"metadata":{"name":"bad","namespace":"a","resourceVersion":"3"},"spec":{"sourceRef":{"name":"r"}}}"#;
        apply(&mut store, "ADDED", broken);
        let mut snapshot = Snapshot::default();
        store.copy_into(&mut snapshot);
        assert_eq!(
            snapshot.undecodable[0].to_string(),
            "Kustomization a/bad: spec.sourceRef: missing field `kind`"
        );
        apply(&mut store, "DELETED", broken);
        assert!(store.is_empty());
    }

    #[test]
    fn lines_that_are_not_events_are_refused_saying_why() {
        for (line, problem) in [
            (
                "not json".to_string(),
                "unreadable watch event: expected ident at line 1 column 2",
            ),
            (
                String::from_utf8(event("ADDED", r#"{"metadata":{"name":"x"}}"#)).unwrap(),
                "unreadable watch event: ADDED event without metadata.resourceVersion",
            ),
            (
                String::from_utf8(event(
                    "RENAMED",
                    r#"{"metadata":{"name":"x","resourceVersion":"1"}}"#,
                ))
                .unwrap(),
                "unreadable watch event: unknown event type `RENAMED`",
            ),
        ] {
            assert_eq!(
                decode_event(FluxKind::Kustomization, line.as_bytes())
                    .unwrap_err()
                    .to_string(),
                problem
            );
        }
    }

    #[test]
    fn a_list_replaces_everything_the_store_held() {
        let mut store = CollectionStore::default();
        apply(&mut store, "ADDED", &ks("a", "gone", 2, false));
        let mut list = Snapshot::default();
        list.insert_json(FluxKind::Kustomization, &ks("b", "kept", 7, true));
        store.replace(list, "30".into());
        assert_eq!(names(&store), [("kept".into(), true)]);
        assert_eq!(store.resource_version(), "30");
    }
}
