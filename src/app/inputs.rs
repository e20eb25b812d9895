//! The inputs the commands share: the configuration file and a cluster dump.

use std::collections::BTreeSet;
use std::path::Path;

use crate::cluster::Snapshot;
use crate::cluster::dump::{DumpError, DumpFilter, DumpReport, read_dump_file};
use crate::config::{Config, ConfigError};

/// Loads the configuration named on the command line, or the built-in defaults.
pub fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None => Config::built_in(),
    }
}

/// The unknown kinds already warned about, so that `run`, which re-reads its dump every tick,
/// warns about each kind once.
#[derive(Debug, Clone, Default)]
pub struct WarnedKinds(BTreeSet<String>);

/// Reads a dump with the configuration's namespaces and selector, logging what was skipped.
pub fn read_snapshot(path: &Path, config: &Config) -> Result<Snapshot, DumpError> {
    read_snapshot_warning_once(path, config, &mut WarnedKinds::default())
}

/// [`read_snapshot`], warning only about kinds not in `warned` (and adding them).
pub fn read_snapshot_warning_once(
    path: &Path,
    config: &Config,
    warned: &mut WarnedKinds,
) -> Result<Snapshot, DumpError> {
    let filter = DumpFilter {
        namespaces: &config.namespaces,
        selector: &config.label_selector,
    };
    let (snapshot, report) = read_dump_file(path, filter)?;
    for warning in dump_warnings(&snapshot, &report, warned) {
        tracing::warn!(file = %path.display(), "{warning}");
    }
    Ok(snapshot)
}

/// What to warn about after reading a dump: each kind the exporter does not read (once), and
/// every object it could not decode.
fn dump_warnings(
    snapshot: &Snapshot,
    report: &DumpReport,
    warned: &mut WarnedKinds,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for (kind, count) in &report.ignored_kinds {
        if warned.0.insert(kind.clone()) {
            warnings.push(format!(
                "ignoring {count} object(s) of `{kind}`: not a Flux kind and version the exporter reads (said once)"
            ));
        }
    }
    for object in &snapshot.undecodable {
        warnings.push(format!("skipping {object}"));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn an_unknown_kind_is_warned_about_once_across_reads_and_a_new_one_still_is() {
        let mut warned = WarnedKinds::default();
        let first = DumpReport {
            ignored_kinds: BTreeMap::from([("v1 ConfigMap".to_string(), 2)]),
            ..Default::default()
        };
        assert_eq!(
            dump_warnings(&Snapshot::default(), &first, &mut warned),
            [
                "ignoring 2 object(s) of `v1 ConfigMap`: not a Flux kind and version the exporter reads (said once)"
            ]
        );
        assert_eq!(
            dump_warnings(&Snapshot::default(), &first, &mut warned),
            Vec::<String>::new()
        );
        let second = DumpReport {
            ignored_kinds: BTreeMap::from([
                ("v1 ConfigMap".to_string(), 2),
                ("v1 Secret".to_string(), 1),
            ]),
            ..Default::default()
        };
        assert_eq!(
            dump_warnings(&Snapshot::default(), &second, &mut warned),
            [
                "ignoring 1 object(s) of `v1 Secret`: not a Flux kind and version the exporter reads (said once)"
            ]
        );
    }
}
