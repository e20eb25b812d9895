//! What one tick saw of the cluster, and the readers that produce it.

mod bounded_value;
pub mod client;
pub mod dump;
pub mod kube;
pub mod selector;
pub mod watch;

use serde::de::DeserializeOwned;

use crate::flux::{
    Bucket, FluxKind, GitRepository, HelmChart, HelmRelease, Kustomization, ObjectMeta,
    OciRepository,
};

/// The Flux objects read in one tick, each list sorted by namespace then name so that every
/// reader produces the same snapshot for the same objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub kustomizations: Vec<Kustomization>,
    pub helm_releases: Vec<HelmRelease>,
    pub git_repositories: Vec<GitRepository>,
    pub oci_repositories: Vec<OciRepository>,
    pub helm_charts: Vec<HelmChart>,
    pub buckets: Vec<Bucket>,
    /// Objects of a Flux kind that did not fit the exporter's types; skipped, not assessed.
    pub undecodable: Vec<UndecodableObject>,
    /// Kinds whose CRD is not installed (the API answered 404); their lists are empty.
    pub missing_kinds: Vec<FluxKind>,
}

/// A Flux object skipped because it did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndecodableObject {
    pub kind: FluxKind,
    pub namespace: String,
    pub name: String,
    /// Field path and what is wrong, e.g. `spec.sourceRef: missing field \`name\``.
    pub error: String,
}

impl std::fmt::Display for UndecodableObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}/{}: {}",
            self.kind, self.namespace, self.name, self.error
        )
    }
}

/// One Flux object as the exporter keeps it: decoded into its partial type, or the record of
/// why it did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FluxObject {
    Kustomization(Kustomization),
    HelmRelease(HelmRelease),
    GitRepository(GitRepository),
    OciRepository(OciRepository),
    HelmChart(HelmChart),
    Bucket(Bucket),
    Undecodable(UndecodableObject),
}

impl FluxObject {
    /// Decodes one object of `kind` from its JSON text. The object's name is only looked up
    /// when it does not decode, so the common case parses the text once.
    pub fn from_json(kind: FluxKind, json: &str) -> FluxObject {
        let mut de = serde_json::Deserializer::from_str(json);
        match FluxObject::decode(kind, &mut de) {
            Ok(object) => object,
            Err(error) => {
                let identity: Identity = serde_json::from_str(json).unwrap_or_default();
                FluxObject::Undecodable(UndecodableObject {
                    kind,
                    namespace: identity.metadata.namespace,
                    name: identity.metadata.name,
                    error: error.to_string(),
                })
            }
        }
    }

    fn decode<'de, D>(kind: FluxKind, item: D) -> Result<FluxObject, DecodeError>
    where
        D: serde::Deserializer<'de>,
    {
        Ok(match kind {
            FluxKind::Kustomization => FluxObject::Kustomization(decode(item)?),
            FluxKind::HelmRelease => FluxObject::HelmRelease(decode(item)?),
            FluxKind::GitRepository => FluxObject::GitRepository(decode(item)?),
            FluxKind::OciRepository => FluxObject::OciRepository(decode(item)?),
            FluxKind::HelmChart => FluxObject::HelmChart(decode(item)?),
            FluxKind::Bucket => FluxObject::Bucket(decode(item)?),
        })
    }

    /// Its namespace and name.
    pub fn key(&self) -> (&str, &str) {
        let meta = match self {
            FluxObject::Kustomization(o) => &o.metadata,
            FluxObject::HelmRelease(o) => &o.metadata,
            FluxObject::GitRepository(o) => &o.metadata,
            FluxObject::OciRepository(o) => &o.metadata,
            FluxObject::HelmChart(o) => &o.metadata,
            FluxObject::Bucket(o) => &o.metadata,
            FluxObject::Undecodable(u) => return (&u.namespace, &u.name),
        };
        (&meta.namespace, &meta.name)
    }
}

impl Snapshot {
    /// Adds one object (or its record as undecodable).
    pub fn push(&mut self, object: FluxObject) {
        match object {
            FluxObject::Kustomization(o) => self.kustomizations.push(o),
            FluxObject::HelmRelease(o) => self.helm_releases.push(o),
            FluxObject::GitRepository(o) => self.git_repositories.push(o),
            FluxObject::OciRepository(o) => self.oci_repositories.push(o),
            FluxObject::HelmChart(o) => self.helm_charts.push(o),
            FluxObject::Bucket(o) => self.buckets.push(o),
            FluxObject::Undecodable(u) => self.undecodable.push(u),
        }
    }

