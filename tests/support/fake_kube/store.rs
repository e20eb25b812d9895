//! The fake API server's state: which resources it serves, the objects, resource versions,
//! list snapshots for continue tokens, the event log watches read from, and the write rules
//! (optimistic concurrency).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use bytes::Bytes;
use flux_status_exporter::cluster::selector::LabelSelector;
use serde_json::{Map, Value, json};

/// One resource type the fake serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
}

impl Resource {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or `plural` for the core group), as the API server names it in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The resource types served: the storage version of every vendored Flux CRD, plus core
/// ConfigMaps and Secrets and coordination.k8s.io Leases.
pub fn registry() -> &'static [Resource] {
    static REGISTRY: OnceLock<Vec<Resource>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut resources = vec![
            core("", "v1", "configmaps", "ConfigMap", &["cm"]),
            core("", "v1", "secrets", "Secret", &[]),
            core("coordination.k8s.io", "v1", "leases", "Lease", &[]),
        ];
        resources.extend(vendored_crds());
        resources
    })
}

fn core(group: &str, version: &str, plural: &str, kind: &str, short: &[&str]) -> Resource {
    Resource {
        group: group.to_string(),
        version: version.to_string(),
        plural: plural.to_string(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.to_string(),
        list_kind: format!("{kind}List"),
        namespaced: true,
        short_names: short.iter().map(|s| s.to_string()).collect(),
    }
}

fn vendored_crds() -> Vec<Resource> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("crds");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let mut resources = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let options = serde_saphyr::options! { budget: None };
        let crd: Value = serde_saphyr::from_str_with_options(&text, options)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let spec = &crd["spec"];
        let names = &spec["names"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let Some(version) = spec["versions"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
        else {
            continue;
        };
        resources.push(Resource {
            group: text(&spec["group"]),
            version: text(&version["name"]),
            plural: text(&names["plural"]),
            singular: text(&names["singular"]),
            kind: text(&names["kind"]),
            list_kind: text(&names["listKind"]),
            namespaced: spec["scope"] == "Namespaced",
            short_names: names["shortNames"]
                .as_array()
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default(),
        });
    }
    resources
}

/// An answer that is not a success: rendered as a Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn for_object(mut self, resource: &Resource, name: &str) -> Self {
        let mut details = json!({"name": name, "kind": resource.plural});
        if !resource.group.is_empty() {
            details["group"] = json!(resource.group);
        }
        self.details = Some(details);
        self
    }

    /// The `Status` body.
    pub fn body(&self) -> Bytes {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        Bytes::from(status.to_string())
    }

    pub fn not_found_path() -> Self {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    fn not_found(resource: &Resource, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", resource.qualified()),
        )
        .for_object(resource, name)
    }

    fn conflict(resource: &Resource, name: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                resource.qualified()
            ),
        )
        .for_object(resource, name)
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }
}

/// One stored object: its JSON exactly as served, and its labels for selectors.
#[derive(Debug)]
pub struct Stored {
    pub json: Bytes,
    pub labels: BTreeMap<String, String>,
    pub resource_version: u64,
}

/// Objects of one resource by (namespace, name), in the order etcd keeps them.
type Collection = BTreeMap<(String, String), Arc<Stored>>;

/// What a change did to an object, as a watch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change in a resource's event log.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    /// The resourceVersion the change produced.
    pub resource_version: u64,
    pub namespace: String,
    pub name: String,
    /// The object after the change; for `Deleted`, its last state with the deletion's
    /// resourceVersion, as the API server sends it.
    pub object: Arc<Stored>,
    /// The object before the change (`Modified` and `Deleted`): a watch with a label selector
    /// needs its labels to tell an object leaving the selection from one that never was in it.
    pub previous: Option<Arc<Stored>>,
}

/// How many events the fake keeps per resource, the upper bound of the API server's watch
/// cache: a watch resuming from before the oldest kept event gets 410, as it would there.
/// Older events are dropped, which also bounds the memory of long benchmarks.
pub const WATCH_CACHE_CAPACITY: usize = 100 * 1024;

