//! Leader election on a `coordination.k8s.io/v1` Lease, for a Deployment with more than one
//! replica: only the leader posts statuses and writes the ledger; every replica serves metrics.
//!
//! Expiry is judged by the local clock from when this replica last saw the Lease change (as
//! client-go does), not by comparing `renewTime` with the local clock, so clock skew between
//! nodes cannot make two replicas leaders at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::clock::{Clock, TokioClock};

/// What this replica knows of the Lease record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Option<String>,
    pub duration: Duration,
    pub transitions: i32,
    pub resource_version: Option<String>,
}

/// What to do with the Lease next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No Lease exists: create it, held by us.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Its holder stopped renewing (or released it): take it over.
    TakeOver,
    /// Someone else holds it and is renewing: follow.
    Follow,
}

/// Decides from the current record, how long ago this replica saw it change, and who we are.
pub fn decide(record: Option<&LeaseRecord>, unchanged_for: Duration, me: &str) -> Action {
    match record {
        None => Action::Create,
        Some(r) if r.holder.as_deref() == Some(me) => Action::Renew,
        Some(r) if r.holder.as_deref().is_none_or(str::is_empty) => Action::TakeOver,
        Some(r) if unchanged_for > r.duration => Action::TakeOver,
        Some(_) => Action::Follow,
    }
}

/// Whether this replica currently leads.
#[derive(Debug, Clone)]
pub struct Leadership {
    leading: Arc<AtomicBool>,
}

impl Leadership {
    /// Always the leader (leader election disabled, or `once`).
    pub fn always() -> Leadership {
        Leadership {
            leading: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }
}

/// Problems talking to the Lease.
#[derive(Debug, thiserror::Error)]
#[error("Lease {namespace}/{name}: {action}: {message}")]
pub struct LeaseError {
    pub namespace: String,
    pub name: String,
    pub action: &'static str,
    pub message: String,
}

/// Runs the election for one Lease.
pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
    leading: Arc<AtomicBool>,
    seen: Option<(LeaseRecord, Instant)>,
    clock: Arc<dyn Clock>,
}

fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity,
        duration: Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64),
        transitions: spec.lease_transitions.unwrap_or(0),
        resource_version: lease.metadata.resource_version.clone(),
    }
}

impl Elector {
    /// An elector for Lease `namespace/name`, campaigning as `identity`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> (Elector, Leadership) {
        let leading = Arc::new(AtomicBool::new(false));
        let elector = Elector {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            leading: Arc::clone(&leading),
            seen: None,
            clock: Arc::new(TokioClock),
        };
        (elector, Leadership { leading })
    }

    /// Judges expiry and paces rounds on `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Elector {
        self.clock = clock;
        self
    }

    fn wall_now(&self) -> jiff::Timestamp {
        jiff::Timestamp::try_from(self.clock.wall()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    fn error(&self, action: &'static str, err: &kube::Error) -> LeaseError {
        let message = match err {
            kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
            other => other.to_string(),
        };
        LeaseError {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            action,
            message,
        }
    }

    fn set_leading(&self, leading: bool) {
        if self.leading.swap(leading, Ordering::SeqCst) != leading {
            if leading {
                tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
            } else {
                tracing::info!(lease = %self.name, identity = %self.identity, "no longer the leader");
            }
        }
    }

    fn spec(&self, transitions: i32, acquire: bool) -> LeaseSpec {
        let now = MicroTime(self.wall_now());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            lease_transitions: Some(transitions),
            renew_time: Some(now.clone()),
            acquire_time: acquire.then_some(now),
            ..Default::default()
        }
    }

    /// One round: read the Lease, then create, renew, take over or follow. Returns whether
    /// this replica leads afterwards.
    pub async fn round(&mut self) -> Result<bool, LeaseError> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error("cannot read", &e))?;
        let record = current.as_ref().map(record_of);
        let unchanged_for = match (&record, &self.seen) {
            (Some(r), Some((seen, at))) if seen == r => {
                self.clock.now().saturating_duration_since(*at)
            }
            _ => Duration::ZERO,
        };
        if let Some(r) = &record
            && self.seen.as_ref().is_none_or(|(seen, _)| seen != r)
        {
            self.seen = Some((r.clone(), self.clock.now()));
        }
        let action = decide(record.as_ref(), unchanged_for, &self.identity);
        let result = match action {
            Action::Follow => Ok(false),
            Action::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(0, true)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(self.error("cannot create", &e)),
                }
            }
            Action::Renew | Action::TakeOver => {
                let mut lease = current.unwrap_or_default();
                let transitions = record.as_ref().map_or(0, |r| r.transitions);
                let previous = lease.spec.clone().unwrap_or_default();
                lease.spec = Some(if action == Action::Renew {
                    LeaseSpec {
                        renew_time: Some(MicroTime(self.wall_now())),
                        ..previous
                    }
                } else {
                    self.spec(transitions + 1, true)
                });
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(stored) => {
                        self.seen = Some((record_of(&stored), self.clock.now()));
                        Ok(true)
                    }
                    // Another replica wrote first: it leads, or will be judged next round.
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(self.error("cannot update", &e)),
                }
            }
        };
        if let Ok(leading) = result {
            self.set_leading(leading);
        }
        result
    }

    /// Campaigns until `shutdown` turns true: a round every third of the lease duration;
    /// leadership is dropped when renewals keep failing for a whole lease duration. On
    /// shutdown a held Lease is released so another replica takes over at once.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let retry = self.duration / 3;
        let mut last_success = self.clock.now();
        loop {
            match self.round().await {
                Ok(_) => last_success = self.clock.now(),
                Err(e) => {
                    tracing::warn!("leader election: {e}");
                    if self.clock.now().saturating_duration_since(last_success) > self.duration {
                        self.set_leading(false);
                    }
                }
            }
            tokio::select! {
                _ = self.clock.sleep(retry) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        self.release().await;
    }

    async fn release(&mut self) {
        if !self.leading.load(Ordering::SeqCst) {
            return;
        }
        self.set_leading(false);
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await
            && lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str())
        {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
            }
            if let Err(e) = self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                tracing::warn!("leader election: {}", self.error("cannot release", &e));
            }
        }
    }
}

/// This replica's identity: the pod name (the downward API sets `POD_NAME`, Kubernetes sets
/// `HOSTNAME`) plus a random suffix, so a restarted container never mistakes the previous
/// one's Lease for its own.
pub fn identity() -> String {
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "flux-status-exporter".to_string());
    format!("{base}_{:08x}", fastrand::u32(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>) -> LeaseRecord {
        LeaseRecord {
            holder: holder.map(String::from),
            duration: Duration::from_secs(15),
            transitions: 2,
            resource_version: Some("7".into()),
        }
    }

    #[test]
    fn the_election_follows_the_client_go_rules() {
        assert_eq!(decide(None, Duration::ZERO, "me"), Action::Create);
        assert_eq!(
            decide(Some(&record(Some("me"))), Duration::from_secs(60), "me"),
            Action::Renew
        );
        assert_eq!(
            decide(Some(&record(Some("other"))), Duration::from_secs(14), "me"),
            Action::Follow
        );
        assert_eq!(
            decide(Some(&record(Some("other"))), Duration::from_secs(16), "me"),
            Action::TakeOver
        );
        assert_eq!(
            decide(Some(&record(None)), Duration::ZERO, "me"),
            Action::TakeOver
        );
        assert_eq!(
            decide(Some(&record(Some(""))), Duration::ZERO, "me"),
            Action::TakeOver
        );
    }

    #[test]
    fn identities_are_unique_per_process_start() {
        assert_ne!(identity(), identity());
    }
}
