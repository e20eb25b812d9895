//! Sources and Kustomizations by namespace and name, and clone URLs to repositories.

use std::collections::HashMap;

use crate::cluster::Snapshot;
use crate::config::Config;
use crate::flux::repo_url::{RepoUrl, RepoUrlError};
use crate::flux::{GitRepository, HelmChart, Kustomization, OciRepository};
use crate::model::RepoLocation;

pub(super) type Key<'a> = (&'a str, &'a str);

pub(super) struct Index<'a> {
    pub(super) git: HashMap<Key<'a>, &'a GitRepository>,
    pub(super) oci: HashMap<Key<'a>, &'a OciRepository>,
    pub(super) charts: HashMap<Key<'a>, &'a HelmChart>,
    pub(super) buckets: HashMap<Key<'a>, ()>,
    pub(super) kustomizations: HashMap<Key<'a>, &'a Kustomization>,
}

impl<'a> Index<'a> {
    pub(super) fn new(snapshot: &'a Snapshot) -> Self {
        fn key<'b>(m: &'b crate::flux::ObjectMeta) -> Key<'b> {
            (m.namespace.as_str(), m.name.as_str())
        }
        Index {
            git: snapshot
                .git_repositories
                .iter()
                .map(|o| (key(&o.metadata), o))
                .collect(),
            oci: snapshot
                .oci_repositories
                .iter()
                .map(|o| (key(&o.metadata), o))
                .collect(),
            charts: snapshot
                .helm_charts
                .iter()
                .map(|o| (key(&o.metadata), o))
                .collect(),
            buckets: snapshot
                .buckets
                .iter()
                .map(|o| (key(&o.metadata), ()))
                .collect(),
            kustomizations: snapshot
                .kustomizations
                .iter()
                .map(|o| (key(&o.metadata), o))
                .collect(),
        }
    }
}

/// The repository a clone URL names, on the forge configured for its host.
pub(super) fn locate(url: &str, config: &Config) -> Result<RepoLocation, RepoUrlError> {
    let parsed = RepoUrl::parse(url)?;
    parsed.locate(config.forge_kind_for_host(&parsed.host))
}
