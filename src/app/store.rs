//! Where the ledger lives, and how often a tick may save it.

use std::time::Duration;

use crate::ledger::{ConfigMapStore, FileStore, Ledger, LedgerError, Loaded, encode};

/// Shortest time between two saves of a ConfigMap ledger during one tick.
pub const CONFIGMAP_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Where the ledger lives.
pub enum LedgerStore {
    Memory,
    File(FileStore),
    ConfigMap(Box<ConfigMapStore>),
}

impl LedgerStore {
    /// The backend's name, for `/status`.
    pub fn name(&self) -> &'static str {
        match self {
            LedgerStore::Memory => "memory",
            LedgerStore::File(_) => "file",
            LedgerStore::ConfigMap(_) => "configmap",
        }
    }

    pub(super) async fn load(&self) -> Result<Loaded, LedgerError> {
        match self {
            LedgerStore::Memory => Ok(Loaded {
                ledger: Ledger::new(),
                discarded: None,
                bytes: None,
            }),
            LedgerStore::File(store) => store.load(),
            LedgerStore::ConfigMap(store) => store.load().await,
        }
    }

    /// How often the ledger may be saved while a tick's deliveries go on: after every delivery
    /// for a file (a local write), at most every few seconds for ConfigMaps (each save is a
    /// write to the API server, and a burst of deliveries must not become a burst of writes),
    /// never for memory.
    pub(super) fn checkpoint_interval(&self) -> Option<Duration> {
        match self {
            LedgerStore::Memory => None,
            LedgerStore::File(_) => Some(Duration::ZERO),
            LedgerStore::ConfigMap(_) => Some(CONFIGMAP_CHECKPOINT_INTERVAL),
        }
    }

    /// Saves and returns the stored size in bytes.
    pub(super) async fn save(&self, ledger: &mut Ledger) -> Result<usize, LedgerError> {
        match self {
            LedgerStore::Memory => {
                ledger.mark_saved();
                Ok(encode(ledger).len())
            }
            LedgerStore::File(store) => {
                let bytes = encode(ledger).len();
                store.save(ledger)?;
                Ok(bytes)
            }
            LedgerStore::ConfigMap(store) => Ok(store.save(ledger).await?.bytes),
        }
    }
}
