//! Reads `kubectl get ... -o yaml|json` output into a [`Snapshot`]: the input of `--snapshot`,
//! of the tests, and of the fake API server.
//!
//! Accepts a `List`, a single object, or several YAML documents of either. The namespace list
//! and label selector of the configuration are applied as the API server would apply them, so
//! that a dump of a whole cluster gives the same snapshot as a filtered live read.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::Snapshot;
use super::selector::LabelSelector;
use crate::flux::FluxKind;

/// A dump that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {location}not valid YAML or JSON: {message}")]
    Syntax {
        file: String,
        location: String,
        message: String,
    },
    /// YAML aliases make the dump expand far beyond its own size (an alias bomb).
    #[error(
        "{file}: {location}refused: YAML aliases expand it far beyond its own size ({detail}); a dump written by kubectl has no aliases"
    )]
    Expands {
        file: String,
        location: String,
        detail: String,
    },
    #[error("{file}: {problem}")]
    Shape { file: String, problem: String },
}

/// Which objects of a dump belong in the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct DumpFilter<'a> {
    /// Empty: every namespace.
    pub namespaces: &'a [String],
    pub selector: &'a LabelSelector,
}

/// What was left out of the snapshot, for warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpReport {
    /// `apiVersion kind` → count, for objects that are not a Flux kind the exporter reads.
    pub ignored_kinds: BTreeMap<String, usize>,
    /// Objects of Flux kinds the exporter has no use for (HelmRepository, image automation,
    /// notifications): part of any Flux dump, skipped without a warning.
    pub other_flux_objects: usize,
    /// Objects filtered out by namespace or label selector.
    pub filtered_out: usize,
}

/// Reads a dump file.
pub fn read_dump_file(
    path: &Path,
    filter: DumpFilter<'_>,
) -> Result<(Snapshot, DumpReport), DumpError> {
    let file = path.display().to_string();
    let text = crate::files::read_regular_to_string(path).map_err(|source| DumpError::Read {
        file: file.clone(),
        source,
    })?;
    parse_dump(&text, &file, filter)
}

/// Parses dump text; `file` names it in errors.
pub fn parse_dump(
    text: &str,
    file: &str,
    filter: DumpFilter<'_>,
) -> Result<(Snapshot, DumpReport), DumpError> {
    let documents = parse_documents(text, file)?;
    let mut snapshot = Snapshot::default();
    let mut report = DumpReport::default();
    for (doc_index, document) in documents.into_iter().enumerate() {
        let items = match document {
            Value::Null => continue,
            Value::Object(mut object) => {
                if object
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k == "List" || k.ends_with("List"))
                {
                    match object.remove("items") {
                        Some(Value::Array(items)) => items,
                        Some(Value::Null) | None => Vec::new(),
                        Some(_) => {
                            return Err(DumpError::Shape {
                                file: file.to_string(),
                                problem: format!(
                                    "document {}: `items` is not a list",
                                    doc_index + 1
                                ),
                            });
                        }
                    }
                } else {
                    vec![Value::Object(object)]
                }
            }
            Value::Array(items) => items,
            other => {
                return Err(DumpError::Shape {
                    file: file.to_string(),
                    problem: format!(
                        "document {} is a {}, expected a Kubernetes object or List",
                        doc_index + 1,
                        type_name(&other)
                    ),
                });
            }
        };
        for (item_index, item) in items.into_iter().enumerate() {
            add_item(&mut snapshot, &mut report, item, filter).map_err(|problem| {
                DumpError::Shape {
                    file: file.to_string(),
                    problem: format!(
                        "document {}, item {}: {problem}",
                        doc_index + 1,
                        item_index + 1
                    ),
                }
            })?;
        }
    }
    snapshot.sort();
    Ok((snapshot, report))
}

/// Most aliases (and anchors) a dump may use.
const MAX_DUMP_ALIASES: usize = 10_000;
/// Most bytes of anchored content kept for replay.
const MAX_DUMP_ANCHOR_BYTES: usize = 16 * 1024 * 1024;
/// Most events replayed from aliases in one dump.
const MAX_DUMP_REPLAYED_EVENTS: usize = 100_000;
/// Most times one anchor may be expanded.
const MAX_DUMP_EXPANSIONS_PER_ANCHOR: usize = 64;

