//! Commit statuses: the identity of one status on a forge, and the updates a tick plans to post.

use serde::{Deserialize, Serialize};

use crate::flux::ResourceRef;
use crate::flux::revision::CommitSha;
use crate::model::commit::CommitState;

/// Identity of one commit status on a forge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatusKey {
    pub host: String,
    pub repository: String,
    pub sha: CommitSha,
    pub context: String,
}

/// Where an update can go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Delivery {
    /// To the named configured forge.
    Forge { forge: String },
    /// Nowhere: no configured forge serves the host.
    Unmatched,
    /// Nowhere: the host's forges do not allow this repository.
    NotAllowed { forge: String },
}

impl Delivery {
    /// The configured forge's name, when there is one for the host.
    pub fn forge_name(&self) -> Option<&str> {
        match self {
            Delivery::Forge { forge } | Delivery::NotAllowed { forge } => Some(forge),
            Delivery::Unmatched => None,
        }
    }

    /// Whether the update may be sent.
    pub fn is_deliverable(&self) -> bool {
        matches!(self, Delivery::Forge { .. })
    }
}

/// One commit status to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub key: StatusKey,
    pub delivery: Delivery,
    pub state: CommitState,
    pub reason: String,
    pub description: String,
    pub target_url: Option<String>,
    pub resource: ResourceRef,
    /// The state last posted for this key, if any.
    pub previous: Option<CommitState>,
}

/// The updates of one tick, in the order they should be delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub updates: Vec<StatusUpdate>,
    /// Observations that matched the ledger and need no post.
    pub unchanged: usize,
}
