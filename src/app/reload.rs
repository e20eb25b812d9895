//! What a reloaded configuration may change without a restart.

use crate::config::Config;

/// Checks a reloaded configuration changes nothing that needs a restart.
pub(super) fn reloadable(old: &Config, new: &Config) -> Result<(), String> {
    let mut fixed = Vec::new();
    if old.cluster != new.cluster {
        fixed.push("cluster");
    }
    // readyMaxAgePeriods is applied on reload; only the listening socket is bound once.
    if old.http.listen != new.http.listen {
        fixed.push("http.listen");
    }
    if old.ledger.backend != new.ledger.backend {
        fixed.push("ledger.backend");
    }
    if old.leader_election != new.leader_election {
        fixed.push("leaderElection");
    }
    if fixed.is_empty() {
        Ok(())
    } else {
        Err(format!("changing {} needs a restart", fixed.join(", ")))
    }
}
