//! The vendored Flux CRDs (`tests/crds/`) turned into validators for Flux objects.
//!
//! A CRD describes each version with an OpenAPI v3 *structural schema*: nearly JSON Schema
//! draft 4, plus `nullable` and the `x-kubernetes-*` extensions. [`StrictSchema::from_openapi`]
//! rewrites it into plain draft 4 so that the `jsonschema` crate rejects what the API server
//! rejects when a client asks for `--validate=strict`:
//!
//! - `nullable: true` lets a field be `null`; anywhere else `null` is a type error. (The API
//!   server would quietly drop such a null, so a dump taken from a cluster never holds one.)
//! - `x-kubernetes-int-or-string: true` admits integers and strings.
//! - An object schema that neither preserves unknown fields nor says what `additionalProperties`
//!   may be rejects every field it does not declare. This is not applied inside `allOf`, `anyOf`,
//!   `oneOf` and `not`, whose schemas only add checks to fields declared outside them.
//! - The top-level `metadata` is a bare `type: object` in every CRD because the API server checks
//!   it as ObjectMeta; it is replaced here by a strict ObjectMeta schema.
//! - `format: date-time` values must be RFC 3339 timestamps.
//!
//! Not checked: CEL rules (`x-kubernetes-validations`), list-type uniqueness, and defaulting.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value, json};

/// `tests/crds/` of this crate.
pub fn vendored_crd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("crds")
}

/// Whether an API group belongs to Flux (`source.toolkit.fluxcd.io`, `helm.toolkit.fluxcd.io`, ...).
pub fn is_flux_group(group: &str) -> bool {
    group.ends_with(".fluxcd.io")
}

/// Splits an `apiVersion` into group and version; the core group (`v1`) is the empty string.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// A DNS-1123 label: what Kubernetes requires of a namespace.
pub fn is_dns1123_label(value: &str) -> bool {
    value.len() <= 63 && is_dns1123_part(value)
}

/// A DNS-1123 subdomain: what Kubernetes requires of a custom resource's name.
pub fn is_dns1123_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns1123_part)
}

/// Lowercase alphanumerics and '-', not empty, starting and ending alphanumeric.
fn is_dns1123_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(alphanumeric)
        && bytes.last().is_some_and(alphanumeric)
        && bytes.iter().all(|b| alphanumeric(b) || *b == b'-')
}

/// One thing wrong with an object, at a JSON pointer into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) of the offending value, or of the missing or unknown field.
    pub pointer: String,
    pub message: String,
}

impl Violation {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(root)"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// Appends one reference token to a JSON pointer, escaping '~' and '/' as RFC 6901 says.
pub fn child_pointer(parent: &str, token: &str) -> String {
    format!("{parent}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// A CRD version schema rewritten for strict validation, compiled.
pub struct StrictSchema {
    json_schema: Value,
    validator: jsonschema::Validator,
}

impl StrictSchema {
    /// Rewrites an `openAPIV3Schema` (see the module documentation) and compiles it.
    pub fn from_openapi(openapi: &Value) -> Result<Self, String> {
        let json_schema = openapi_to_json_schema(openapi);
        let validator = jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&json_schema)
            .map_err(|error| format!("the rewritten schema does not compile: {error}"))?;
        Ok(Self {
            json_schema,
            validator,
        })
    }

    /// The draft 4 JSON Schema the validator was built from.
    pub fn json_schema(&self) -> &Value {
        &self.json_schema
    }

    /// Every schema violation in `instance`. Unknown and missing fields are reported at their
    /// own pointer, not at the enclosing object's.
    pub fn violations(&self, instance: &Value) -> Vec<Violation> {
        let mut found = Vec::new();
        for error in self.validator.iter_errors(instance) {
            let at = error.instance_path().as_str();
            match error.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for field in unexpected {
                        found.push(Violation::new(child_pointer(at, field), "unknown field"));
                    }
                }
                ValidationErrorKind::Required { property } => {
                    let field = property
                        .as_str()
                        .map_or_else(|| property.to_string(), str::to_owned);
                    found.push(Violation::new(
                        child_pointer(at, &field),
                        "required field is missing",
                    ));
                }
                _ => found.push(Violation::new(at, shorten(&error.to_string()))),
            }
        }
        found
    }
}

