//! The HTTP endpoints of the real exporter (`flux-status-exporter run` against the fake API
//! server, delivering to a fake GitHub): `/readyz` flipping with the polls, `/status` for a
//! failing object, credentials kept out of every output, `--listen`, SIGTERM, and the ledger's
//! size after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{TcpListener, TcpStream};

use serde_json::{Value, json};
use support::exporter::{CLUSTER, GITHUB_TOKEN, KUBE_TOKEN, RunningExporter, Setup};
use support::fake_forges::{Fault, Reply};
use support::flux_objects::{
    KUSTOMIZATIONS_PATH, NAMESPACE, failing, git_repository, kustomization, sha,
};
use support::prometheus::value_of;

const WEB_FAILURE: &str = "health check failed after 5m0s: timeout waiting for: [Deployment/web/web status: 'InProgress']";

/// One healthy Kustomization, `web`, on github.com/acme/web.
fn web_cluster() -> Vec<Value> {
    vec![
        git_repository("web", "https://github.com/acme/web", &sha('3'), None),
        kustomization("web", "web", &sha('3')),
    ]
}

fn status(exporter: &RunningExporter) -> Value {
    let (code, body) = exporter.get("/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
}

fn object<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["objects"]
        .as_array()?
        .iter()
        .find(|o| o["name"] == name)
}

