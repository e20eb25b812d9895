//! Pushing the metrics of a `once` run to a Prometheus Pushgateway, replacing the group
//! `job/<job>/cluster/<cluster>` atomically (PUT), so metrics of a previous run never linger.

use std::time::Duration;

use bytes::Bytes;
use http::Method;

use crate::config::PushgatewayConfig;
use crate::forge::http::HttpClient;
use crate::forge::text::encode_segment;

/// A push that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("pushing metrics to {url}: {problem}")]
    Failed { url: String, problem: String },
    #[error("pushing metrics: {0}")]
    Client(String),
}

/// The URL of the group for `cluster`.
pub fn group_url(config: &PushgatewayConfig, cluster: &str) -> String {
    format!(
        "{}/metrics/job/{}/cluster/{}",
        config.url,
        encode_segment(&config.job),
        encode_segment(cluster)
    )
}

/// How long a push may take before `once` gives up on it: a Pushgateway that accepts the
/// connection but never answers must not hold the CronJob's run (and, with
/// `concurrencyPolicy: Forbid`, every later run) forever.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Replaces the group with `metrics` (Prometheus text format).
pub async fn push(
    config: &PushgatewayConfig,
    cluster: &str,
    metrics: String,
) -> Result<(), PushError> {
    push_within(config, cluster, metrics, PUSH_TIMEOUT).await
}

async fn push_within(
    config: &PushgatewayConfig,
    cluster: &str,
    metrics: String,
    timeout: Duration,
) -> Result<(), PushError> {
    let client = HttpClient::new().map_err(|e| PushError::Client(e.to_string()))?;
    let url = group_url(config, cluster);
    let send = client.send_bytes(
        Method::PUT,
        &url,
        "text/plain; version=0.0.4; charset=utf-8",
        Bytes::from(metrics),
    );
    let sent = match tokio::time::timeout(timeout, send).await {
        Ok(sent) => sent.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f64())),
    }
    .map_err(|problem| PushError::Failed {
        url: url.clone(),
        problem,
    })?;
    match sent {
        (200..=299, _) => Ok(()),
        (status, body) => {
            let text = String::from_utf8_lossy(&body);
            let first = text.lines().next().unwrap_or("").trim();
            Err(PushError::Failed {
                url,
                problem: format!("the Pushgateway answered {status}: {first}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_pushgateway_that_never_answers_is_given_up_on_with_a_clear_error() {
        // Accepts connections (the kernel's backlog does) but never reads or answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = PushgatewayConfig {
            url: format!("http://{}", silent.local_addr().unwrap()),
            job: "flux-status-exporter".into(),
        };
        let push = push_within(
            &config,
            "prod",
            "flux_status_ledger_entries 0\n".into(),
            Duration::from_millis(200),
        );
        // Without its own time limit the push would wait here for ever.
        let error = tokio::time::timeout(Duration::from_secs(60), push)
            .await
            .expect("the push gives up by itself")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "pushing metrics to {}/metrics/job/flux-status-exporter/cluster/prod: no answer within 0.2s",
                config.url
            )
        );
    }

    #[test]
    fn the_group_is_job_and_cluster_with_values_escaped() {
        let config = PushgatewayConfig {
            url: "http://pushgateway:9091".into(),
            job: "flux status".into(),
        };
        assert_eq!(
            group_url(&config, "prod-eu.1"),
            "http://pushgateway:9091/metrics/job/flux%20status/cluster/prod-eu.1"
        );
    }
}
