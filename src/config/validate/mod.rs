//! [`RawConfig`] to [`Config`]: one validator per section of `config.yaml`, each naming the
//! fields of its own section in errors.

mod credentials;
mod forges;
mod names;
mod selection;
mod service;
mod statuses;

use std::fmt::Display;
use std::time::Duration;

use super::{Config, ConfigError, HumanDuration, RawConfig, defaults};

/// A section of `config.yaml` (`ledger`, `forges[0]`, `forges[0].credentials`, or the top
/// level): the file and field path every error inside it names.
#[derive(Debug, Clone)]
struct Section<'a> {
    file: &'a str,
    path: String,
}

impl<'a> Section<'a> {
    /// The top level of `file`.
    fn root(file: &'a str) -> Self {
        Section {
            file,
            path: String::new(),
        }
    }

    /// The section `name` inside this one.
    fn child(&self, name: impl Display) -> Section<'a> {
        Section {
            file: self.file,
            path: self.field(name),
        }
    }

    /// The path of field `name` of this section.
    fn field(&self, name: impl Display) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Field `name` of this section is wrong.
    fn invalid(&self, name: impl Display, problem: impl Display) -> ConfigError {
        self.invalid_at(self.field(name), problem)
    }

    /// This section as a whole is wrong.
    fn invalid_here(&self, problem: impl Display) -> ConfigError {
        self.invalid_at(self.path.clone(), problem)
    }

    fn invalid_at(&self, field: String, problem: impl Display) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            field,
            problem: problem.to_string(),
        }
    }
}

fn or_default(value: Option<HumanDuration>, default: Duration) -> Duration {
    value.map_or(default, |d| d.0)
}

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
