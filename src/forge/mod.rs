//! Git forges: which forge hosts a repository, and the building blocks of the publishers that
//! post statuses to them.

pub mod circuit;
pub mod clock;
pub mod credentials;
pub mod http;
mod kind;
mod outcome;
pub mod pacing;
pub mod text;

pub use clock::{Clock, TokioClock};
pub use credentials::{CredentialError, CredentialSources, SecretSource};
pub use http::{Failure, ForgeResponse, RateLimitInfo};
pub use kind::{ForgeKind, UnknownForgeKind};
pub use outcome::{DeliveryOutcome, DeliveryResult};
