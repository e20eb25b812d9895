//! The example dumps and test fixtures must hold only Flux objects that the API server would
//! accept, checked against the CRDs vendored in `tests/crds/` (see `support::crd_schema` for how
//! strict that is). Otherwise the exporter's tests would be exercised on objects no cluster can
//! produce.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};
use support::crd_schema::{
    CrdSet, StrictSchema, Violation, is_dns1123_label, is_dns1123_subdomain,
};

/// Folders walked for fixtures, relative to the crate root: the examples, the test fixtures
/// and the Flux objects that deploy the exporter.
const FIXTURE_DIRS: [&str; 3] = ["examples", "tests/fixtures", "deploy/flux"];
/// Never read as fixtures, should a fixture folder ever contain them.
const SKIPPED_DIRS: [&str; 1] = ["tests/crds"];

fn crds() -> &'static CrdSet {
    static CRDS: OnceLock<CrdSet> = OnceLock::new();
    CRDS.get_or_init(CrdSet::vendored)
}

// ---------------------------------------------------------------------------------------------
// Walking the fixtures

/// What a walk over the fixture folders found.
struct Walk {
    /// Every file read, relative to the root with '/' separators, and how many objects in it
    /// were checked (Flux objects, and objects that cannot be told apart).
    files: Vec<(String, usize)>,
    /// One line per problem: file, place in the file, object, pointer and message.
    failures: Vec<String>,
}

fn walk_fixtures(crds: &CrdSet, root: &Path) -> Walk {
    let mut paths = Vec::new();
    for dir in FIXTURE_DIRS {
        collect_fixture_files(root, &root.join(dir), &mut paths);
    }
    paths.sort();

    let mut walk = Walk {
        files: Vec::new(),
        failures: Vec::new(),
    };
    for path in paths {
        let shown = relative(root, &path);
        match read_documents(&path) {
            Ok(documents) => {
                let checked = check_documents(crds, &shown, &documents, &mut walk.failures);
                walk.files.push((shown, checked));
            }
            Err(error) => {
                walk.failures
                    .push(format!("{shown}: cannot be read: {error}"));
                walk.files.push((shown, 0));
            }
        }
    }
    walk
}

fn collect_fixture_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() || SKIPPED_DIRS.contains(&relative(root, dir).as_str()) {
        return;
    }
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_fixture_files(root, &path, out);
        } else if matches!(extension(&path), "yaml" | "yml" | "json") {
            out.push(path);
        }
    }
}

fn extension(path: &Path) -> &str {
    path.extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or_default()
}

fn relative(root: &Path, path: &Path) -> String {
    let inside = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<_> = inside
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

/// A file as its documents: one for JSON, one or more for YAML (`---` separated).
fn read_documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = fs::read_to_string(path).map_err(|error| error.to_string())?;
    let documents = if extension(path) == "json" {
        vec![serde_json::from_str(&text).map_err(|error| format!("not JSON: {error}"))?]
    } else {
        serde_saphyr::from_multiple(&text).map_err(|error| format!("not YAML: {error}"))?
    };
    if documents.is_empty() {
        return Err("holds no document".to_owned());
    }
    Ok(documents)
}

/// Checks each document: a kubectl List (`kind: List` or a typed `...List`) item by item, or a
/// single object. Returns how many objects were checked.
fn check_documents(
    crds: &CrdSet,
    file: &str,
    documents: &[Value],
    failures: &mut Vec<String>,
) -> usize {
    let mut checked = 0;
    for (index, document) in documents.iter().enumerate() {
        let document_label = format!("document {}", index + 1);
        let item_label = |item: usize| {
            if documents.len() > 1 {
                format!("{document_label}, items[{item}]")
            } else {
                format!("items[{item}]")
            }
        };
        let is_list = document
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.ends_with("List"));
        if !is_list {
            checked += check_object(crds, file, &document_label, document, failures);
            continue;
        }
        let Some(items) = document.get("items").and_then(Value::as_array) else {
            failures.push(format!(
                "{file}: {document_label}: a List without an items array"
            ));
            continue;
        };
        for (item, object) in items.iter().enumerate() {
            checked += check_object(crds, file, &item_label(item), object, failures);
        }
    }
    checked
}

