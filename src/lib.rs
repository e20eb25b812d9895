//! flux-status-exporter: posts Flux reconciliation results as git commit statuses.