fn parse_documents(text: &str, file: &str) -> Result<Vec<Value>, DumpError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        // `kubectl -o json`: parse as JSON so numbers and strings mean exactly what they say.
        return serde_json::from_str::<Value>(trimmed)
            .map(|v| vec![v])
            .map_err(|e| DumpError::Syntax {
                file: file.to_string(),
                location: format!("{}:{}: ", e.line(), e.column()),
                message: strip_position(&e.to_string()),
            });
    }
    // kubectl never writes anchors; a dump with many aliases, or one alias expanded many
    // times, is an alias bomb (a 1 MB file can expand to gigabytes). The other limits grow
    // with the file, so that any real dump, however large, fits.
    let size = text.len();
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: None,
            max_events: size.saturating_add(100_000),
            max_nodes: size.saturating_add(100_000),
            max_total_scalar_bytes: size.saturating_add(1024),
            max_documents: size / 4 + 1024,
            max_aliases: MAX_DUMP_ALIASES,
            max_anchors: MAX_DUMP_ALIASES,
            max_recorded_anchor_bytes: size.min(MAX_DUMP_ANCHOR_BYTES),
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_DUMP_REPLAYED_EVENTS,
            max_alias_expansions_per_anchor: MAX_DUMP_EXPANSIONS_PER_ANCHOR,
        },
    };
    // Aliases can still repeat one large value; what the documents expand to is bounded too.
    let budget = size.saturating_mul(4).saturating_add(1 << 20);
    super::bounded_value::with_budget(budget, || {
        serde_saphyr::from_multiple_with_options::<super::bounded_value::BoundedValue>(
            text, options,
        )
    })
    .map(|documents| documents.into_iter().map(|d| d.0).collect())
    .map_err(|e| {
        let location = e
            .location()
            .map(|l| format!("{}:{}: ", l.line(), l.column()))
            .unwrap_or_default();
        let message = strip_position(e.without_snippet().to_string().lines().next().unwrap_or(""));
        let expands = message.starts_with("budget breached")
            || message.to_ascii_lowercase().contains("alias")
            || message.starts_with(super::bounded_value::TOO_LARGE);
        if expands {
            let detail = message
                .split(" (defined at")
                .next()
                .unwrap_or(&message)
                .to_string();
            DumpError::Expands {
                file: file.to_string(),
                location,
                detail,
            }
        } else {
            DumpError::Syntax {
                file: file.to_string(),
                location,
                message,
            }
        }
    })
}

fn strip_position(message: &str) -> String {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => message,
    };
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// The Flux kind an object is, when it is one the exporter reads at the version it reads.
fn flux_kind(api_version: &str, kind: &str) -> Option<FluxKind> {
    FluxKind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind && k.api_version() == api_version)
}

/// A kind of a Flux API group that the exporter never reads, at any version. A kind it reads
/// at another version (`kustomize.toolkit.fluxcd.io/v1beta2 Kustomization`) is not one: that
/// object is missed, which deserves the warning.
fn is_other_flux_kind(api_version: &str, kind: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or("");
    group.ends_with(".toolkit.fluxcd.io") && !FluxKind::ALL.iter().any(|k| k.as_str() == kind)
}

/// A dump item that is not a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ItemError {
    #[error("is a {0}, expected a Kubernetes object")]
    NotAnObject(&'static str),
    #[error("has no apiVersion and kind: not a Kubernetes object (is this a kubectl dump?)")]
    NoKind,
}

