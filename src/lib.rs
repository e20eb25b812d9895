//! flux-status-exporter: posts Flux reconciliation results as git commit statuses and exports
//! them as Prometheus metrics.

pub mod cluster;
pub mod config;
pub mod flux;
pub mod forge;
pub mod secret;