/// Everything the fake holds.
#[derive(Debug)]
pub struct Store {
    installed: Vec<bool>,
    collections: Vec<Arc<Collection>>,
    /// The collection as it was when a paged list began, by (resource, resourceVersion): what
    /// continue tokens read from, so that a paged list is one consistent snapshot.
    snapshots: HashMap<(usize, u64), Arc<Collection>>,
    /// Per resource, every change after its floor, oldest first.
    events: Vec<VecDeque<Event>>,
    /// Per resource, the oldest resourceVersion a new watch may resume from: the store's
    /// resourceVersion at the last compaction (as etcd compacts every key up to a revision),
    /// or that of the newest event dropped beyond [`WATCH_CACHE_CAPACITY`].
    floors: Vec<u64>,
    resource_version: u64,
    /// The open watches, by resource: each change is sent to them as it is made, as the watch
    /// cache dispatches it to its watchers, so compaction never takes an event from one.
    watchers: Vec<(usize, tokio::sync::mpsc::UnboundedSender<Event>)>,
}

impl Default for Store {
    fn default() -> Self {
        let n = registry().len();
        Store {
            installed: vec![true; n],
            collections: (0..n).map(|_| Arc::new(Collection::new())).collect(),
            snapshots: HashMap::new(),
            events: (0..n).map(|_| VecDeque::new()).collect(),
            floors: vec![0; n],
            resource_version: 1000,
            watchers: Vec::new(),
        }
    }
}

/// A watch asked to resume from a resourceVersion whose events are forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The resourceVersion asked for.
    pub requested: u64,
    /// The oldest resourceVersion a watch of the resource may resume from.
    pub floor: u64,
}

/// One list page: its body and how many objects it holds.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub body: Bytes,
    pub items: usize,
}

/// Query parameters of a list call.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub label_selector: Option<String>,
}