fn add_item(
    snapshot: &mut Snapshot,
    report: &mut DumpReport,
    item: Value,
    filter: DumpFilter<'_>,
) -> Result<(), ItemError> {
    let Value::Object(object) = &item else {
        return Err(ItemError::NotAnObject(type_name(&item)));
    };
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind_name = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind_name.is_empty() {
        return Err(ItemError::NoKind);
    }
    let Some(kind) = flux_kind(api_version, kind_name) else {
        if is_other_flux_kind(api_version, kind_name) {
            report.other_flux_objects += 1;
            return Ok(());
        }
        *report
            .ignored_kinds
            .entry(format!("{api_version} {kind_name}").trim().to_string())
            .or_default() += 1;
        return Ok(());
    };
    let metadata = object.get("metadata");
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !filter.namespaces.is_empty() && !filter.namespaces.contains(&namespace) {
        report.filtered_out += 1;
        return Ok(());
    }
    if !filter.selector.is_empty() {
        let labels: BTreeMap<String, String> = metadata
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        if !filter.selector.matches(&labels) {
            report.filtered_out += 1;
            return Ok(());
        }
    }
    snapshot.insert(kind, &namespace, &name, item);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> LabelSelector {
        LabelSelector::default()
    }

    fn parse(text: &str) -> Result<(Snapshot, DumpReport), DumpError> {
        parse_dump(
            text,
            "dump.yaml",
            DumpFilter {
                namespaces: &[],
                selector: &all(),
            },
        )
    }

    const KS: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: kustomize.toolkit.fluxcd.io/v1
  kind: Kustomization
  metadata: {name: apps, namespace: flux-system, generation: 2, labels: {team: a}}
  spec: {sourceRef: {kind: GitRepository, name: flux-system}, interval: 10m, path: ./apps, prune: true}
  status:
    observedGeneration: 2
    lastAppliedRevision: main@sha1:5394cb7f48332b2de7c17dd8b8384bbc84b7e738
    conditions:
    - {type: Ready, status: "True", reason: ReconciliationSucceeded, message: "Applied revision: main@sha1:5394cb7f48332b2de7c17dd8b8384bbc84b7e738", lastTransitionTime: "2026-11-22T10:00:00Z"}
- apiVersion: kustomize.toolkit.fluxcd.io/v1
  kind: Kustomization
  metadata: {name: broken, namespace: team-b}
  spec: {sourceRef: {name: no-kind}}
- apiVersion: kustomize.toolkit.fluxcd.io/v1
  kind: Kustomization
  metadata: {name: fresh, namespace: team-b}
  spec: {sourceRef: {kind: GitRepository, name: x}}
- apiVersion: kustomize.toolkit.fluxcd.io/v1beta2
  kind: Kustomization
  metadata: {name: old, namespace: team-b}
  spec: {sourceRef: {kind: GitRepository, name: x}}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm, namespace: team-b}
