//! The inputs the commands share: the configuration file and a cluster dump.

use std::path::Path;

use crate::cluster::Snapshot;
use crate::cluster::dump::{DumpError, DumpFilter, DumpReport, read_dump_file};
use crate::config::{Config, ConfigError};

/// Loads the configuration named on the command line, or the built-in defaults.
pub fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None => Ok(Config::built_in()),
    }
}

/// Reads a dump with the configuration's namespaces and selector, logging what was skipped.
pub fn read_snapshot(path: &Path, config: &Config) -> Result<Snapshot, DumpError> {
    let filter = DumpFilter {
        namespaces: &config.namespaces,
        selector: &config.label_selector,
    };
    let (snapshot, report) = read_dump_file(path, filter)?;
    log_dump_report(path, &snapshot, &report);
    Ok(snapshot)
}

fn log_dump_report(path: &Path, snapshot: &Snapshot, report: &DumpReport) {
    for (kind, count) in &report.ignored_kinds {
        tracing::warn!(file = %path.display(), "ignoring {count} object(s) of `{kind}`: not a Flux kind and version the exporter reads");
    }
    for object in &snapshot.undecodable {
        tracing::warn!(file = %path.display(), "skipping {object}");
    }
}
