//! What is true of each commit: a pure function from a [`Snapshot`] to observations.
//!
//! Follows the truth table in the README ("How statuses are decided"): each Kustomization and
//! HelmRelease speaks for one or more commits, and for each of them the object's conditions
//! say whether the commit is queued, reconciling, applied and healthy, or failed.
//!
//! `index` looks objects up by name, `conditions` reads an object's conditions into a verdict,
//! and `kustomization` and `helm_release` name the commits each kind speaks for.

mod conditions;
mod helm_release;
mod index;
mod kustomization;
mod words;

pub use words::{reason_in_words, summary};

use crate::cluster::Snapshot;
use crate::config::Config;
use crate::flux::FluxKind;
use crate::model::Assessment;
use helm_release::assess_helm_release;
use index::Index;
use kustomization::assess_kustomization;

/// Assesses every Kustomization and HelmRelease of the configured kinds.
pub fn assess(snapshot: &Snapshot, config: &Config) -> Assessment {
    let index = Index::new(snapshot);
    let mut resources =
        Vec::with_capacity(snapshot.kustomizations.len() + snapshot.helm_releases.len());
    if config.kinds.contains(&FluxKind::Kustomization) {
        for k in &snapshot.kustomizations {
            resources.push(assess_kustomization(k, &index, config));
        }
    }
    if config.kinds.contains(&FluxKind::HelmRelease) {
        for h in &snapshot.helm_releases {
            resources.push(assess_helm_release(h, &index, config));
        }
    }
    Assessment { resources }
}

#[cfg(test)]
pub(crate) mod tests;
