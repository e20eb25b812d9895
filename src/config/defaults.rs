//! What the exporter uses for every setting `config.yaml` leaves out, and the limits the
//! validators hold values to. `check-config --print` shows these values filled in.

use std::time::Duration;

use crate::flux::FluxKind;

/// Cluster name when `cluster` is not given.
pub const CLUSTER: &str = "default";

/// Kinds reported when `kinds` is not given: every reconciler kind.
pub const KINDS: [FluxKind; 2] = [FluxKind::Kustomization, FluxKind::HelmRelease];

/// `schedule` when not given: an interval of one minute.
pub const SCHEDULE: &str = "1m";

/// `scheduleJitter` when not given: ticks start on the schedule exactly.
pub const SCHEDULE_JITTER: Duration = Duration::ZERO;

/// Default status context: unique per object and cluster.
pub const CONTEXT: &str = "flux/{cluster}/{kind}/{namespace}/{name}";

/// Default status description.
pub const DESCRIPTION: &str = "{summary}";

/// `statuses.readBack` when not given: trust the ledger alone.
pub const READ_BACK: bool = false;

/// `ledger.backend` when not given.
pub const LEDGER_BACKEND: &str = "configmap";

/// `ledger.configMapName` when not given.
pub const LEDGER_CONFIG_MAP_NAME: &str = "flux-status-exporter-ledger";

/// Longest `ledger.configMapName`, leaving room for the shard suffixes `-<generation>-<i>`.
pub const LEDGER_CONFIG_MAP_NAME_MAX_LEN: usize = 200;

/// `ledger.pruneAfter` when not given: 30 days.
pub const LEDGER_PRUNE_AFTER: Duration = Duration::from_secs(30 * 86_400);

/// Shortest `ledger.pruneAfter`: shorter would re-post statuses for commits still in use.
pub const LEDGER_MIN_PRUNE_AFTER: Duration = Duration::from_secs(3600);

/// `http.listen` when not given.
pub const HTTP_LISTEN: &str = "0.0.0.0:8080";

/// `http.readyMaxAgePeriods` when not given.
pub const READY_MAX_AGE_PERIODS: u32 = 3;

/// `pushgateway.job` when not given.
pub const PUSHGATEWAY_JOB: &str = "flux-status-exporter";

/// `kube.pageSize` when not given.
pub const KUBE_PAGE_SIZE: u32 = 500;

/// Largest `kube.pageSize`.
pub const KUBE_MAX_PAGE_SIZE: u32 = 10_000;

/// `kube.maxPages` when not given.
pub const KUBE_MAX_PAGES: u32 = 10_000;

/// `kube.requestTimeout` when not given.
pub const KUBE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `leaderElection.enabled` when not given: a single replica needs no election.
pub const LEADER_ELECTION_ENABLED: bool = false;

/// `leaderElection.leaseName` when not given.
pub const LEASE_NAME: &str = "flux-status-exporter";

/// `leaderElection.leaseDuration` when not given.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// Shortest `leaderElection.leaseDuration`.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(2);

/// `shutdownGracePeriod` when not given.
pub const SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(10);

/// `forges[].requestTimeout` when not given.
pub const FORGE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, LedgerBackend, RateLimit};

    #[test]
    fn the_built_in_configuration_is_made_of_these_defaults() {
        let config = Config::built_in().unwrap();
        assert_eq!(config.cluster, CLUSTER);
        assert_eq!(config.kinds, KINDS);
        assert_eq!(config.schedule.to_string(), SCHEDULE);
        assert_eq!(config.schedule_jitter, SCHEDULE_JITTER);
        assert_eq!(config.statuses.context.source(), CONTEXT);
        assert_eq!(config.statuses.description.source(), DESCRIPTION);
        assert_eq!(config.statuses.read_back, READ_BACK);
        assert_eq!(
            config.ledger.backend,
            LedgerBackend::ConfigMap {
                name: LEDGER_CONFIG_MAP_NAME.to_string(),
                namespace: None
            }
        );
        assert_eq!(config.ledger.prune_after, LEDGER_PRUNE_AFTER);
        assert_eq!(config.http.listen.to_string(), HTTP_LISTEN);
        assert_eq!(config.http.ready_max_age_periods, READY_MAX_AGE_PERIODS);
        assert_eq!(config.kube.page_size, KUBE_PAGE_SIZE);
        assert_eq!(config.kube.max_pages, KUBE_MAX_PAGES);
        assert_eq!(config.kube.request_timeout, KUBE_REQUEST_TIMEOUT);
        assert_eq!(config.leader_election.enabled, LEADER_ELECTION_ENABLED);
        assert_eq!(config.leader_election.lease_name, LEASE_NAME);
        assert_eq!(config.leader_election.lease_duration, LEASE_DURATION);
        assert_eq!(config.shutdown_grace_period, SHUTDOWN_GRACE_PERIOD);
    }

    #[test]
    fn a_forge_left_to_defaults_gets_its_kinds_pacing_and_timeout() {
        let config = Config::from_yaml(
            "forges:\n  - type: bitbucket\n    credentials: {token: {env: T}}\n  - type: gitlab\n    credentials: {token: {env: G}}\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(
            config.forges[0].rate_limit,
            RateLimit {
                per_minute: 60,
                per_hour: 900,
                concurrency: 1
            }
        );
        assert_eq!(
            config.forges[1].rate_limit,
            RateLimit {
                per_minute: 120,
                per_hour: 3000,
                concurrency: 1
            }
        );
        assert_eq!(config.forges[0].request_timeout, FORGE_REQUEST_TIMEOUT);
        assert_eq!(config.forges[0].host, "bitbucket.org");
        assert_eq!(config.forges[0].api_url, "https://api.bitbucket.org");
    }
}