    /// Every object and undecodable record, taken out of the snapshot.
    pub fn into_objects(self) -> impl Iterator<Item = FluxObject> {
        let Snapshot {
            kustomizations,
            helm_releases,
            git_repositories,
            oci_repositories,
            helm_charts,
            buckets,
            undecodable,
            missing_kinds: _,
        } = self;
        kustomizations
            .into_iter()
            .map(FluxObject::Kustomization)
            .chain(helm_releases.into_iter().map(FluxObject::HelmRelease))
            .chain(git_repositories.into_iter().map(FluxObject::GitRepository))
            .chain(oci_repositories.into_iter().map(FluxObject::OciRepository))
            .chain(helm_charts.into_iter().map(FluxObject::HelmChart))
            .chain(buckets.into_iter().map(FluxObject::Bucket))
            .chain(undecodable.into_iter().map(FluxObject::Undecodable))
    }

    /// Decodes one object of `kind` from any serde source (a JSON value or raw JSON text) and
    /// adds it, or records it as undecodable. `namespace` and `name` name it in that record.
    pub fn insert<'de, D>(&mut self, kind: FluxKind, namespace: &str, name: &str, item: D)
    where
        D: serde::Deserializer<'de>,
    {
        match FluxObject::decode(kind, item) {
            Ok(object) => self.push(object),
            Err(error) => self.undecodable.push(UndecodableObject {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                error: error.to_string(),
            }),
        }
    }

    /// Decodes one object of `kind` from its JSON text and adds it, or records it as
    /// undecodable. The object's name is only looked up when it does not decode, so the common
    /// case parses the text once.
    pub fn insert_json(&mut self, kind: FluxKind, json: &str) {
        self.push(FluxObject::from_json(kind, json));
    }

    /// Makes room for `additional` more objects of `kind`, so that a large list grows its
    /// vector once instead of doubling (and briefly holding two copies) as it goes.
    pub fn reserve(&mut self, kind: FluxKind, additional: usize) {
        match kind {
            FluxKind::Kustomization => self.kustomizations.reserve_exact(additional),
            FluxKind::HelmRelease => self.helm_releases.reserve_exact(additional),
            FluxKind::GitRepository => self.git_repositories.reserve_exact(additional),
            FluxKind::OciRepository => self.oci_repositories.reserve_exact(additional),
            FluxKind::HelmChart => self.helm_charts.reserve_exact(additional),
            FluxKind::Bucket => self.buckets.reserve_exact(additional),
        }
    }

    /// Moves every object and record of `other` into this snapshot (unsorted until
    /// [`Snapshot::sort`]).
    pub fn append(&mut self, mut other: Snapshot) {
        // Taking over a vector when ours is empty avoids copying a large list.
        fn take<T>(into: &mut Vec<T>, from: &mut Vec<T>) {
            if into.is_empty() {
                std::mem::swap(into, from);
            } else {
                into.append(from);
            }
        }
        take(&mut self.kustomizations, &mut other.kustomizations);
        take(&mut self.helm_releases, &mut other.helm_releases);
        take(&mut self.git_repositories, &mut other.git_repositories);
        take(&mut self.oci_repositories, &mut other.oci_repositories);
        take(&mut self.helm_charts, &mut other.helm_charts);
        take(&mut self.buckets, &mut other.buckets);
        take(&mut self.undecodable, &mut other.undecodable);
        take(&mut self.missing_kinds, &mut other.missing_kinds);
    }

    /// Sorts every list by namespace and name (readers call this once at the end).
    pub fn sort(&mut self) {
        fn by_meta<T>(items: &mut [T], meta: impl Fn(&T) -> &ObjectMeta) {
            items.sort_by(|a, b| {
                let (a, b) = (meta(a), meta(b));
                (a.namespace.as_str(), a.name.as_str())
                    .cmp(&(b.namespace.as_str(), b.name.as_str()))
            });
        }
        by_meta(&mut self.kustomizations, |o| &o.metadata);
        by_meta(&mut self.helm_releases, |o| &o.metadata);
        by_meta(&mut self.git_repositories, |o| &o.metadata);
        by_meta(&mut self.oci_repositories, |o| &o.metadata);
        by_meta(&mut self.helm_charts, |o| &o.metadata);
        by_meta(&mut self.buckets, |o| &o.metadata);
        self.undecodable
            .sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
        self.missing_kinds.sort();
        self.missing_kinds.dedup();
    }

    /// Number of decoded objects of every kind.
    pub fn object_count(&self) -> usize {
        self.kustomizations.len()
            + self.helm_releases.len()
            + self.git_repositories.len()
            + self.oci_repositories.len()
            + self.helm_charts.len()
            + self.buckets.len()
    }
}

/// Just enough of an object to name it when the rest does not decode; lenient on purpose.
#[derive(Default, serde::Deserialize)]
struct Identity {
    #[serde(default)]
    metadata: IdentityMeta,
}

#[derive(Default, serde::Deserialize)]
struct IdentityMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

/// An object that does not fit its kind's type: the field path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path == "." { String::new() } else { format!("{path}: ") })]
struct DecodeError {
    path: String,
    message: String,
}

fn decode<'de, T: DeserializeOwned, D: serde::Deserializer<'de>>(
    item: D,
) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde_json appends " at line L column C" which means nothing for a sub-document.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        DecodeError { path, message }
    })
}