/// Error messages quote the offending value, which can be a whole object.
fn shorten(message: &str) -> String {
    const LIMIT: usize = 300;
    match message.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

/// Rewrites an OpenAPI v3 structural schema into a draft 4 JSON Schema that is as strict as the
/// API server (see the module documentation).
pub fn openapi_to_json_schema(openapi: &Value) -> Value {
    let mut schema = rewrite(openapi, Place::Checked);
    let metadata_is_bare = openapi
        .pointer("/properties/metadata")
        .is_some_and(|metadata| metadata.get("properties").is_none());
    if metadata_is_bare
        && let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut)
    {
        properties.insert("metadata".to_owned(), object_meta_schema());
    }
    schema
}

/// Where a schema sits: structural schemas only declare fields outside the logical junctors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Checked,
    InsideJunctor,
}

fn rewrite(node: &Value, place: Place) -> Value {
    let Value::Object(source) = node else {
        return node.clone();
    };
    let mut out = Map::new();
    for (key, value) in source {
        let rewritten = match key.as_str() {
            "properties" => map_object(value, |schema| rewrite(schema, place)),
            "items" => match value {
                Value::Array(schemas) => Value::Array(
                    schemas
                        .iter()
                        .map(|schema| rewrite(schema, place))
                        .collect(),
                ),
                schema => rewrite(schema, place),
            },
            "additionalProperties" => rewrite(value, place),
            "allOf" | "anyOf" | "oneOf" => match value {
                Value::Array(schemas) => Value::Array(
                    schemas
                        .iter()
                        .map(|schema| rewrite(schema, Place::InsideJunctor))
                        .collect(),
                ),
                other => other.clone(),
            },
            "not" => rewrite(value, Place::InsideJunctor),
            "nullable" => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), rewritten);
    }

    if flag(source, "x-kubernetes-int-or-string") {
        out.insert("type".to_owned(), json!(["integer", "string"]));
    }
    if flag(source, "nullable") {
        allow_null(&mut out);
    }
    if place == Place::Checked && rejects_unknown_fields(source) {
        if flag(source, "x-kubernetes-embedded-resource") {
            declare_embedded_resource_fields(&mut out);
        }
        // With no `properties` at all, jsonschema 0.60 reports an undeclared field at the
        // object's pointer instead of the field's; an empty `properties` avoids that.
        out.entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        out.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    Value::Object(out)
}

fn map_object(value: &Value, f: impl Fn(&Value) -> Value) -> Value {
    match value {
        Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, schema)| (key.clone(), f(schema)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn flag(schema: &Map<String, Value>, name: &str) -> bool {
    schema.get(name) == Some(&Value::Bool(true))
}

/// An object schema the API server prunes unknown fields from (reported under strict validation).
fn rejects_unknown_fields(schema: &Map<String, Value>) -> bool {
    let is_object =
        schema.contains_key("properties") || schema.get("type") == Some(&json!("object"));
    is_object
        && !schema.contains_key("additionalProperties")
        && !flag(schema, "x-kubernetes-preserve-unknown-fields")
}

fn allow_null(schema: &mut Map<String, Value>) {
    let widened = match schema.get("type") {
        Some(Value::String(single)) => Some(json!([single, "null"])),
        Some(Value::Array(several)) if !several.contains(&json!("null")) => {
            let mut several = several.clone();
            several.push(json!("null"));
            Some(Value::Array(several))
        }
        // No `type` already admits null; a type list with "null" needs nothing.
        _ => None,
    };
    if let Some(widened) = widened {
        schema.insert("type".to_owned(), widened);
    }
    if let Some(Value::Array(options)) = schema.get_mut("enum")
        && !options.contains(&Value::Null)
    {
        options.push(Value::Null);
    }
}

/// `x-kubernetes-embedded-resource` objects carry apiVersion, kind and metadata implicitly.
fn declare_embedded_resource_fields(schema: &mut Map<String, Value>) {
    let properties = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(properties) = properties {
        properties
            .entry("apiVersion")
            .or_insert_with(|| json!({"type": "string"}));
        properties
            .entry("kind")
            .or_insert_with(|| json!({"type": "string"}));
        properties
            .entry("metadata")
            .or_insert_with(object_meta_schema);
    }
}

/// The ObjectMeta fields a stored object can carry, strict like the rest.
fn object_meta_schema() -> Value {
    let string = json!({"type": "string"});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let time = json!({"type": "string", "format": "date-time"});
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "annotations": string_map,
            // `kubectl create --dry-run -o yaml` prints `creationTimestamp: null`.
            "creationTimestamp": {"type": ["string", "null"], "format": "date-time"},
            "deletionGracePeriodSeconds": {"type": "integer"},
            "deletionTimestamp": time,
            "finalizers": {"type": "array", "items": string},
            "generateName": string,
            "generation": {"type": "integer"},
            "labels": string_map,
            "managedFields": {"type": "array", "items": {"type": "object"}},
            "name": string,
            "namespace": string,
            "ownerReferences": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["apiVersion", "kind", "name", "uid"],
                    "properties": {
                        "apiVersion": string,
                        "blockOwnerDeletion": {"type": "boolean"},
                        "controller": {"type": "boolean"},
                        "kind": string,
                        "name": string,
                        "uid": string
                    }
                }
            },
            "resourceVersion": string,
            "selfLink": string,
            "uid": string
        }
    })
}