fn check_object(
    crds: &CrdSet,
    file: &str,
    place: &str,
    object: &Value,
    failures: &mut Vec<String>,
) -> usize {
    let Some(violations) = crds.check(object) else {
        return 0;
    };
    let who = describe(object);
    failures.extend(
        violations
            .iter()
            .map(|violation| format!("{file}: {place} ({who}): {violation}")),
    );
    1
}

/// `Kind namespace/name`, with `?` for whatever is missing.
fn describe(object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("?")
    };
    match object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        Some(namespace) => format!("{} {namespace}/{}", text("/kind"), text("/metadata/name")),
        None => format!("{} {}", text("/kind"), text("/metadata/name")),
    }
}

#[test]
fn every_fixture_object_validates_against_its_flux_crd() {
    let walk = walk_fixtures(crds(), Path::new(env!("CARGO_MANIFEST_DIR")));

    // A walk that quietly finds nothing would pass; these two must have been checked.
    for expected in [
        "examples/cluster-snapshot.yaml",
        "tests/fixtures/snapshot-minimal.json",
        "deploy/flux/flux-status-exporter.yaml",
    ] {
        let checked = walk
            .files
            .iter()
            .find(|(file, _)| file == expected)
            .map(|(_, n)| *n);
        assert!(
            checked.is_some_and(|n| n > 0),
            "{expected} was not checked or holds no Flux object; files: {:?}",
            walk.files
        );
    }
    assert!(
        walk.failures.is_empty(),
        "{} problem(s) in the fixtures:\n{}",
        walk.failures.len(),
        walk.failures.join("\n")
    );
}

#[test]
fn the_report_names_file_place_object_and_pointer_of_every_failure() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    fs::create_dir_all(root.join("examples")).unwrap();
    fs::create_dir_all(root.join("tests/fixtures/nested")).unwrap();

    let mut typo = kustomization();
    let source_ref = typo["spec"]
        .as_object_mut()
        .unwrap()
        .remove("sourceRef")
        .unwrap();
    typo["spec"]["sourceref"] = source_ref;
    let mut late = kustomization();
    late["metadata"]["name"] = json!("late");
    late["status"]["conditions"][0]["lastTransitionTime"] = json!("2026-08-14 09:25:14");
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let list = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [kustomization(), typo, config_map, late],
    });
    fs::write(
        root.join("examples/dump.json"),
        serde_json::to_string_pretty(&list).unwrap(),
    )
    .unwrap();
    fs::write(
        root.join("tests/fixtures/nested/two.yml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n---\n\
         apiVersion: kustomize.toolkit.fluxcd.io/v1beta2\nkind: Kustomization\n\
         metadata:\n  name: old\n  namespace: team-a\nspec: {}\n",
    )
    .unwrap();
    fs::write(
        root.join("tests/fixtures/broken.yaml"),
        "items: [unclosed\n",
    )
    .unwrap();
    fs::write(root.join("tests/fixtures/notes.txt"), "not a fixture").unwrap();

    let walk = walk_fixtures(crds(), root);

    let files: Vec<_> = walk
        .files
        .iter()
        .map(|(file, n)| format!("{file}: {n}"))
        .collect();
    assert_eq!(
        files,
        [
            "examples/dump.json: 3",
            "tests/fixtures/broken.yaml: 0",
            "tests/fixtures/nested/two.yml: 1"
        ]
    );
    let expected = [
        "examples/dump.json: items[1] (Kustomization team-a/podinfo): /spec/sourceRef: \
         required field is missing",
        "examples/dump.json: items[1] (Kustomization team-a/podinfo): /spec/sourceref: \
         unknown field",
        "examples/dump.json: items[3] (Kustomization team-a/late): \
         /status/conditions/0/lastTransitionTime: \"2026-08-14 09:25:14\" is not a \"date-time\"",
        "tests/fixtures/nested/two.yml: document 2 (Kustomization team-a/old): /apiVersion: \
         kustomize.toolkit.fluxcd.io/v1beta2 is not served by the vendored Kustomization CRD \
         (it serves v1)",
    ];
    let mut failures = walk.failures.clone();
    let broken = failures
        .iter()
        .position(|line| line.starts_with("tests/fixtures/broken.yaml: "));
    assert!(
        broken.is_some(),
        "the unparsable file is not reported: {failures:#?}"
    );
    failures.remove(broken.unwrap());
    failures.sort();
    assert_eq!(failures, expected);
}

