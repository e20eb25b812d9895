//! Pushing the metrics of a `once` run to a Prometheus Pushgateway, replacing the group
//! `job/<job>/cluster/<cluster>` atomically (PUT), so metrics of a previous run never linger.

use bytes::Bytes;
use http::Method;

use crate::config::PushgatewayConfig;
use crate::forge::http::HttpClient;

/// A push that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("pushing metrics to {url}: {problem}")]
    Failed { url: String, problem: String },
    #[error("pushing metrics: {0}")]
    Client(String),
}

/// Percent-encodes a grouping label value for a URL path segment.
fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of the group for `cluster`.
pub fn group_url(config: &PushgatewayConfig, cluster: &str) -> String {
    format!(
        "{}/metrics/job/{}/cluster/{}",
        config.url,
        path_segment(&config.job),
        path_segment(cluster)
    )
}

/// Replaces the group with `metrics` (Prometheus text format).
pub async fn push(
    config: &PushgatewayConfig,
    cluster: &str,
    metrics: String,
) -> Result<(), PushError> {
    let client = HttpClient::new().map_err(|e| PushError::Client(e.to_string()))?;
    let url = group_url(config, cluster);
    let sent = client
        .send_bytes(
            Method::PUT,
            &url,
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(metrics),
        )
        .await
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
    use super::*;

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
