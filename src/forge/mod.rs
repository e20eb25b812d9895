//! Git forges: which forge hosts a repository, and (later) the publishers that post to them.

mod kind;

pub use kind::{ForgeKind, UnknownForgeKind};
