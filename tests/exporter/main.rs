//! The exporter loop end to end: `Exporter::tick` in-process against the fake API server and
//! strict fake forges (scripted cluster states, steady state, forge outages, the ConfigMap and
//! file ledgers, leader election, dry runs), and the real binary's `run` and `once` (exit
//! codes, snapshots re-read every tick, SIGHUP, SIGTERM, SIGKILL, overrunning schedules).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod common;

mod credential;
mod dry_run;
mod leader;
mod ledger_configmap;
mod ledger_file;
mod metrics_counting;
mod once_cli;
mod outage;
mod process;
mod run_cli;
mod sequence;
