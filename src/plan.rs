//! Which statuses to post: a pure diff of observations against the ledger.
//!
//! An update is planned when the state or reason of a (host, repository, sha, context) differs
//! from what was last posted. A commit last posted as `pending` that its object no longer
//! speaks for (and that never succeeded or failed) is `canceled` as superseded by the commit the
//! object now works on — in the same repository or, when the object moved to another one, in
//! the old repository through its own forge. A pending commit whose object was deleted (or is no
//! longer watched) is `canceled` too, so nothing stays pending forever. Suspended objects make no
//! observations, so nothing is planned for them.

use std::collections::{HashMap, HashSet};

use crate::assess::summary;
use crate::config::{Config, Placeholder, Route};
use crate::flux::ResourceRef;
use crate::flux::revision::CommitSha;
use crate::ledger::Ledger;
use crate::model::StatusKey;
use crate::model::{
    Assessment, CommitState, CommitTarget, Observation, ResourceAssessment, reasons,
};
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

    // context → the object rendering it and the newest commit it speaks for, if any.
    let mut by_context: HashMap<String, (&ResourceRef, Option<&CommitTarget>)> =
        HashMap::with_capacity(assessment.resources.len());

    for resource in &assessment.resources {
        let context = renderer.context(&resource.resource);
        by_context.insert(
            context.clone(),
            (
                &resource.resource,
                resource.observations.first().map(|o| &o.target),
            ),
        );
        if resource.observations.is_empty() {
            continue;
        }
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
    let mut gone: Option<HashMap<String, ResourceRef>> = None;
    for (key, _) in ledger.pending() {
        let finalized = match current.get(&(
            key.host.clone(),
            key.repository.clone(),
            key.context.clone(),
        )) {
            Some((_, shas)) if shas.contains(&key.sha) => continue,
            Some((resource, shas)) => {
                let newest = shas.first().map(CommitSha::short).unwrap_or_default();
                (
                    *resource,
                    reasons::SUPERSEDED,
                    format!("superseded by {newest}"),
                )
            }
            None => match by_context.get(key.context.as_str()) {
                // The object now speaks for commits in another repository.
                Some((resource, Some(newest))) => (
                    *resource,
                    reasons::SUPERSEDED,
                    format!(
                        "superseded by {}@{}",
                        newest.location.repository,
                        newest.sha.short()
                    ),
                ),
                // Suspended, or naming no commit for now: nothing new is said.
                Some((_, None)) => continue,
                None => {
                    let gone =
                        gone.get_or_insert_with(|| gone_objects(ledger, assessment, &renderer));
                    let Some(resource) = gone.get(&key.context) else {
                        continue;
                    };
                    superseded.push(renderer.update(
                        key.clone(),
                        resource,
                        CommitState::Canceled,
                        reasons::DELETED,
                        &format!(
                            "deleted before it applied {}: {} {}/{} is gone from the cluster or no longer watched",
                            key.sha.short(),
                            resource.kind.as_str(),
                            resource.namespace,
                            resource.name
                        ),
                        Some(CommitState::Pending),
                    ));
                    continue;
                }
            },
        };
        let (resource, reason, message) = finalized;
        superseded.push(renderer.update(
            key.clone(),
            resource,
            CommitState::Canceled,
            reason,
            &message,
            Some(CommitState::Pending),
        ));
    }
    superseded.sort_by(|a, b| a.key.cmp(&b.key));
    updates.extend(superseded);
    Plan { updates, unchanged }
}

/// Objects the ledger remembers that the assessment no longer has, by their rendered context.
fn gone_objects(
    ledger: &Ledger,
    assessment: &Assessment,
    renderer: &Renderer<'_>,
) -> HashMap<String, ResourceRef> {
    let present: HashSet<&ResourceRef> = assessment.resources.iter().map(|r| &r.resource).collect();
    let namespaces = &renderer.config.namespaces;
    ledger
        .resources()
        .filter(|(resource, _)| !present.contains(resource))
        // An object in a namespace this exporter does not read may belong to another exporter
        // sharing the ledger: its absence here says nothing about it.
        .filter(|(resource, _)| namespaces.is_empty() || namespaces.contains(&resource.namespace))
        .map(|(resource, _)| (renderer.context(resource), resource.clone()))
        .collect()
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
mod finalize_tests;
#[cfg(test)]
mod tests;