// ---------------------------------------------------------------------------------------------
// The validator can fail

/// A valid Kustomization; the negative tests break one thing in it.
fn kustomization() -> Value {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "podinfo", "namespace": "team-a", "generation": 2},
        "spec": {
            "interval": "10m",
            "path": "./deploy",
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "podinfo"}
        },
        "status": {
            "conditions": [{
                "lastTransitionTime": "2026-08-14T09:25:14Z",
                "message": "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567",
                "observedGeneration": 2,
                "reason": "ReconciliationSucceeded",
                "status": "True",
                "type": "Ready"
            }],
            "lastAppliedRevision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
            "lastAttemptedRevision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
            "observedGeneration": 2
        }
    })
}

/// A valid HelmRelease; the negative tests break one thing in it.
fn helm_release() -> Value {
    json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "redis", "namespace": "team-a"},
        "spec": {
            "chart": {"spec": {
                "chart": "redis",
                "sourceRef": {"kind": "HelmRepository", "name": "bitnami"},
                "version": "19.x"
            }},
            "interval": "30m",
            "values": {"architecture": "standalone", "auth": {"enabled": false}}
        },
        "status": {
            "conditions": [{
                "lastTransitionTime": "2026-07-08T12:31:51Z",
                "message": "Helm install succeeded for release team-a/redis.v1 with chart redis@19.6.4",
                "observedGeneration": 1,
                "reason": "InstallSucceeded",
                "status": "True",
                "type": "Ready"
            }],
            "lastAttemptedRevision": "19.6.4",
            "observedGeneration": 1
        }
    })
}

fn violations(object: &Value) -> Vec<Violation> {
    crds().check(object).expect("a Flux object is checked")
}

#[track_caller]
fn assert_rejected_at(object: &Value, pointer: &str, needle: &str) {
    let found = violations(object);
    assert!(
        found
            .iter()
            .any(|v| v.pointer == pointer && v.message.contains(needle)),
        "expected a violation at {pointer} mentioning {needle:?}, got {found:#?}"
    );
}

#[test]
fn the_objects_the_negative_tests_start_from_are_valid() {
    assert_eq!(violations(&kustomization()), []);
    assert_eq!(violations(&helm_release()), []);
}

#[test]
fn a_misspelled_spec_field_is_rejected_as_unknown() {
    let mut object = kustomization();
    let source_ref = object["spec"]
        .as_object_mut()
        .unwrap()
        .remove("sourceRef")
        .unwrap();
    object["spec"]["sourceref"] = source_ref;

    assert_rejected_at(&object, "/spec/sourceref", "unknown field");
    assert_rejected_at(&object, "/spec/sourceRef", "required field is missing");
}

#[test]
fn a_source_kind_outside_the_enum_is_rejected() {
    let mut object = kustomization();
    object["spec"]["sourceRef"]["kind"] = json!("GitRepo");

    assert_rejected_at(&object, "/spec/sourceRef/kind", "\"GitRepo\"");
}

#[test]
fn a_condition_time_that_is_not_rfc3339_is_rejected() {
    let mut object = kustomization();
    object["status"]["conditions"][0]["lastTransitionTime"] = json!("14 Aug 2026 09:25 UTC");

    assert_rejected_at(
        &object,
        "/status/conditions/0/lastTransitionTime",
        "date-time",
    );
}

#[test]
fn an_unknown_helmrelease_status_field_is_rejected() {
    // Kustomizations have status.lastAppliedRevision; HelmRelease v2 does not.
    let mut object = helm_release();
    object["status"]["lastAppliedRevision"] = json!("19.6.4");

    assert_rejected_at(&object, "/status/lastAppliedRevision", "unknown field");
}