/// One served version of a CRD.
pub struct ServedVersion {
    pub name: String,
    pub storage: bool,
    pub schema: StrictSchema,
}

/// One CustomResourceDefinition, with a validator for each version it serves.
pub struct Crd {
    pub file: PathBuf,
    pub group: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Served versions only, in the CRD's order.
    pub versions: Vec<ServedVersion>,
}

impl Crd {
    /// Reads one `apiextensions.k8s.io/v1` CustomResourceDefinition document.
    pub fn from_document(file: &Path, document: &Value) -> Result<Self, String> {
        let fail = |message: String| format!("{}: {message}", file.display());
        if document["apiVersion"] != "apiextensions.k8s.io/v1"
            || document["kind"] != "CustomResourceDefinition"
        {
            return Err(fail(
                "not an apiextensions.k8s.io/v1 CustomResourceDefinition".to_owned(),
            ));
        }
        let spec = &document["spec"];
        let text = |pointer: &str| {
            spec.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| fail(format!("spec{pointer} is missing")))
        };
        let group = text("/group")?;
        let kind = text("/names/kind")?;
        let plural = text("/names/plural")?;
        let namespaced = match text("/scope")?.as_str() {
            "Namespaced" => true,
            "Cluster" => false,
            other => return Err(fail(format!("unknown scope {other:?}"))),
        };

        let mut versions = Vec::new();
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"] != true {
                continue;
            }
            let name = version["name"]
                .as_str()
                .ok_or_else(|| fail("a version has no name".to_owned()))?
                .to_owned();
            let openapi = version
                .pointer("/schema/openAPIV3Schema")
                .filter(|schema| schema.is_object())
                .ok_or_else(|| fail(format!("version {name} has no schema.openAPIV3Schema")))?;
            let schema = StrictSchema::from_openapi(openapi)
                .map_err(|error| fail(format!("version {name}: {error}")))?;
            let storage = version["storage"] == true;
            versions.push(ServedVersion {
                name,
                storage,
                schema,
            });
        }
        if versions.is_empty() {
            return Err(fail("serves no version".to_owned()));
        }
        Ok(Self {
            file: file.to_owned(),
            group,
            kind,
            plural,
            namespaced,
            versions,
        })
    }

    pub fn version(&self, name: &str) -> Option<&ServedVersion> {
        self.versions.iter().find(|version| version.name == name)
    }

    pub fn served_version_names(&self) -> Vec<&str> {
        self.versions
            .iter()
            .map(|version| version.name.as_str())
            .collect()
    }
}

/// What an object's apiVersion and kind point at.
pub enum Classification<'a> {
    /// Not a Flux API group: nothing to check.
    NotFlux,
    Served {
        crd: &'a Crd,
        version: &'a ServedVersion,
    },
    /// A Flux group, but no vendored CRD defines the kind.
    UnknownKind,
    /// The CRD exists but does not serve this version.
    UnservedVersion { crd: &'a Crd },
}

/// The CRDs of a folder.
pub struct CrdSet {
    crds: Vec<Crd>,
}

impl CrdSet {
    /// Loads every `*.yaml`/`*.yml` file of `dir`; each document must be a CRD.
    pub fn load_dir(dir: &Path) -> Result<Self, String> {
        let entries = fs::read_dir(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|error| format!("{}: {error}", dir.display()))?
                .path();
            let is_yaml = path
                .extension()
                .and_then(|extension| extension.to_str())
                .is_some_and(|extension| matches!(extension, "yaml" | "yml"));
            if is_yaml {
                files.push(path);
            }
        }
        files.sort();