impl Store {
    /// The index of a served resource.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        registry().iter().enumerate().position(|(i, r)| {
            self.installed[i] && r.group == group && r.version == version && r.plural == plural
        })
    }

    /// The index of a resource by plural name or `plural.group`, installed or not.
    pub fn find_any(&self, name: &str) -> Option<usize> {
        registry()
            .iter()
            .position(|r| r.plural == name || r.qualified() == name)
    }

    /// Whether a resource is served.
    pub fn is_installed(&self, index: usize) -> bool {
        self.installed[index]
    }

    /// Stops or starts serving a resource (as when its CRD is deleted or created).
    pub fn set_installed(&mut self, index: usize, installed: bool) {
        self.installed[index] = installed;
    }

    /// Forgets every list snapshot and every event, as etcd compaction does: outstanding
    /// continue tokens, and watches resuming from an earlier resourceVersion, then get 410 Gone.
    /// Open watches are not affected.
    pub fn compact(&mut self) {
        self.snapshots.clear();
        for events in &mut self.events {
            events.clear();
        }
        self.floors.fill(self.resource_version);
    }

    /// The oldest resourceVersion a new watch of a resource may resume from.
    pub fn floor(&self, index: usize) -> u64 {
        self.floors[index]
    }

    /// Opens a watch of a resource: every later change of it is sent to the receiver, until
    /// the receiver is dropped.
    pub fn subscribe(&mut self, index: usize) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        self.watchers.push((index, sender));
        receiver
    }

    /// The current objects of a resource in a namespace (all when `None`), in list order.
    pub fn current_objects(&self, index: usize, namespace: Option<&str>) -> Vec<Arc<Stored>> {
        let lower = match namespace {
            Some(ns) => Bound::Included((ns.to_string(), String::new())),
            None => Bound::Unbounded,
        };
        self.collections[index]
            .range((lower, Bound::Unbounded))
            .take_while(|(key, _)| namespace.is_none_or(|ns| key.0 == ns))
            .map(|(_, stored)| stored.clone())
            .collect()
    }

    /// Every event of a resource after resourceVersion `after`, oldest first; an error when
    /// `after` is older than the resource's floor (some events may be forgotten).
    pub fn events_after(&self, index: usize, after: u64) -> Result<Vec<Event>, Expired> {
        let floor = self.floors[index];
        if after < floor {
            return Err(Expired {
                requested: after,
                floor,
            });
        }
        let events = &self.events[index];
        let start = events.partition_point(|e| e.resource_version <= after);
        Ok(events.range(start..).cloned().collect())
    }

    /// Appends a change to a resource's event log and sends it to the resource's open watches
    /// (forgetting those that ended).
    fn record(&mut self, index: usize, event: Event) {
        self.watchers
            .retain(|(watched, sender)| *watched != index || sender.send(event.clone()).is_ok());
        let events = &mut self.events[index];
        events.push_back(event);
        while events.len() > WATCH_CACHE_CAPACITY {
            if let Some(dropped) = events.pop_front() {
                self.floors[index] = self.floors[index].max(dropped.resource_version);
            }
        }
    }

    /// The current resourceVersion of the whole store.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// A list page (the whole list without `limit`), as the API server would render it.
    pub fn list(
        &mut self,
        index: usize,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ListPage, ApiError> {
        let resource = &registry()[index];
        let selector =
            match params.label_selector.as_deref() {
                Some(s) if !s.trim().is_empty() => Some(LabelSelector::parse(s).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse requirement: {e}"))
                })?),
                _ => None,
            };
        let (list_rv, collection, after) = match params.continue_token.as_deref() {
            Some(token) if !token.is_empty() => {
                let (rv, start) = decode_continue(token)?;
                let collection = self.snapshots.get(&(index, rv)).cloned().ok_or_else(|| {
                    ApiError::new(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    )
                })?;
                (rv, collection, Some(start))
            }
            _ => {
                let rv = self.resource_version;
                let collection = self.collections[index].clone();
                if params.limit.is_some_and(|l| l > 0) {
                    self.snapshots.insert((index, rv), collection.clone());
                }
                (rv, collection, None)
            }
        };
        let in_scope = |key: &(String, String)| namespace.is_none_or(|ns| key.0 == ns);
        let lower = match (&after, namespace) {
            (Some(key), _) => Bound::Excluded(key.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let mut range = collection
            .range((lower, Bound::Unbounded))
            .take_while(|(key, _)| in_scope(key))
            .peekable();
        let limit = params.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items: Vec<&Bytes> = Vec::new();
        let mut last_key = None;
        while items.len() < limit {
            let Some((key, stored)) = range.next() else {
                break;
            };
            if selector.as_ref().is_none_or(|s| s.matches(&stored.labels)) {
                items.push(&stored.json);
                last_key = Some(key);
            }
        }
        let more = items.len() == limit && range.peek().is_some();
        let mut metadata = Map::new();
        if more && let Some(key) = last_key {
            metadata.insert("continue".into(), json!(encode_continue(list_rv, key)));
            // Like the API server: the count is only known when no selector filters it.
            if selector.is_none() {
                metadata.insert("remainingItemCount".into(), json!(range.count()));
            }
        }
        metadata.insert("resourceVersion".into(), json!(list_rv.to_string()));

        let size: usize = items.iter().map(|i| i.len() + 1).sum();
        let mut body = Vec::with_capacity(size + 256);
        body.extend_from_slice(b"{\"apiVersion\":");
        body.extend_from_slice(json!(resource.api_version()).to_string().as_bytes());
        body.extend_from_slice(b",\"items\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item);
        }
        body.extend_from_slice(b"],\"kind\":");
        body.extend_from_slice(json!(resource.list_kind).to_string().as_bytes());
        body.extend_from_slice(b",\"metadata\":");
        body.extend_from_slice(Value::Object(metadata).to_string().as_bytes());
        body.push(b'}');
        Ok(ListPage {
            body: Bytes::from(body),
            items: items.len(),
        })
    }

    /// One object's JSON.
    pub fn get(&self, index: usize, namespace: &str, name: &str) -> Result<Bytes, ApiError> {
        let resource = &registry()[index];
        self.collections[index]
            .get(&(namespace.to_string(), name.to_string()))
            .map(|s| s.json.clone())
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// One object as a value, for tests.
    pub fn get_value(&self, index: usize, namespace: &str, name: &str) -> Option<Value> {
        let json = self.get(index, namespace, name).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// Every object of a resource, in list order, for tests.
    pub fn values(&self, index: usize) -> Vec<Value> {
        self.collections[index]
            .values()
            .filter_map(|s| serde_json::from_slice(&s.json).ok())
            .collect()
    }

    /// Stores an object as given, replacing any object of that name, with a new
    /// resourceVersion: how tests set up and change the cluster between requests.
    pub fn put(&mut self, index: usize, object: Value) -> Result<Value, ApiError> {
        let (namespace, name) = identity(&object)?;
        self.write(index, &namespace, &name, object)
    }

    /// Deletes an object; whether it existed.
    pub fn remove(&mut self, index: usize, namespace: &str, name: &str) -> bool {
        let key = (namespace.to_string(), name.to_string());
        let Some(removed) = Arc::make_mut(&mut self.collections[index]).remove(&key) else {
            return false;
        };
        self.resource_version += 1;
        let rv = self.resource_version;
        // A watch sees the object's last state at the deletion's resourceVersion.
        let mut last: Value = serde_json::from_slice(&removed.json).unwrap_or_else(|_| json!({}));
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        let gone = Stored {
            json: Bytes::from(last.to_string()),
            labels: removed.labels.clone(),
            resource_version: rv,
        };
        self.record(
            index,
            Event {
                kind: EventType::Deleted,
                resource_version: rv,
                namespace: key.0,
                name: key.1,
                object: Arc::new(gone),
                previous: Some(removed),
            },
        );
        true
    }

    /// `POST` to a collection.
    pub fn create(
        &mut self,
        index: usize,
        namespace: &str,
        body: &[u8],
    ) -> Result<Bytes, ApiError> {
        let resource = &registry()[index];
        let mut object = parse_object(body)?;
        let name = object_name(&object)?;
        check_namespace(&mut object, namespace)?;
        let key = (namespace.to_string(), name.clone());
        if self.collections[index].contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", resource.qualified()),
            )
            .for_object(resource, &name));
        }
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
            meta.entry("uid").or_insert_with(|| {
                json!(format!(
                    "00000000-0000-4000-8000-{:012}",
                    self.resource_version + 1
                ))
            });
            meta.entry("creationTimestamp").or_insert_with(|| {
                json!(
                    jiff::Timestamp::now()
                        .round(jiff::Unit::Second)
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                )
            });
        }
        self.write(index, namespace, &name, object)?;
        self.get(index, namespace, &name)
    }

    /// `PUT` of one object: refused with 409 when its resourceVersion is not the stored one.
    pub fn update(
        &mut self,
        index: usize,
        namespace: &str,
        name: &str,
        body: &[u8],
    ) -> Result<Bytes, ApiError> {
        let resource = &registry()[index];
        let mut object = parse_object(body)?;
        if object_name(&object)? != name {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        check_namespace(&mut object, namespace)?;
        let current = self.current(index, namespace, name)?;
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && rv != current.resource_version.to_string()
        {
            return Err(ApiError::conflict(resource, name));
        }
        self.write(index, namespace, name, object)?;
        self.get(index, namespace, name)
    }

    /// `PATCH` of one object: merge, strategic merge (treated as merge), JSON patch, or apply
    /// (treated as a merge that may create). A resourceVersion in the patch is a precondition.
    pub fn patch(
        &mut self,
        index: usize,
        namespace: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Bytes, ApiError> {
        let resource = &registry()[index];
        let media = content_type.split(';').next().unwrap_or("").trim();
        let current = match self.current(index, namespace, name) {
            Ok(current) => Some(current),
            Err(_) if media == "application/apply-patch+yaml" => None,
            Err(e) => return Err(e),
        };
        let mut object = match &current {
            Some(stored) => serde_json::from_slice(&stored.json)
                .map_err(|e| ApiError::new(500, "InternalError", e.to_string()))?,
            None => json!({
                "apiVersion": resource.api_version(),
                "kind": resource.kind,
                "metadata": {"name": name, "namespace": namespace},
            }),
        };
        let precondition = match media {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                let patch: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
                let rv = patch["metadata"]["resourceVersion"]
                    .as_str()
                    .map(str::to_string);
                merge_patch(&mut object, &patch);
                rv
            }
            "application/apply-patch+yaml" => {
                let text = std::str::from_utf8(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
                let patch: Value = serde_saphyr::from_str(text)
                    .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
                let rv = patch["metadata"]["resourceVersion"]
                    .as_str()
                    .map(str::to_string);
                merge_patch(&mut object, &patch);
                rv
            }
            "application/json-patch+json" => {
                let ops: Vec<Value> = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
                let mut rv = None;
                for op in &ops {
                    if op["path"] == "/metadata/resourceVersion" && op["op"] == "test" {
                        rv = op["value"].as_str().map(str::to_string);
                        continue;
                    }
                    json_patch(&mut object, op).map_err(|e| {
                        ApiError::new(
                            422,
                            "Invalid",
                            format!("the JSON patch does not apply: {e}"),
                        )
                    })?;
                }
                rv
            }
            other => {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other})"
                    ),
                ));
            }
        };
        if let (Some(rv), Some(stored)) = (precondition, &current)
            && rv != stored.resource_version.to_string()
        {
            return Err(ApiError::conflict(resource, name));
        }
        check_namespace(&mut object, namespace)?;
        object["metadata"]["name"] = json!(name);
        self.write(index, namespace, name, object)?;
        self.get(index, namespace, name)
    }

    /// `DELETE` of one object.
    pub fn delete(&mut self, index: usize, namespace: &str, name: &str) -> Result<Bytes, ApiError> {
        let json = self.get(index, namespace, name)?;
        self.remove(index, namespace, name);
        Ok(json)
    }

    fn current(&self, index: usize, namespace: &str, name: &str) -> Result<Arc<Stored>, ApiError> {
        self.collections[index]
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&registry()[index], name))
    }

    fn write(
        &mut self,
        index: usize,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let resource = &registry()[index];
        let Some(map) = object.as_object_mut() else {
            return Err(ApiError::bad_request("the object is not a JSON object"));
        };
        map.entry("apiVersion")
            .or_insert_with(|| json!(resource.api_version()));
        map.entry("kind").or_insert_with(|| json!(resource.kind));
        if resource.kind == "ConfigMap" {
            check_config_map_size(&object, name)?;
        }
        self.resource_version += 1;
        let rv = self.resource_version;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let labels = object["metadata"]["labels"]
            .as_object()
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let stored = Arc::new(Stored {
            json: Bytes::from(object.to_string()),
            labels,
            resource_version: rv,
        });
        let previous = Arc::make_mut(&mut self.collections[index])
            .insert((namespace.to_string(), name.to_string()), stored.clone());
        self.record(
            index,
            Event {
                kind: if previous.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                },
                resource_version: rv,
                namespace: namespace.to_string(),
                name: name.to_string(),
                object: stored,
                previous,
            },
        );
        Ok(object)
    }
}

