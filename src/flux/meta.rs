use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::SourceKind;

/// The parts of `metadata` the exporter reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    /// Empty only for cluster-scoped objects, which no Flux kind is.
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: OwnerLabels,
}

/// Decodes an explicit `null` as the type's default, as the API server treats it.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Decodes only the first element of a list (an absent list or `null` gives none); the others
/// are skipped without being built, for lists of which only the newest entry is read.
pub(crate) fn first_only<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct FirstOnly<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstOnly<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let first = seq.next_element::<T>()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first.into_iter().collect())
        }
    }
    deserializer.deserialize_any(FirstOnly(PhantomData))
}

/// The labels kustomize-controller puts on every object it applies; all other labels are
/// dropped while decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OwnerLabels {
    #[serde(rename = "kustomize.toolkit.fluxcd.io/name", default)]
    pub kustomization_name: Option<String>,
    #[serde(rename = "kustomize.toolkit.fluxcd.io/namespace", default)]
    pub kustomization_namespace: Option<String>,
}

/// A `sourceRef` / `chartRef`: a reference to a source, optionally in another namespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SourceReference {
    pub kind: SourceKind,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

impl SourceReference {
    /// The namespace the referenced source lives in, given the referring object's namespace.
    pub fn namespace_or<'a>(&'a self, referrer_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => referrer_namespace,
        }
    }
}
