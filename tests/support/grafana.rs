//! The Grafana dashboards in `dashboards/`: their panels, queries and variables.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// `dashboards/` of this crate.
pub fn dashboard_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every dashboard: file name and parsed JSON, sorted by file name.
pub fn dashboards() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = fs::read_dir(dashboard_dir())
        .expect("dashboards/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = fs::read_to_string(&path).expect("a readable dashboard");
            let json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            (name, json)
        })
        .collect()
}

/// Every panel, rows' nested panels included, in order.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        for nested in panel["panels"].as_array().into_iter().flatten() {
            out.push(nested);
        }
    }
    out
}

/// One query of one panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
}

/// Every panel query of `dashboard` (named `file`).
pub fn panel_queries(file: &str, dashboard: &Value) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(PanelQuery {
                dashboard: file.to_string(),
                panel: panel["title"].as_str().unwrap_or("?").to_string(),
                ref_id: target["refId"].as_str().unwrap_or("?").to_string(),
                expr: target["expr"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    out
}

/// A `label_values(selector, label)` query variable.
#[derive(Debug, Clone)]
pub struct LabelValuesVariable {
    pub name: String,
    pub selector: String,
    pub label: String,
}

/// The query variables of `dashboard`; panics on a query variable that is not
/// `label_values(selector, label)`.
pub fn label_values_variables(dashboard: &Value) -> Vec<LabelValuesVariable> {
    let mut out = Vec::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().unwrap_or("?").to_string();
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .unwrap_or_default();
        let inner = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: `{query}` is not label_values(...)"));
        let (selector, label) = inner
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("variable {name}: `{query}` names no label"));
        out.push(LabelValuesVariable {
            name,
            selector: selector.trim().to_string(),
            label: label.trim().to_string(),
        });
    }
    out
}