/// The API server's limit on a ConfigMap's `data` plus `binaryData` (keys and decoded values).
pub const CONFIG_MAP_MAX_BYTES: usize = 1024 * 1024;

/// Refuses a ConfigMap over [`CONFIG_MAP_MAX_BYTES`] as the API server's validation does.
fn check_config_map_size(object: &Value, name: &str) -> Result<(), ApiError> {
    let mut size = 0;
    if let Some(data) = object["data"].as_object() {
        for (key, value) in data {
            size += key.len() + value.as_str().map_or(0, str::len);
        }
    }
    if let Some(data) = object["binaryData"].as_object() {
        for (key, value) in data {
            let decoded = value
                .as_str()
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .ok_or_else(|| ApiError::bad_request(format!("binaryData[{key}]: not base64")))?;
            size += key.len() + decoded.len();
        }
    }
    if size > CONFIG_MAP_MAX_BYTES {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "ConfigMap \"{name}\" is invalid: []: Too long: must have at most {CONFIG_MAP_MAX_BYTES} bytes"
            ),
        ));
    }
    Ok(())
}

fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let object: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    if !object.is_object() {
        return Err(ApiError::bad_request("the body is not a JSON object"));
    }
    Ok(object)
}

fn object_name(object: &Value) -> Result<String, ApiError> {
    match object["metadata"]["name"].as_str() {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(ApiError::new(
            422,
            "Invalid",
            "metadata.name: Required value: name or generateName is required",
        )),
    }
}

