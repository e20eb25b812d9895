//! A list page decoded as it is read: each item straight into the snapshot, the list's
//! metadata kept for paging.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::cluster::Snapshot;
use crate::flux::FluxKind;

/// The list metadata the reader uses.
#[derive(Debug, Default)]
pub(super) struct PageMeta {
    pub(super) continue_token: Option<String>,
    /// Objects after this page, when the server knows (no label selector).
    pub(super) remaining_item_count: Option<usize>,
    /// The list's resourceVersion: where a watch of it starts.
    pub(super) resource_version: Option<String>,
}

/// A page that is not a Kubernetes list; items that are objects but do not fit their type are
/// recorded in the snapshot instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct PageError(serde_json::Error);

/// Compares by message, the form the error takes in [`super::ReadFailure::InvalidResponse`].
impl PartialEq<&str> for PageError {
    fn eq(&self, other: &&str) -> bool {
        self.0.to_string() == *other
    }
}

/// Decodes one list page, inserting each item into `snapshot` as it is read.
pub(super) fn decode_page(
    body: &[u8],
    kind: FluxKind,
    snapshot: &mut Snapshot,
) -> Result<PageMeta, PageError> {
    decode_with(
        serde_json::Deserializer::from_slice(body),
        kind,
        snapshot,
        false,
    )
}

/// Decodes a list read from `reader` as it arrives, so that only one item's text is held at a
/// time however long the list (an unchunked list of a large cluster is tens of MB).
pub(super) fn decode_page_from_reader(
    reader: impl std::io::Read,
    kind: FluxKind,
    snapshot: &mut Snapshot,
) -> Result<PageMeta, PageError> {
    decode_with(
        serde_json::Deserializer::from_reader(reader),
        kind,
        snapshot,
        true,
    )
}

/// Decodes the whole input of `de` as one list; `owned` copies each item out of the input.
fn decode_with<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    kind: FluxKind,
    snapshot: &mut Snapshot,
    owned: bool,
) -> Result<PageMeta, PageError> {
    let meta = PageSeed {
        kind,
        snapshot,
        owned,
    }
    .deserialize(&mut de)
    .map_err(PageError)?;
    de.end().map_err(PageError)?;
    Ok(meta)
}

