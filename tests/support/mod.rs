//! Code shared by the integration tests. Each test binary compiles this module on its own and
//! uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod bench;
pub mod crd_schema;
pub mod exporter;
pub mod fake_forges;
pub mod fake_kube;
pub mod fleet;
pub mod flux_objects;
pub mod grafana;
pub mod prometheus;
pub mod promql;
pub mod rules;
pub mod synthetic;