fn check_namespace(object: &mut Value, namespace: &str) -> Result<(), ApiError> {
    match object["metadata"]["namespace"].as_str() {
        Some(ns) if !ns.is_empty() && ns != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            object["metadata"]["namespace"] = json!(namespace);
            Ok(())
        }
    }
}

/// `metadata.namespace` and `metadata.name` of an object to store.
pub fn identity(object: &Value) -> Result<(String, String), ApiError> {
    let name = object_name(object)?;
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    Ok((namespace, name))
}

fn encode_continue(rv: u64, key: &(String, String)) -> String {
    let token =
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{}/{}\u{0}", key.0, key.1)});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, (String, String)), ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid("not base64"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("not JSON"))?;
    let rv = value["rv"]
        .as_u64()
        .ok_or_else(|| invalid("no resource version"))?;
    let start = value["start"]
        .as_str()
        .and_then(|s| s.strip_suffix('\u{0}'))
        .ok_or_else(|| invalid("no start key"))?;
    let (ns, name) = start
        .split_once('/')
        .ok_or_else(|| invalid("bad start key"))?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// One RFC 6902 operation (add, remove, replace, test).
fn json_patch(target: &mut Value, op: &Value) -> Result<(), String> {
    let path = op["path"].as_str().ok_or("no path")?;
    let tokens: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, parents) = tokens.split_last().ok_or("empty path")?;
    let mut parent = &mut *target;
    for token in parents {
        parent = match parent {
            Value::Object(map) => map.get_mut(token).ok_or(format!("{path}: missing"))?,
            Value::Array(items) => {
                let i: usize = token.parse().map_err(|_| format!("{path}: bad index"))?;
                items.get_mut(i).ok_or(format!("{path}: missing"))?
            }
            _ => return Err(format!("{path}: not a container")),
        };
    }
    let value = op["value"].clone();
    match (op["op"].as_str().unwrap_or(""), parent) {
        ("add" | "replace", Value::Object(map)) => {
            map.insert(last.clone(), value);
        }
        ("add", Value::Array(items)) if last == "-" => items.push(value),
        ("add", Value::Array(items)) => {
            let i: usize = last.parse().map_err(|_| format!("{path}: bad index"))?;
            if i > items.len() {
                return Err(format!("{path}: out of range"));
            }
            items.insert(i, value);
        }
        ("replace", Value::Array(items)) => {
            let i: usize = last.parse().map_err(|_| format!("{path}: bad index"))?;
            *items.get_mut(i).ok_or(format!("{path}: missing"))? = value;
        }
        ("remove", Value::Object(map)) => {
            map.remove(last).ok_or(format!("{path}: missing"))?;
        }
        ("remove", Value::Array(items)) => {
            let i: usize = last.parse().map_err(|_| format!("{path}: bad index"))?;
            if i >= items.len() {
                return Err(format!("{path}: missing"));
            }
            items.remove(i);
        }
        ("test", Value::Object(map)) => {
            if map.get(last) != Some(&value) {
                return Err(format!("{path}: test failed"));
            }
        }
        (other, _) => return Err(format!("unsupported operation `{other}` at {path}")),
    }
    Ok(())
}

/// The objects of a `kubectl get -o yaml|json` dump: Lists and arrays flattened.
pub fn dump_items(text: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let documents = if trimmed.starts_with('{') {
        vec![serde_json::from_str::<Value>(trimmed).map_err(|e| e.to_string())?]
    } else {
        let options = serde_saphyr::options! { budget: None };
        serde_saphyr::from_multiple_with_options::<Value>(text, options)
            .map_err(|e| e.to_string())?
    };
    let mut items = Vec::new();
    for document in documents {
        match document {
            Value::Null => {}
            Value::Array(list) => items.extend(list),
            Value::Object(mut object) => {
                let is_list = object
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"));
                match object.remove("items") {
                    Some(Value::Array(list)) if is_list => items.extend(list),
                    Some(_) if is_list => {}
                    Some(other) => {
                        object.insert("items".into(), other);
                        items.push(Value::Object(object));
                    }
                    None if is_list => {}
                    None => items.push(Value::Object(object)),
                }
            }
            other => return Err(format!("not a Kubernetes object or List: {other}")),
        }
    }
    Ok(items)
}