struct PageSeed<'a> {
    kind: FluxKind,
    snapshot: &'a mut Snapshot,
    /// Items are copied out of the input (a reader cannot lend them).
    owned: bool,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum PageField {
    Metadata,
    Items,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
    #[serde(rename = "remainingItemCount", default)]
    remaining_item_count: Option<usize>,
    #[serde(rename = "resourceVersion", default)]
    resource_version: Option<String>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = PageMeta;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<PageMeta, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = PageMeta;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with `items` and `metadata`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PageMeta, A::Error> {
        let PageSeed {
            kind,
            snapshot,
            owned,
        } = self;
        let mut meta = PageMeta::default();
        let mut saw_items = false;
        while let Some(field) = map.next_key::<PageField>()? {
            match field {
                PageField::Metadata => {
                    if let Some(list_meta) = map.next_value::<Option<ListMeta>>()? {
                        meta.continue_token = list_meta.continue_token;
                        meta.remaining_item_count = list_meta.remaining_item_count;
                        meta.resource_version = list_meta.resource_version;
                    }
                }
                PageField::Items => {
                    map.next_value_seed(ItemsSeed {
                        kind,
                        snapshot: &mut *snapshot,
                        owned,
                    })?;
                    saw_items = true;
                }
                PageField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_items {
            return Err(de::Error::missing_field("items"));
        }
        Ok(meta)
    }
}

struct ItemsSeed<'a> {
    kind: FluxKind,
    snapshot: &'a mut Snapshot,
    owned: bool,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of objects")
    }

    /// The API server sends `"items": null` for an empty list of some kinds.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Each item is first delimited as raw text so that one malformed object is recorded as
        // undecodable instead of aborting the whole page.
        if self.owned {
            while let Some(item) = seq.next_element::<Box<RawValue>>()? {
                self.snapshot.insert_json(self.kind, item.get());
            }
        } else {
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                self.snapshot.insert_json(self.kind, item.get());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_decoded_item_by_item_and_its_continue_token_kept() {
        let body = br#"{"apiVersion":"kustomize.toolkit.fluxcd.io/v1","items":[
            {"metadata":{"name":"a","namespace":"x"},"spec":{"sourceRef":{"kind":"GitRepository","name":"r"}}},
            {"metadata":{"name":"b","namespace":"y"},"spec":{"sourceRef":{"name":"no-kind"}}},
            {"metadata":{"name":"c","namespace":"x"},"spec":{"sourceRef":{"kind":"GitRepository","name":"r"}},"status":null}
        ],"kind":"KustomizationList","metadata":{"continue":"tok","remainingItemCount":3,"resourceVersion":"9"}}"#;
        let mut snapshot = Snapshot::default();
        let meta = decode_page(body, FluxKind::Kustomization, &mut snapshot).unwrap();
        assert_eq!(meta.continue_token.as_deref(), Some("tok"));
        assert_eq!(meta.remaining_item_count, Some(3));
        assert_eq!(meta.resource_version.as_deref(), Some("9"));
        let names: Vec<&str> = snapshot
            .kustomizations
            .iter()
            .map(|k| k.metadata.name.as_str())
            .collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(
            snapshot.undecodable[0].to_string(),
            "Kustomization y/b: spec.sourceRef: missing field `kind`"
        );
    }

    #[test]
    fn a_list_read_from_a_reader_decodes_as_the_same_bytes_do() {
        let body = br#"{"apiVersion":"kustomize.toolkit.fluxcd.io/v1","items":[
            {"metadata":{"name":"a","namespace":"x"},"spec":{"sourceRef":{"kind":"GitRepository","name":"r"}}},
            {"metadata":{"name":"b","namespace":"y"},"spec":{"sourceRef":{"name":"no-kind"}}}
        ],"kind":"KustomizationList","metadata":{"resourceVersion":"9"}}"#;
        let mut from_bytes = Snapshot::default();
        let mut from_reader = Snapshot::default();
        decode_page(body, FluxKind::Kustomization, &mut from_bytes).unwrap();
        // One byte at a time: items span reads.
        let reader = std::io::Read::take(&body[..], u64::MAX);
        let trickle = std::io::BufReader::with_capacity(1, reader);
        let meta =
            decode_page_from_reader(trickle, FluxKind::Kustomization, &mut from_reader).unwrap();
        assert_eq!(from_reader, from_bytes);
        assert_eq!(meta.resource_version.as_deref(), Some("9"));
    }

    #[test]
    fn a_page_without_items_or_with_null_items_is_handled() {
        let mut snapshot = Snapshot::default();
        let meta = decode_page(
            br#"{"items":null,"metadata":{}}"#,
            FluxKind::Bucket,
            &mut snapshot,
        )
        .unwrap();
        assert_eq!(meta.continue_token, None);
        assert_eq!(
            decode_page(br#"{"metadata":{}}"#, FluxKind::Bucket, &mut snapshot).unwrap_err(),
            "missing field `items` at line 1 column 15"
        );
        assert_eq!(
            decode_page(br#"[]"#, FluxKind::Bucket, &mut snapshot).unwrap_err(),
            "invalid type: sequence, expected a JSON object with `items` and `metadata` at line 1 column 0"
        );
        assert_eq!(
            decode_page(br#"{"items":[]} x"#, FluxKind::Bucket, &mut snapshot).unwrap_err(),
            "trailing characters at line 1 column 14"
        );
    }

    #[test]
    fn an_item_that_is_not_an_object_is_recorded_without_a_name() {
        let mut snapshot = Snapshot::default();
        decode_page(br#"{"items":[42]}"#, FluxKind::GitRepository, &mut snapshot).unwrap();
        assert_eq!(
            snapshot.undecodable[0].to_string(),
            "GitRepository /: invalid type: integer `42`, expected struct GitRepository"
        );
    }
}
