//! [`RawConfig`] to [`Config`]: one validator per section of `config.yaml`, each naming the
//! fields of its own section in errors.

mod credentials;
mod forges;
mod names;
mod section;
mod selection;
mod service;
mod statuses;

use super::{Config, ConfigError, RawConfig, defaults};
use section::{Section, or_default};

/// Validates every section in the order of `config.yaml`, stopping at the first error.
pub(super) fn validate(raw: RawConfig, file: &str) -> Result<Config, ConfigError> {
    let top = Section::root(file);
    Ok(Config {
        source: file.to_string(),
        cluster: selection::cluster(&top, raw.cluster)?,
        namespaces: selection::namespaces(&top, raw.namespaces)?,
        label_selector: selection::label_selector(&top, raw.label_selector.as_deref())?,
        kinds: selection::kinds(&top, raw.kinds)?,
        schedule: selection::schedule(&top, raw.schedule.as_deref())?,
        schedule_jitter: or_default(raw.schedule_jitter, defaults::SCHEDULE_JITTER),
        statuses: statuses::statuses(&top.child("statuses"), raw.statuses.unwrap_or_default())?,
        forges: forges::forges(&top, raw.forges.unwrap_or_default())?,
        ledger: service::ledger(&top.child("ledger"), raw.ledger.unwrap_or_default())?,
        http: service::http(&top.child("http"), raw.http.unwrap_or_default())?,
        pushgateway: raw
            .pushgateway
            .map(|p| service::pushgateway(&top.child("pushgateway"), p))
            .transpose()?,
        kube: service::kube(&top.child("kube"), raw.kube.unwrap_or_default())?,
        leader_election: service::leader_election(
            &top.child("leaderElection"),
            raw.leader_election.unwrap_or_default(),
        )?,
        shutdown_grace_period: or_default(
            raw.shutdown_grace_period,
            defaults::SHUTDOWN_GRACE_PERIOD,
        ),
    })
}
