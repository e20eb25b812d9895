//! Credentials echoed back by hostile or careless servers, and tokens inside Flux condition
//! messages, seen from outside the real binary: no 8 characters of the kubeconfig's bearer
//! token or the forge token reach a log line (text or JSON), `/status`, `/metrics`, the
//! ledger file, or `plan`'s output and error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::exporter::{GITHUB_TOKEN, KUBE_TOKEN, Setup, command};
use support::fake_forges::Reply;
use support::fake_kube::{Fault as KubeFault, FaultAction};
use support::flux_objects::{KUSTOMIZATIONS_PATH, failing, git_repository, kustomization, sha};

/// A token-shaped string a Flux controller could quote in a condition message.
const QUOTED_TOKEN: &str = "ghp_Qz7xK2mW9pL4vB8nR1tY6uE3oI5aS0dF7gH2";

fn assert_no_part_of(text: &str, secret: &str, what: &str) {
    for window in secret.as_bytes().windows(8) {
        let window = String::from_utf8_lossy(window);
        assert!(
            !text.contains(window.as_ref()),
            "{what} holds `{window}` of a credential:\n{text}"
        );
    }
}

/// A `Status` 401 body echoing the bearer token, as a careless proxy in front of the API
/// server might.
fn echoing_401() -> String {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("Unauthorized: token {} (base64 {}) is not valid", KUBE_TOKEN,
            base64_of(KUBE_TOKEN)),
        "reason": "Unauthorized", "code": 401
    })
    .to_string()
}

/// Makes the API server answer every Kustomization list with [`echoing_401`].
fn refuse_with_echo(setup: &Setup) {
    setup.kube.inject(KubeFault {
        path: KUSTOMIZATIONS_PATH.to_string(),
        action: FaultAction::Respond {
            code: 401,
            body: echoing_401(),
        },
        times: None,
    });
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn cluster() -> Vec<Value> {
    vec![
        git_repository("web", "https://github.com/acme/web", &sha('3'), None),
        failing(
            kustomization("web", "web", &sha('3')),
            "ArtifactFailed",
            &format!(
                "fetch failed: GET https://h.example/a.tgz?access_token=hunter2hunter2&x=1 \
                 with Authorization: Bearer {QUOTED_TOKEN}"
            ),
        ),
    ]
}

#[test]
fn a_bearer_token_echoed_by_the_api_server_shows_nowhere_and_a_forge_echo_neither() {
    let setup = Setup::new(cluster());
    let config = setup.write_config("");
    // A 422 that echoes the GitHub token whole, as a header, and in base64.
    setup.github.server.set_outage(Some(Reply::message(
        422,
        &format!(
            "{} Authorization: token {GITHUB_TOKEN} / {}",
            "x".repeat(260),
            base64_of(&format!("x-access-token:{GITHUB_TOKEN}"))
        ),
    )));
    let mut exporter = setup.run(&config, &["--log-level", "debug"]);
    exporter.wait_until("a delivery refused by GitHub", |e| {
        e.get("/status").1.contains("permanent_error").then_some(())
    });
    let (_, delivered_status) = exporter.get("/status");
    let ledger = std::fs::read_to_string(setup.ledger_path()).unwrap_or_default();

    // Now the API server refuses the token and echoes it.
    refuse_with_echo(&setup);
    let failed_status = exporter.wait_until("a failed poll in /status", |e| {
        let (_, body) = e.get("/status");
        body.contains("401 Unauthorized").then_some(body)
    });
    let metrics = exporter.scrape();
    let log = exporter.log();
    for (what, text) in [
        ("/status after a delivery", &delivered_status),
        ("/status after a failed poll", &failed_status),
        ("/metrics", &metrics),
        ("the log", &log),
        ("the ledger file", &ledger),
    ] {
        for secret in [KUBE_TOKEN, GITHUB_TOKEN, QUOTED_TOKEN, "hunter2hunter2"] {
            assert_no_part_of(text, secret, what);
        }
        assert_no_part_of(text, &base64_of(KUBE_TOKEN), what);
    }
    assert!(failed_status.contains("[redacted]"), "{failed_status}");
    // The posted description kept the message, not the credentials in it.
    let posted = setup.github.server.requests();
    let description = posted
        .iter()
        .find_map(|r| r.body["description"].as_str().map(str::to_string))
        .unwrap();
    assert_no_part_of(&description, QUOTED_TOKEN, "the posted description");
}

#[test]
fn plan_names_the_refused_kubeconfig_credential_without_showing_it_in_text_or_json_logs() {
    let setup = Setup::new(cluster());
    refuse_with_echo(&setup);
    let config = setup.write_config("");
    for format in ["text", "json"] {
        let output = command(setup.work.dir.path())
            .args(["--log-format", format, "--log-level", "debug"])
            .args([
                "--config",
                &config,
                "plan",
                "--kubeconfig",
                &setup.kubeconfig,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("the API server did not accept the credentials (401 Unauthorized)"),
            "{stderr}"
        );
        for text in [&stderr, &stdout] {
            assert_no_part_of(text, KUBE_TOKEN, format);
            assert_no_part_of(text, &base64_of(KUBE_TOKEN), format);
        }
    }
}
