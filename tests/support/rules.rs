//! The alert rules in `deploy/prometheus/`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// `deploy/prometheus/` of this crate.
pub fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join("prometheus")
}

/// A YAML file of this crate as JSON values, one per document.
pub fn yaml_documents(path: &Path) -> Vec<Value> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// The `groups` of the plain rule file `alerts.yaml`.
pub fn alert_groups() -> Value {
    let documents = yaml_documents(&rules_dir().join("alerts.yaml"));
    assert_eq!(documents.len(), 1, "alerts.yaml holds one document");
    documents[0]["groups"].clone()
}

/// One alerting rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub group: String,
    pub name: String,
    pub expr: String,
    pub rule: Value,
}

/// Every alerting rule of `alerts.yaml`, in order.
pub fn alert_rules() -> Vec<AlertRule> {
    let mut out = Vec::new();
    for group in alert_groups().as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            if let Some(name) = rule["alert"].as_str() {
                out.push(AlertRule {
                    group: group["name"].as_str().unwrap_or("?").to_string(),
                    name: name.to_string(),
                    expr: rule["expr"].as_str().unwrap_or_default().to_string(),
                    rule: rule.clone(),
                });
            }
        }
    }
    out
}