        let mut crds: Vec<Crd> = Vec::new();
        for file in files {
            let text = fs::read_to_string(&file)
                .map_err(|error| format!("{}: {error}", file.display()))?;
            let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
                .map_err(|error| format!("{}: not YAML: {error}", file.display()))?;
            for document in &documents {
                let crd = Crd::from_document(&file, document)?;
                if let Some(earlier) = crds
                    .iter()
                    .find(|c| c.group == crd.group && c.kind == crd.kind)
                {
                    return Err(format!(
                        "{} and {} both define {}/{}",
                        earlier.file.display(),
                        file.display(),
                        crd.group,
                        crd.kind
                    ));
                }
                crds.push(crd);
            }
        }
        if crds.is_empty() {
            return Err(format!("{}: no CRD found", dir.display()));
        }
        Ok(Self { crds })
    }

    /// The CRDs vendored in `tests/crds/`; panics with the reason if they cannot be loaded.
    pub fn vendored() -> Self {
        Self::load_dir(&vendored_crd_dir())
            .unwrap_or_else(|error| panic!("cannot load the vendored CRDs: {error}"))
    }

    pub fn crds(&self) -> &[Crd] {
        &self.crds
    }

    pub fn find(&self, group: &str, kind: &str) -> Option<&Crd> {
        self.crds
            .iter()
            .find(|crd| crd.group == group && crd.kind == kind)
    }

    pub fn classify(&self, api_version: &str, kind: &str) -> Classification<'_> {
        let (group, version) = split_api_version(api_version);
        if !is_flux_group(group) {
            return Classification::NotFlux;
        }
        match self.find(group, kind) {
            None => Classification::UnknownKind,
            Some(crd) => match crd.version(version) {
                Some(served) => Classification::Served {
                    crd,
                    version: served,
                },
                None => Classification::UnservedVersion { crd },
            },
        }
    }

    /// Checks one object. `None` means it is not a Flux object (so it was not checked);
    /// otherwise every violation found, none if the object is valid. An object without a string
    /// apiVersion and kind cannot be told apart and is reported.
    pub fn check(&self, object: &Value) -> Option<Vec<Violation>> {
        let api_version = object.get("apiVersion").and_then(Value::as_str);
        let kind = object.get("kind").and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (api_version, kind) else {
            return Some(vec![Violation::new(
                "",
                "apiVersion and kind must both be strings",
            )]);
        };
        match self.classify(api_version, kind) {
            Classification::NotFlux => None,
            Classification::UnknownKind => Some(vec![Violation::new(
                "/kind",
                format!(
                    "no vendored CRD defines {kind} in {}",
                    split_api_version(api_version).0
                ),
            )]),
            Classification::UnservedVersion { crd } => Some(vec![Violation::new(
                "/apiVersion",
                format!(
                    "{api_version} is not served by the vendored {kind} CRD (it serves {})",
                    crd.served_version_names().join(", ")
                ),
            )]),
            Classification::Served { crd, version } => {
                let mut found = version.schema.violations(object);
                found.extend(name_violations(crd, object));
                Some(found)
            }
        }
    }
}

/// Name and namespace rules the API server applies on top of the schema.
fn name_violations(crd: &Crd, object: &Value) -> Vec<Violation> {
    let mut found = Vec::new();
    match object.pointer("/metadata/name") {
        None => found.push(Violation::new(
            "/metadata/name",
            "required field is missing",
        )),
        Some(Value::String(name)) if !is_dns1123_subdomain(name) => found.push(Violation::new(
            "/metadata/name",
            format!(
                "{name:?} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', \
                 alphanumeric at both ends of each part, at most 253 characters)"
            ),
        )),
        // A value of the wrong type is already reported by the schema.
        Some(_) => {}
    }
    match (crd.namespaced, object.pointer("/metadata/namespace")) {
        (true, None) => {
            found.push(Violation::new(
                "/metadata/namespace",
                "required field is missing",
            ));
        }
        (true, Some(Value::String(namespace))) if !is_dns1123_label(namespace) => {
            found.push(Violation::new(
                "/metadata/namespace",
                format!(
                    "{namespace:?} is not a DNS-1123 label (lowercase letters, digits and '-', \
                     alphanumeric at both ends, at most 63 characters)"
                ),
            ));
        }
        (false, Some(_)) => found.push(Violation::new(
            "/metadata/namespace",
            format!("{} is cluster-scoped and takes no namespace", crd.kind),
        )),
        _ => {}
    }
    found
}