"#;

    #[test]
    fn flux_kinds_the_exporter_never_reads_are_skipped_without_counting_as_ignored() {
        let dump = r#"
apiVersion: v1
kind: List
items:
- apiVersion: source.toolkit.fluxcd.io/v1
  kind: HelmRepository
  metadata: {name: podinfo, namespace: flux-system}
- apiVersion: image.toolkit.fluxcd.io/v1beta2
  kind: ImagePolicy
  metadata: {name: app, namespace: flux-system}
- apiVersion: notification.toolkit.fluxcd.io/v1beta3
  kind: Alert
  metadata: {name: slack, namespace: flux-system}
- apiVersion: source.toolkit.fluxcd.io/v1beta2
  kind: GitRepository
  metadata: {name: old, namespace: flux-system}
"#;
        let (snapshot, report) = parse(dump).unwrap();
        assert_eq!(snapshot.object_count(), 0);
        assert_eq!(report.other_flux_objects, 3);
        assert_eq!(
            report.ignored_kinds,
            BTreeMap::from([(
                "source.toolkit.fluxcd.io/v1beta2 GitRepository".to_string(),
                1
            )])
        );
    }

    #[test]
    fn a_list_dump_decodes_flux_objects_and_reports_what_it_skipped() {
        let (snapshot, report) = parse(KS).unwrap();
        let names: Vec<&str> = snapshot
            .kustomizations
            .iter()
            .map(|k| k.metadata.name.as_str())
            .collect();
        assert_eq!(names, ["apps", "fresh"]);
        assert_eq!(
            snapshot.kustomizations[0].status.observed_generation,
            Some(2)
        );
        assert_eq!(
            snapshot.kustomizations[1].status,
            Default::default(),
            "an object without status decodes with an empty status"
        );
        assert_eq!(snapshot.undecodable.len(), 1);
        assert_eq!(
            snapshot.undecodable[0].to_string(),
            "Kustomization team-b/broken: spec.sourceRef: missing field `kind`"
        );
        assert_eq!(
            report.ignored_kinds,
            BTreeMap::from([
                (
                    "kustomize.toolkit.fluxcd.io/v1beta2 Kustomization".to_string(),
                    1
                ),
                ("v1 ConfigMap".to_string(), 1)
            ])
        );
    }

    #[test]
    fn namespaces_and_label_selectors_filter_like_the_api_server() {
        let selector = LabelSelector::parse("team=a").unwrap();
        let (snapshot, report) = parse_dump(
            KS,
            "dump.yaml",
            DumpFilter {
                namespaces: &[],
                selector: &selector,
            },
        )
        .unwrap();
        assert_eq!(snapshot.kustomizations.len(), 1);
        assert_eq!(snapshot.undecodable.len(), 0);
        assert_eq!(report.filtered_out, 2);
        let namespaces = vec!["team-b".to_string()];
        let (snapshot, _) = parse_dump(
            KS,
            "dump.yaml",
            DumpFilter {
                namespaces: &namespaces,
                selector: &all(),
            },
        )
        .unwrap();
        assert_eq!(snapshot.kustomizations.len(), 1);
        assert_eq!(snapshot.kustomizations[0].metadata.name, "fresh");
    }

    #[test]
    fn json_and_multi_document_yaml_dumps_are_read() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"GitRepository","metadata":{"name":"a","namespace":"x"},"spec":{"url":"https://github.com/acme/a","interval":"1m"},"status":null}]}"#;
        let (snapshot, _) = parse(json).unwrap();
        assert_eq!(snapshot.git_repositories.len(), 1);
        let multi = "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: b, namespace: x}\nspec: {url: 'https://github.com/acme/b', interval: 1m}\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: a, namespace: x}\nspec: {url: 'https://github.com/acme/a', interval: 1m}\n";
        let (snapshot, _) = parse(multi).unwrap();
        let names: Vec<&str> = snapshot
            .git_repositories
            .iter()
            .map(|g| g.metadata.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"], "sorted by namespace and name");
    }

    #[test]
    fn malformed_dumps_are_refused_with_the_file_and_position() {
        let err = parse("items: [\n  - a: b\n").unwrap_err().to_string();
        assert!(err.starts_with("dump.yaml: "), "{err}");
        assert!(err.contains("not valid YAML or JSON"), "{err}");
        let err = parse("{\"kind\": \"List\", \"items\": [}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "dump.yaml: 1:28: not valid YAML or JSON: expected value"
        );
        assert_eq!(
            parse("just text").unwrap_err().to_string(),
            "dump.yaml: document 1 is a string, expected a Kubernetes object or List"
        );
        assert_eq!(
            parse("kind: List\nitems: [1]\n").unwrap_err().to_string(),
            "dump.yaml: document 1, item 1: is a number, expected a Kubernetes object"
        );
        assert_eq!(
            parse("kind: List\nitems: 3\n").unwrap_err().to_string(),
            "dump.yaml: document 1: `items` is not a list"
        );
        assert_eq!(
            parse("cluster: demo\nforges: []\n")
                .unwrap_err()
                .to_string(),
            "dump.yaml: document 1, item 1: has no apiVersion and kind: not a Kubernetes object (is this a kubectl dump?)"
        );
    }

    #[test]
    fn an_empty_dump_is_an_empty_snapshot() {
        let (snapshot, _) = parse("").unwrap();
        assert_eq!(snapshot, Snapshot::default());
        let (snapshot, _) = parse("apiVersion: v1\nkind: List\nitems: []\n").unwrap();
        assert_eq!(snapshot.object_count(), 0);
    }

    #[test]
    fn non_ascii_names_and_huge_messages_do_not_break_decoding() {
        let long = "x".repeat(100_000);
        let text = format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: 'приложение', namespace: ns}}\nspec: {{sourceRef: {{kind: GitRepository, name: r}}}}\nstatus:\n  conditions:\n  - {{type: Ready, status: 'False', reason: BuildFailed, message: '{long}'}}\n"
        );
        let (snapshot, _) = parse(&text).unwrap();
        assert_eq!(snapshot.kustomizations[0].metadata.name, "приложение");
        assert_eq!(
            snapshot.kustomizations[0]
                .status
                .conditions
                .get("Ready")
                .unwrap()
                .message
                .len(),
            1024
        );
    }
}
