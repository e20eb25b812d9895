//! flux-status-exporter: posts Flux reconciliation results as git commit statuses and exports
//! them as Prometheus metrics.
//!
//! One tick is `observe → assess → plan → publish`: [`cluster`] reads a [`cluster::Snapshot`],
//! [`assess`] turns it into observations about commits, [`plan`] compares them with the
//! [`ledger`] of what was last posted, and the forge publishers post only the changes.

pub mod account;
pub mod app;
pub mod assess;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod files;
pub mod flux;
pub mod forge;
pub mod leader;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod pushgateway;
pub mod redact;
pub mod report;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod status;
pub mod version;