#[test]
fn date_time_fields_accept_rfc3339_and_nothing_else() {
    let at_time = |time: &str| {
        let mut object = kustomization();
        object["status"]["conditions"][0]["lastTransitionTime"] = json!(time);
        object
    };
    for good in [
        "2026-08-14T09:25:14Z",
        "2026-08-14T09:25:14.123456Z",
        "2026-08-14T11:25:14+02:00",
    ] {
        assert_eq!(violations(&at_time(good)), [], "{good} is RFC 3339");
    }
    for bad in [
        "2026-08-14 09:25:14Z",
        "2026-08-14T09:25:14",
        "2026-08-14",
        "2026-02-30T09:25:14Z",
        "2026-08-14T25:25:14Z",
        "1755163514",
        "",
    ] {
        let found = violations(&at_time(bad));
        assert!(
            found
                .iter()
                .any(|v| v.pointer == "/status/conditions/0/lastTransitionTime"),
            "{bad:?} is not RFC 3339 but passed: {found:#?}"
        );
    }
}

#[test]
fn a_flux_version_the_crd_does_not_serve_is_rejected() {
    let mut object = kustomization();
    object["apiVersion"] = json!("kustomize.toolkit.fluxcd.io/v1beta2");

    assert_rejected_at(&object, "/apiVersion", "not served");
}

#[test]
fn a_flux_kind_without_a_vendored_crd_is_rejected() {
    let alert = json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Alert",
        "metadata": {"name": "slack", "namespace": "flux-system"},
        "spec": {"providerRef": {"name": "slack"}}
    });

    assert_rejected_at(&alert, "/kind", "no vendored CRD");
}

#[test]
fn objects_outside_the_flux_groups_are_not_checked() {
    let config_map =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid"}});
    let lookalike = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["deployment.yaml"]
    });

    assert_eq!(crds().check(&config_map), None);
    assert_eq!(crds().check(&lookalike), None);
}

#[test]
fn an_object_without_apiversion_or_kind_is_reported() {
    let object = json!({"metadata": {"name": "podinfo"}});

    assert_eq!(
        crds().check(&object),
        Some(vec![Violation::new(
            "",
            "apiVersion and kind must both be strings"
        )])
    );
}

#[test]
fn names_must_be_dns_1123_subdomains_and_namespaces_dns_1123_labels() {
    let with = |pointer: &str, value: Option<&str>| {
        let mut object = kustomization();
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        let parent = object.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        match value {
            Some(value) => parent.insert(field.to_owned(), json!(value)),
            None => parent.remove(field),
        };
        object
    };

    assert_rejected_at(
        &with("/metadata/name", Some("Podinfo_Config")),
        "/metadata/name",
        "DNS-1123",
    );
    assert_rejected_at(&with("/metadata/name", None), "/metadata/name", "missing");
    assert_rejected_at(
        &with("/metadata/namespace", None),
        "/metadata/namespace",
        "missing",
    );
    assert_rejected_at(
        &with("/metadata/namespace", Some("team.a")),
        "/metadata/namespace",
        "DNS-1123",
    );
    assert_eq!(
        violations(&with("/metadata/name", Some("podinfo.canary-2"))),
        []
    );

    assert!(is_dns1123_label("team-a"));
    assert!(is_dns1123_label(&"a".repeat(63)));
    assert!(!is_dns1123_label(&"a".repeat(64)));
    assert!(!is_dns1123_label("-team"));
    assert!(!is_dns1123_label("team-"));
    assert!(!is_dns1123_label(""));
    assert!(is_dns1123_subdomain("apps.v2"));
    let long_subdomain = vec!["a".repeat(63); 4].join(".");
    assert!(is_dns1123_subdomain(&long_subdomain[..253]));
    assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    assert!(!is_dns1123_subdomain("apps..v2"));
    assert!(!is_dns1123_subdomain("apps."));
    assert!(!is_dns1123_subdomain("Apps"));
}

