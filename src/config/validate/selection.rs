//! The top-level fields choosing what is read and when: `cluster`, `namespaces`,
//! `labelSelector`, `kinds` and `schedule`.

use super::names::{check_label_name, is_dns_label};
use super::section::Section;
use crate::cluster::selector::LabelSelector;
use crate::config::{ConfigError, Schedule, defaults};
use crate::flux::FluxKind;

/// `cluster`.
pub(super) fn cluster(top: &Section<'_>, raw: Option<String>) -> Result<String, ConfigError> {
    let cluster = raw.unwrap_or_else(|| defaults::CLUSTER.to_string());
    check_label_name(&cluster).map_err(|e| top.invalid("cluster", e))?;
    Ok(cluster)
}

/// `namespaces`: valid names, each once.
pub(super) fn namespaces(
    top: &Section<'_>,
    raw: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let namespaces = raw.unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if !is_dns_label(ns) {
            return Err(top.invalid(
                format!("namespaces[{i}]"),
                format!("`{ns}` is not a valid namespace name"),
            ));
        }
    }
    if let Some((i, ns)) = namespaces
        .iter()
        .enumerate()
        .find(|(i, ns)| namespaces[..*i].contains(ns))
    {
        return Err(top.invalid(
            format!("namespaces[{i}]"),
            format!("`{ns}` is listed twice"),
        ));
    }
    Ok(namespaces)
}

/// `labelSelector`.
pub(super) fn label_selector(
    top: &Section<'_>,
    raw: Option<&str>,
) -> Result<LabelSelector, ConfigError> {
    LabelSelector::parse(raw.unwrap_or("")).map_err(|e| top.invalid("labelSelector", e))
}

/// `kinds`: reconciler kinds only, duplicates dropped.
pub(super) fn kinds(
    top: &Section<'_>,
    raw: Option<Vec<String>>,
) -> Result<Vec<FluxKind>, ConfigError> {
    let Some(names) = raw else {
        return Ok(defaults::KINDS.to_vec());
    };
    if names.is_empty() {
        return Err(top.invalid(
            "kinds",
            "must name at least one of Kustomization, HelmRelease",
        ));
    }
    let mut kinds = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let kind: FluxKind = name
            .parse()
            .map_err(|e| top.invalid(format!("kinds[{i}]"), e))?;
        if !kind.is_reconciler() {
            return Err(top.invalid(
                format!("kinds[{i}]"),
                format!("`{name}` is a source kind; only Kustomization and HelmRelease are reported (sources are always read)"),
            ));
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// `schedule`.
pub(super) fn schedule(top: &Section<'_>, raw: Option<&str>) -> Result<Schedule, ConfigError> {
    raw.unwrap_or(defaults::SCHEDULE)
        .parse()
        .map_err(|e| top.invalid("schedule", e))
}