fn object_names(status: &Value) -> Vec<String> {
    status["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect()
}

/// The first commit's last delivery result of object `name`, if any.
fn last_delivery(status: &Value, name: &str) -> Option<String> {
    object(status, name)?["commits"][0]["last_delivery"]["result"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn readyz_is_unavailable_until_a_poll_succeeds_and_again_once_polls_have_failed_for_longer_than_allowed()
 {
    let setup = Setup::new(web_cluster());
    // Every Kustomization list fails until the faults are cleared.
    setup.kube.fail(KUSTOMIZATIONS_PATH, 500, None);
    let config = setup.write_config("http:\n  readyMaxAgePeriods: 2\n");
    let mut exporter = setup.run(&config, &[]);

    exporter.wait_until("a failed poll", |e| {
        e.log()
            .contains("poll failed, nothing posted")
            .then_some(())
    });
    assert_eq!(
        exporter.get("/readyz"),
        (503, "not ready: no successful poll yet\n".to_string())
    );
    assert_eq!(exporter.get("/healthz"), (200, "ok\n".to_string()));

    setup.kube.clear_faults();
    exporter.wait_until("/readyz to answer 200", |e| {
        (e.get("/readyz") == (200, "ok\n".to_string())).then_some(())
    });

    setup.kube.fail(KUSTOMIZATIONS_PATH, 500, None);
    let body = exporter.wait_until("/readyz to answer 503 again", |e| {
        let (code, body) = e.get("/readyz");
        (code == 503).then_some(body)
    });
    let age: u64 = body
        .strip_prefix("not ready: last successful poll was ")
        .and_then(|rest| rest.strip_suffix("s ago, more than the allowed 2s\n"))
        .unwrap_or_else(|| panic!("unexpected /readyz answer: {body:?}"))
        .parse()
        .unwrap();
    assert!(age > 2, "{body}");
    assert_eq!(exporter.get("/healthz"), (200, "ok\n".to_string()));

    // /status says the poll failed and why, and still shows the objects last read.
    let failed = exporter.wait_until("/status to report a failed poll", |e| {
        let document = status(e);
        (document["last_poll"]["outcome"] == "failure").then_some(document)
    });
    let error = failed["last_poll"]["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "cannot list kustomizations.kustomize.toolkit.fluxcd.io in all namespaces: the API server kept failing (500)"
        ),
        "{error}"
    );
    assert_eq!(object_names(&failed), ["web"]);
    assert_eq!(object(&failed, "web").unwrap()["state"], "success");
}

#[test]
fn status_shows_a_failing_object_with_its_commit_what_was_posted_and_the_last_delivery_error() {
    let setup = Setup::new(web_cluster());
    let config = setup.write_config("");
    let mut exporter = setup.run(&config, &["--log-level", "debug"]);
    exporter.wait_until("web's success to be delivered", |e| {
        (last_delivery(&status(e), "web").as_deref() == Some("delivered")).then_some(())
    });

    // GitHub refuses the failure for good.
    setup.github.server.inject(Fault::Respond(Reply::json(
        422,
        json!({"message": "Validation Failed", "errors": [{"message": "refused by the test"}]}),
    )));
    setup
        .kube
        .put(failing(
            kustomization("web", "web", &sha('3')),
            "HealthCheckFailed",
            WEB_FAILURE,
        ))
        .unwrap();
    let mut document = exporter.wait_until("web's failure to be refused", |e| {
        let document = status(e);
        (last_delivery(&document, "web").as_deref() == Some("permanent_error")).then_some(document)
    });

    assert_eq!(document["cluster"], CLUSTER);
    assert_eq!(document["leader"], true);
    assert_eq!(document["dry_run"], false);
    assert_eq!(document["last_poll"]["outcome"], "success");
    assert_eq!(document["last_poll"]["error"], Value::Null);
    assert_eq!(document["ledger"]["backend"], "file");
    assert_eq!(document["ledger"]["entries"], 1);
    assert_eq!(
        document["ledger"]["bytes"],
        std::fs::metadata(setup.ledger_path()).unwrap().len()
    );
    assert_eq!(document["deliveries"], json!({"permanent_error": 1}));

    let web = document["objects"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["name"] == "web")
        .unwrap();
    // The times vary from run to run: check their form, then leave them out.
    let commit = &mut web["commits"][0];
    let posted_at = commit["posted"]["at"].take();
    assert!(
        posted_at
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some(),
        "{posted_at}"
    );
    let duration = commit["last_delivery"]["duration"].take();
    assert!(duration.as_f64().is_some_and(|d| d >= 0.0), "{duration}");
    let context = format!("flux/{CLUSTER}/Kustomization/{NAMESPACE}/web");
    assert_eq!(
        *web,
        json!({
            "kind": "Kustomization",
            "namespace": NAMESPACE,
            "name": "web",
            "state": "failure",
            "ready": "false",
            "reason": "HealthCheckFailed",
            "message": WEB_FAILURE,
            "repository": "github.com/acme/web",
            "unattributed": null,
            "commits": [{
                "host": "github.com",
                "repository": "acme/web",
                "sha": sha('3'),
                "context": context,
                "state": "failure",
                "reason": "HealthCheckFailed",
                // A refusal for good is recorded as posted, so it is not retried every poll.
                "posted": {"state": "failure", "reason": "HealthCheckFailed", "at": null},
                "last_delivery": {
                    "key": {"host": "github.com", "repository": "acme/web", "sha": sha('3'), "context": context},
                    "forge": "github",
                    "state": "failure",
                    "reason": "HealthCheckFailed",
                    "result": "permanent_error",
                    "error": "github answered 422: Validation Failed; refused by the test",
                    "http_status": 422,
                    "duration": null,
                    "attempts": 1,
                },
            }],
        })
    );

    // No credential in any output, even at debug level.
    let metrics = exporter.scrape();
    let (_, status_text) = exporter.get("/status");
    let log = exporter.log();
    assert!(log.contains("DEBUG"), "the log is at debug level:\n{log}");
    for secret in [GITHUB_TOKEN, KUBE_TOKEN] {
        assert!(!status_text.contains(secret), "/status shows {secret}");
        assert!(!metrics.contains(secret), "/metrics shows {secret}");
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}

#[test]
fn listen_overrides_the_configured_address_and_sigterm_stops_the_server() {
    let setup = Setup::new(web_cluster());
    // The configured address is taken, so the exporter can only start if --listen wins.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_address = taken.local_addr().unwrap();
    let config = setup.write_config(&format!("http:\n  listen: {taken_address}\n"));
    let mut exporter = setup.run(&config, &[]);
    let address = exporter.address();
    assert_ne!(address, taken_address);
    assert_eq!(address.ip().to_string(), "127.0.0.1");
    assert_eq!(exporter.get("/healthz"), (200, "ok\n".to_string()));
    exporter.wait_until("a successful poll", |e| {
        (value_of(
            &e.scrape(),
            "flux_status_polls_total",
            &[("outcome", "success")],
        ) != "0")
            .then_some(())
    });

    let exit = exporter.terminate();
    assert!(exit.success(), "{exit}; log:\n{}", exporter.log());
    assert!(
        exporter.log().contains("shutting down"),
        "{}",
        exporter.log()
    );
    assert!(
        TcpStream::connect(address).is_err(),
        "{address} still accepts connections"
    );
}

#[test]
fn the_ledger_size_is_reported_after_a_restart_before_anything_changes() {
    let setup = Setup::new(web_cluster());
    let config = setup.write_config("");
    let mut first = setup.run(&config, &[]);
    first.wait_until("the ledger to hold web's status", |e| {
        (value_of(&e.scrape(), "flux_status_ledger_entries", &[]) == "1").then_some(())
    });
    assert!(first.terminate().success());
    let stored = std::fs::read(setup.ledger_path()).unwrap();

    let mut second = setup.run(&config, &[]);
    let scrape = second.wait_until("a successful poll after the restart", |e| {
        let scrape = e.scrape();
        (value_of(
            &scrape,
            "flux_status_polls_total",
            &[("outcome", "success")],
        ) != "0")
            .then_some(scrape)
    });
    // Nothing changed, so nothing was written: the size is the one read at start.
    assert_eq!(std::fs::read(setup.ledger_path()).unwrap(), stored);
    assert_eq!(value_of(&scrape, "flux_status_ledger_entries", &[]), "1");
    assert_eq!(
        value_of(&scrape, "flux_status_ledger_bytes", &[]),
        stored.len().to_string()
    );
}