#[test]
fn metadata_is_checked_as_objectmeta() {
    let mut object = kustomization();
    object["metadata"]["label"] = json!({"app": "podinfo"});
    object["metadata"]["labels"] = json!({"replicas": 2});

    assert_rejected_at(&object, "/metadata/label", "unknown field");
    assert_rejected_at(&object, "/metadata/labels/replicas", "string");
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI-to-JSON-Schema rewrite, on a schema that uses what the Flux CRDs do not

fn synthetic_schema() -> StrictSchema {
    StrictSchema::from_openapi(&json!({
        "type": "object",
        "properties": {
            "note": {"type": "string", "nullable": true},
            "name": {"type": "string"},
            "mode": {"type": "string", "enum": ["fast", "safe"], "nullable": true},
            "port": {
                "x-kubernetes-int-or-string": true,
                "anyOf": [{"type": "integer"}, {"type": "string"}]
            },
            "maybePort": {"x-kubernetes-int-or-string": true, "nullable": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "nested": {"type": "object", "properties": {"inner": {"type": "string"}}},
            "bare": {"type": "object"},
            "either": {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "anyOf": [
                    {"required": ["a"]},
                    {"properties": {"b": {"minLength": 1}}, "required": ["b"]}
                ]
            },
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object", "properties": {"x": {"type": "integer"}}}}
            }
        }
    }))
    .unwrap()
}

/// The distinct pointers of `found`, sorted (one bad value can break several keywords).
fn pointers(found: &[Violation]) -> Vec<&str> {
    let mut pointers: Vec<&str> = found.iter().map(|v| v.pointer.as_str()).collect();
    pointers.sort_unstable();
    pointers.dedup();
    pointers
}

#[test]
fn nullable_fields_accept_null_and_the_others_do_not() {
    let schema = synthetic_schema();

    assert_eq!(
        schema.violations(&json!({"note": null, "mode": null, "maybePort": null})),
        []
    );
    assert_eq!(
        pointers(&schema.violations(&json!({"name": null}))),
        ["/name"]
    );
    assert_eq!(
        pointers(&schema.violations(&json!({"mode": "slow"}))),
        ["/mode"]
    );
}

#[test]
fn int_or_string_fields_accept_integers_and_strings_only() {
    let schema = synthetic_schema();

    assert_eq!(schema.violations(&json!({"port": 8080})), []);
    assert_eq!(schema.violations(&json!({"port": "http"})), []);
    assert_eq!(schema.violations(&json!({"maybePort": "25%"})), []);
    assert_eq!(
        pointers(&schema.violations(&json!({"port": true}))),
        ["/port"]
    );
    assert_eq!(
        pointers(&schema.violations(&json!({"port": 1.5}))),
        ["/port"]
    );
}

#[test]
fn objects_reject_undeclared_fields_unless_they_preserve_or_map_them() {
    let schema = synthetic_schema();

    let open = json!({
        "labels": {"anything": "goes"},
        "values": {"deep": {"free": [1, "form"]}},
        "either": {"a": "only a"},
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}}
    });
    assert_eq!(schema.violations(&open), []);

    let closed = json!({
        "extra": 1,
        "nested": {"inner": "ok", "outer": "no"},
        "bare": {"field": 1},
        "labels": {"count": 3},
        "template": {"spec": {"y": 2}, "status": {}}
    });
    assert_eq!(
        pointers(&schema.violations(&closed)),
        [
            "/bare/field",
            "/extra",
            "/labels/count",
            "/nested/outer",
            "/template/spec/y",
            "/template/status"
        ]
    );
}

#[test]
fn the_vendored_crds_serve_the_versions_the_fixtures_are_written_for() {
    let mut served: Vec<String> = crds()
        .crds()
        .iter()
        .map(|crd| {
            format!(
                "{}/{} {}",
                crd.group,
                crd.served_version_names().join(","),
                crd.kind
            )
        })
        .collect();
    served.sort();

    assert_eq!(
        served,
        [
            "helm.toolkit.fluxcd.io/v2 HelmRelease",
            "kustomize.toolkit.fluxcd.io/v1 Kustomization",
            "source.toolkit.fluxcd.io/v1 Bucket",
            "source.toolkit.fluxcd.io/v1 ExternalArtifact",
            "source.toolkit.fluxcd.io/v1 GitRepository",
            "source.toolkit.fluxcd.io/v1 HelmChart",
            "source.toolkit.fluxcd.io/v1 HelmRepository",
            "source.toolkit.fluxcd.io/v1 OCIRepository",
        ]
    );
    assert!(crds().crds().iter().all(|crd| crd.namespaced));
    assert!(
        crds()
            .crds()
            .iter()
            .all(|crd| crd.versions.iter().all(|version| version.storage))
    );
}
