//! The vocabulary every layer shares: commits, Flux objects' assessments, commit statuses and
//! forge kinds with the profile of each (hosts, API URLs, credentials, limits). Plain data with no I/O; it imports nothing of the crate but `flux/`, so that the
//! deciding modules (`assess`, `plan`) and the I/O edges (`forge`, `ledger`, `app`) can all
//! depend on it without depending on each other.

pub mod commit;
pub mod forge;
pub mod outcome;
pub mod profile;
pub mod resource;
pub mod status;

pub use commit::{CommitState, CommitTarget, RepoLocation};
pub use forge::{ForgeKind, UnknownForgeKind};
pub use outcome::{DeliveryOutcome, DeliveryResult};
pub use profile::ForgeProfile;
pub use resource::{
    Assessment, Observation, Readiness, ResourceAssessment, ResourceState, reasons,
};
pub use status::{Delivery, Plan, StatusKey, StatusUpdate};
