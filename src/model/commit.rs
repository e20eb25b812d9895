//! Commits and where they live: the neutral states a commit status can have, and the repository
//! and sha a status is about.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::flux::revision::CommitSha;

/// The neutral commit-status states, mapped to each forge's vocabulary by its publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Canceled,
}

impl CommitState {
    /// Lower-case name, as in JSON output and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
            CommitState::Canceled => "canceled",
        }
    }
}

impl fmt::Display for CommitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repository on a forge host, named as that forge's API names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoLocation {
    pub host: String,
    /// `owner/repo`, `group/sub/project`, `org/project/repo` (Azure DevOps) or
    /// `PROJECT/slug` (Bitbucket Server).
    pub repository: String,
}

impl fmt::Display for RepoLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)
    }
}

/// A git commit in a repository on a forge host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitTarget {
    pub location: RepoLocation,
    pub sha: CommitSha,
}
