//! Builds what an exporter needs from the configuration: the cluster source, the ledger store,
//! the publishers, and the metrics registry.

use std::path::PathBuf;
use std::sync::Arc;

use super::{LedgerStore, RunError, RunOptions};
use crate::cluster::client::{ConnectError, ConnectOptions, Connection, connect};
use crate::cluster::kube::KubeReader;
use crate::cluster::watch::ClusterWatch;
use crate::config::{Config, KubeRead, LedgerBackend};
use crate::forge::{CredentialSources, Publishers};
use crate::ledger::{ConfigMapStore, FileStore};
use crate::metrics::{Metrics, MetricsError};

/// Where a tick reads the cluster from.
pub enum ClusterSource {
    /// A dump, re-read every tick so that a test or a demo can change it between ticks.
    Snapshot(PathBuf),
    Kube(KubeReader),
    /// `kube.read: watch`: stores fed by watches, copied every tick.
    Watch(ClusterWatch),
}

/// The parts of an exporter that depend on the configuration.
pub struct Parts {
    pub source: ClusterSource,
    pub store: LedgerStore,
    pub publishers: Arc<Publishers>,
    pub connection: Option<Connection>,
}

/// Connects to the cluster when anything needs it, and builds the reader, the ledger store and
/// the publishers. A dry run from a snapshot needs no cluster: its ledger is in memory. `read`
/// says how the cluster is read: `once` always lists, `run` as `kube.read` says.
pub async fn build_parts(
    config: &Config,
    options: &RunOptions,
    leader_election: bool,
    read: KubeRead,
) -> Result<Parts, RunError> {
    let configmap_ledger = matches!(config.ledger.backend, LedgerBackend::ConfigMap { .. });
    let snapshot_dry_run = options.snapshot.is_some() && options.dry_run;
    let needs_kube = options.snapshot.is_none()
        || (configmap_ledger && !snapshot_dry_run)
        || (config
            .forges
            .iter()
            .any(|f| f.credentials.uses_kubernetes_secret())
            && !options.dry_run)
        || leader_election;
    let connection = if needs_kube {
        let connect_options = ConnectOptions {
            kubeconfig: options.kubeconfig.clone(),
            context: options.context.clone(),
            request_timeout: config.kube.request_timeout,
        };
        match connect(&connect_options).await {
            Ok(connection) => Some(connection),
            Err(error) if options.snapshot.is_some() => {
                return Err(snapshot_needs_cluster(
                    config,
                    configmap_ledger && !snapshot_dry_run,
                    leader_election,
                    error,
                ));
            }
            Err(error) => return Err(error.into()),
        }
    } else {
        None
    };
    let source = match (&options.snapshot, &connection) {
        (Some(path), _) => ClusterSource::Snapshot(path.clone()),
        (None, Some(c)) => {
            let reader = KubeReader::new(c.client.clone(), config);
            match read {
                KubeRead::List => ClusterSource::Kube(reader),
                KubeRead::Watch => {
                    ClusterSource::Watch(ClusterWatch::start(reader, c.watch_client.clone()))
                }
            }
        }
        (None, None) => return Err(RunError::Connect(ConnectError::NotFound)),
    };
    let store = match (&config.ledger.backend, &connection) {
        (LedgerBackend::ConfigMap { .. }, _) if snapshot_dry_run => {
            tracing::info!("dry run from a snapshot: the ledger is kept in memory only");
            LedgerStore::Memory
        }
        (LedgerBackend::ConfigMap { name, namespace }, Some(c)) => {
            let namespace = namespace
                .clone()
                .unwrap_or_else(|| c.default_namespace.clone());
            LedgerStore::ConfigMap(Box::new(ConfigMapStore::new(
                c.client.clone(),
                &namespace,
                name,
            )))
        }
        (LedgerBackend::ConfigMap { .. }, None) => {
            return Err(RunError::Connect(ConnectError::NotFound));
        }
        (LedgerBackend::File(path), _) => LedgerStore::File(FileStore::new(path.clone())),
        (LedgerBackend::Memory, _) => LedgerStore::Memory,
    };
    let publishers = if options.dry_run {
        Publishers::dry_run_for(config)?
    } else {
        let mut sources = CredentialSources::new();
        if let Some(c) = &connection {
            sources = sources.with_kube(c.client.clone(), c.default_namespace.clone());
        }
        Publishers::from_config(config, &sources)?
    };
    Ok(Parts {
        source,
        store,
        publishers: Arc::new(publishers),
        connection,
    })
}

/// Why a run from a snapshot still needed the cluster it could not reach, and the ways out.
fn snapshot_needs_cluster(
    config: &Config,
    configmap_ledger: bool,
    leader_election: bool,
    error: ConnectError,
) -> RunError {
    let mut needs = Vec::new();
    let mut ways_out = Vec::new();
    if configmap_ledger {
        needs.push("`ledger.backend: configmap` keeps the ledger in the cluster".to_string());
        ways_out.push("set `ledger.backend: file` (with `ledger.path`) or `memory`");
        ways_out.push("add --dry-run (the ledger is then kept in memory)");
    }
    if let Some(forge) = config
        .forges
        .iter()
        .find(|f| f.credentials.uses_kubernetes_secret())
    {
        needs.push(format!(
            "forge {} reads its credential from a Kubernetes Secret",
            forge.name
        ));
        ways_out.push("give the credential as `env:` or `file:`");
    }
    if leader_election {
        needs.push("leader election holds a Lease in the cluster".to_string());
        ways_out.push("set `leaderElection.enabled: false`");
    }
    if needs.is_empty() {
        return RunError::Connect(error);
    }
    ways_out.push("or make a cluster reachable (--kubeconfig or KUBECONFIG)");
    RunError::SnapshotNeedsCluster {
        needs: needs.join(" and "),
        ways_out: ways_out.join(", "),
        error: Box::new(error),
    }
}

/// The metrics registry for the configured cluster.
pub(super) fn metrics_for(config: &Config) -> Result<Arc<Metrics>, MetricsError> {
    Ok(Arc::new(Metrics::new(
        &config.cluster,
        crate::version::VERSION,
        crate::version::BUILD_COMMIT,
    )?))
}
