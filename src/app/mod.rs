//! The application layer: the I/O around the pure core. One tick reads the cluster, assesses,
//! plans, delivers, accounts and saves ([`tick`]); [`modes`] runs ticks as a Deployment
//! (`run`: schedule, HTTP, leader election, reload, graceful stop) or a CronJob (`once`).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cluster::client::ConnectError;
use crate::config::ConfigError;
use crate::forge::ForgeSetupError;
use crate::ledger::LedgerError;
use crate::metrics::MetricsError;
use crate::server::ServeError;

mod exporter;
pub mod inputs;
mod modes;
mod reload;
mod signals;
mod store;
mod tick;
mod wiring;

pub use exporter::Exporter;
pub use modes::{OnceOutcome, once, run};
pub use store::{CONFIGMAP_CHECKPOINT_INTERVAL, LedgerStore};
pub use tick::{TickOutcome, TickReport};
pub use wiring::{ClusterSource, Parts, build_parts};

/// How `run` and `once` were asked to work.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The configuration file; built-in defaults when absent.
    pub config_path: Option<PathBuf>,
    /// Read the cluster from this dump (re-read every tick) instead of the API.
    pub snapshot: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Log what would be posted; never post, never write the ledger.
    pub dry_run: bool,
    /// Overrides `http.listen` (`run` only).
    pub listen: Option<SocketAddr>,
}

/// Why `run` or `once` could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// `--snapshot` was given, but something else in the configuration needs the cluster.
    #[error("{needs}, so it needs a cluster even with --snapshot: {error}; {ways_out}")]
    SnapshotNeedsCluster {
        needs: String,
        ways_out: String,
        error: Box<ConnectError>,
    },
    #[error(transparent)]
    Forge(#[from] ForgeSetupError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("interrupted by a second signal; exiting without waiting")]
    Interrupted,
}

impl RunError {
    /// Whether the error is the caller's input (configuration, kubeconfig, credentials).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RunError::Config(_)
                | RunError::Connect(_)
                | RunError::SnapshotNeedsCluster { .. }
                | RunError::Forge(_)
        )
    }
}
