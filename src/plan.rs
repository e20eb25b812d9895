//! Which statuses to post: a pure diff of observations against the ledger.
//!
//! An update is planned when the state or reason of a (host, repository, sha, context) differs
//! from what was last posted. A commit last posted as `pending` that its object no longer
//! speaks for (and that never succeeded or failed) is `canceled` as superseded by the commit the
//! object now works on. Suspended objects make no observations, so nothing is planned for them.

use std::collections::{HashMap, HashSet};

use crate::assess::summary;
use crate::config::{Config, Placeholder, Route};
use crate::flux::ResourceRef;
use crate::flux::revision::CommitSha;
use crate::ledger::Ledger;
use crate::model::StatusKey;
use crate::model::{Assessment, CommitState, Observation, ResourceAssessment, reasons};
use crate::model::{Delivery, Plan, StatusUpdate};

struct Renderer<'a> {
    config: &'a Config,
}

impl Renderer<'_> {
    fn context(&self, resource: &ResourceRef) -> String {
        let kind = resource.kind.as_str();
        self.config.statuses.context.render(|p| match p {
            Placeholder::Cluster => &self.config.cluster,
            Placeholder::Kind => kind,
            Placeholder::Namespace => &resource.namespace,
            Placeholder::Name => &resource.name,
            _ => "",
        })
    }

    fn description(
        &self,
        resource: &ResourceRef,
        sha: CommitSha,
        state: CommitState,
        reason: &str,
        message: &str,
    ) -> String {
        let short = sha.short();
        let words = crate::assess::reason_in_words(reason);
        let summary = summary(reason, message);
        let text = self.config.statuses.description.render(|p| match p {
            Placeholder::Cluster => &self.config.cluster,
            Placeholder::Kind => resource.kind.as_str(),
            Placeholder::Namespace => &resource.namespace,
            Placeholder::Name => &resource.name,
            Placeholder::ShortSha => &short,
            Placeholder::State => state.as_str(),
            Placeholder::Reason => reason,
            Placeholder::ReasonText => &words,
            Placeholder::Message => message,
            Placeholder::Summary => &summary,
            _ => "",
        });
        // Descriptions are one line on every forge.
        text.replace(['\n', '\r'], " ").trim().to_string()
    }

    fn target_url(&self, resource: &ResourceRef, key: &StatusKey) -> Option<String> {
        let template = self.config.statuses.target_url.as_ref()?;
        let sha = key.sha.to_hex();
        let short = key.sha.short();
        Some(template.render(|p| match p {
            Placeholder::Cluster => &self.config.cluster,
            Placeholder::Kind => resource.kind.as_str(),
            Placeholder::Namespace => &resource.namespace,
            Placeholder::Name => &resource.name,
            Placeholder::Sha => &sha,
            Placeholder::ShortSha => &short,
            Placeholder::Host => &key.host,
            Placeholder::Repository => &key.repository,
            _ => "",
        }))
    }

    fn delivery(&self, key: &StatusKey) -> Delivery {
        let location = crate::model::RepoLocation {
            host: key.host.clone(),
            repository: key.repository.clone(),
        };
        match self.config.route(&location) {
            Route::Forge(f) => Delivery::Forge {
                forge: f.name.clone(),
            },
            Route::NotAllowed(f) => Delivery::NotAllowed {
                forge: f.name.clone(),
            },
            Route::Unmatched => Delivery::Unmatched,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        key: StatusKey,
        resource: &ResourceRef,
        state: CommitState,
        reason: &str,
        message: &str,
        previous: Option<CommitState>,
    ) -> StatusUpdate {
        StatusUpdate {
            delivery: self.delivery(&key),
            description: self.description(resource, key.sha, state, reason, message),
            target_url: self.target_url(resource, &key),
            state,
            reason: reason.to_string(),
            resource: resource.clone(),
            previous,
            key,
        }
    }
}

/// Compares the assessment with the ledger and returns the updates to post.
pub fn plan(assessment: &Assessment, ledger: &Ledger, config: &Config) -> Plan {
    let renderer = Renderer { config };
    let mut updates = Vec::new();
    let mut unchanged = 0;
    let mut seen: HashSet<StatusKey> = HashSet::new();
    // (host, repository, context) → the object and the commits it now speaks for, newest first.
    let mut current: HashMap<(String, String, String), (&ResourceRef, Vec<CommitSha>)> =
        HashMap::new();

    for resource in &assessment.resources {
        if resource.observations.is_empty() {
            continue;
        }
        let context = renderer.context(&resource.resource);
        for observation in &resource.observations {
            let key = key_of(observation, &context);
            current
                .entry((key.host.clone(), key.repository.clone(), context.clone()))
                .or_insert_with(|| (&resource.resource, Vec::new()))
                .1
                .push(key.sha);
            if !seen.insert(key.clone()) {
                continue;
            }
            let previous = ledger.get(&key);
            if previous
                .is_some_and(|p| p.state == observation.state && p.reason == observation.reason)
            {
                unchanged += 1;
                continue;
            }
            updates.push(update_for(
                &renderer,
                resource,
                observation,
                key,
                previous.map(|p| p.state),
            ));
        }
    }

    let mut superseded: Vec<StatusUpdate> = Vec::new();
    for (key, _) in ledger.pending() {
        let Some((resource, shas)) = current.get(&(
            key.host.clone(),
            key.repository.clone(),
            key.context.clone(),
        )) else {
            continue;
        };
        if shas.contains(&key.sha) {
            continue;
        }
        let newest = shas.first().map(CommitSha::short).unwrap_or_default();
        let message = format!("superseded by {newest}");
        superseded.push(renderer.update(
            key.clone(),
            resource,
            CommitState::Canceled,
            reasons::SUPERSEDED,
            &message,
            Some(CommitState::Pending),
        ));
    }
    superseded.sort_by(|a, b| a.key.cmp(&b.key));
    updates.extend(superseded);
    Plan { updates, unchanged }
}

/// The status context of an object, as configured.
pub fn context_for(resource: &ResourceRef, config: &Config) -> String {
    Renderer { config }.context(resource)
}

/// The keys of every status the assessment speaks for, with contexts rendered as `plan`
/// renders them: what ledger pruning must keep.
pub fn observed_keys(assessment: &Assessment, config: &Config) -> HashSet<StatusKey> {
    let renderer = Renderer { config };
    let mut keys = HashSet::new();
    for resource in &assessment.resources {
        if resource.observations.is_empty() {
            continue;
        }
        let context = renderer.context(&resource.resource);
        keys.extend(resource.observations.iter().map(|o| key_of(o, &context)));
    }
    keys
}

fn key_of(observation: &Observation, context: &str) -> StatusKey {
    StatusKey {
        host: observation.target.location.host.clone(),
        repository: observation.target.location.repository.clone(),
        sha: observation.target.sha,
        context: context.to_string(),
    }
}

fn update_for(
    renderer: &Renderer<'_>,
    resource: &ResourceAssessment,
    observation: &Observation,
    key: StatusKey,
    previous: Option<CommitState>,
) -> StatusUpdate {
    renderer.update(
        key,
        &resource.resource,
        observation.state,
        &observation.reason,
        &observation.message,
        previous,
    )
}

#[cfg(test)]
mod tests;
