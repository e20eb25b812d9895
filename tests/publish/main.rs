//! Publishing against strict loopback fakes of every forge: the exact requests, limits, auth,
//! retries, rate limits, permanent errors, host binding and secrecy of credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod common;

mod azure_devops;
mod bitbucket_cloud;
mod bitbucket_server;
mod cli;
mod delivery;
mod fakes;
mod gitea;
mod github;
mod github_app;
mod gitlab;
mod kube_secrets;
mod read_back;
