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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_yaml(&format!("cluster: prod\n{extra}"), "test.yaml").unwrap()
    }

    #[test]
    fn a_reload_may_change_the_schedule_and_namespaces() {
        assert_eq!(
            reloadable(&config(""), &config("schedule: 5m\nnamespaces: [apps]\n")),
            Ok(())
        );
    }

    #[test]
    fn a_reload_that_changes_the_cluster_or_listen_address_names_each_setting_that_needs_a_restart()
    {
        let new = Config::from_yaml(
            "cluster: staging\nhttp:\n  listen: 127.0.0.1:9999\n",
            "test.yaml",
        )
        .unwrap();
        assert_eq!(
            reloadable(&config(""), &new),
            Err("changing cluster, http.listen needs a restart".to_string())
        );
    }
}
