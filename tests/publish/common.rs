//! Shared set-up and the checks every forge must pass.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flux_status_exporter::config::Config;
use flux_status_exporter::flux::revision::CommitSha;
use flux_status_exporter::flux::{FluxKind, ResourceRef};
use flux_status_exporter::forge::{
    CredentialSources, DeliveryOutcome, DeliveryPolicy, DeliveryResult, Publishers,
};
use flux_status_exporter::model::CommitState;
use flux_status_exporter::model::StatusKey;
use flux_status_exporter::model::{Delivery, StatusUpdate};
use serde_json::json;

use crate::support::fake_forges::{FakeServer, Fault, ForgeLogic, Reply, SkipClock};

pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
pub const CONTEXT: &str = "flux/prod/Kustomization/flux-system/apps";

/// A delivery policy with reproducible jitter.
pub fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        jitter_seed: Some(7),
        ..DeliveryPolicy::default()
    }
}

/// Validated configuration from YAML.
pub fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// Writes a credential file.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path.display().to_string()
}

/// Publishers for `config` on `clock` with the test policy.
pub fn publishers(config: &Config, clock: Arc<SkipClock>) -> Publishers {
    Publishers::from_config_with(config, &CredentialSources::new(), policy(), clock).unwrap()
}

/// An update routed to `forge`.
pub fn update(forge: &str, host: &str, repository: &str, state: CommitState) -> StatusUpdate {
    StatusUpdate {
        key: StatusKey {
            host: host.into(),
            repository: repository.into(),
            sha: CommitSha::from_hex(SHA).unwrap(),
            context: CONTEXT.into(),
        },
        delivery: Delivery::Forge {
            forge: forge.into(),
        },
        state,
        reason: match state {
            CommitState::Pending => "Progressing",
            CommitState::Success => "ReconciliationSucceeded",
            CommitState::Failure => "HealthCheckFailed",
            CommitState::Canceled => "Superseded",
        }
        .into(),
        description: match state {
            CommitState::Pending => "progressing: Running health checks",
            CommitState::Success => "reconciliation succeeded: Applied revision main@sha1:0123456",
            CommitState::Failure => "health check failed: timeout waiting for Deployment/apps/web",
            CommitState::Canceled => "superseded by 89abcde",
        }
        .into(),
        target_url: None,
        resource: ResourceRef {
            kind: FluxKind::Kustomization,
            namespace: "flux-system".into(),
            name: "apps".into(),
        },
        previous: None,
    }
}

/// All four neutral states.
pub const STATES: [CommitState; 4] = [
    CommitState::Pending,
    CommitState::Success,
    CommitState::Failure,
    CommitState::Canceled,
];

/// Everything logged (at every level) while it lives, on this thread.
pub struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn capture() -> Logs {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = BufferWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        Logs {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }

    /// Fails if any captured line contains `secret`; also checks something was logged.
    pub fn assert_never_contains(&self, secret: &str) {
        let text = self.text();
        assert!(!text.is_empty(), "nothing was logged");
        for line in text.lines() {
            assert!(!line.contains(secret), "credential in a log line: {line}");
        }
    }
}

/// A forge set up against its fake, for the checks every forge must pass.
pub struct Case<L: ForgeLogic> {
    /// The forge entry's `type`.
    pub kind: &'static str,
    pub host: &'static str,
    pub repository: &'static str,
    pub token: &'static str,
    pub fake: fn(&str) -> L,
    /// Appended to the fake's URL to make the forge's `apiUrl`.
    pub api_path: &'static str,
    /// The `credentials:` value for a token file.
    pub credentials: fn(&str) -> String,
    /// An answer the forge gives to a request that is wrong for good.
    pub permanent: Reply,
    /// The outcome's error for `permanent`.
    pub permanent_error: &'static str,
    /// The forge's success status for a created status.
    pub created: u16,
    /// The path and query, as the fake sees it, of the first read-back of [`Case::update`].
    pub read_path: fn() -> String,
}

/// A running case: the fake, the publishers, the clock and the log capture.
pub struct Running<L: ForgeLogic> {
    pub fake: FakeServer<L>,
    pub publishers: Publishers,
    pub clock: Arc<SkipClock>,
    pub logs: Logs,
    pub dir: tempfile::TempDir,
}

impl<L: ForgeLogic> Case<L> {
    /// The configuration of this case's forge pointing at `url`, with `statuses.readBack` as
    /// given.
    pub fn yaml(&self, url: &str, token_path: &str, read_back: bool) -> String {
        format!(
            "cluster: prod\nstatuses:\n  readBack: {read_back}\nforges:\n  - name: {kind}\n    type: {kind}\n    host: {host}\n    apiUrl: {url}{path}\n    credentials: {creds}\n    repositories: [\"{repo}\"]\n    rateLimit: {{perMinute: 6000, perHour: 100000}}\n    requestTimeout: 2s\n",
            kind = self.kind,
            host = self.host,
            path = self.api_path,
            creds = (self.credentials)(token_path),
            repo = self.repository,
        )
    }

    pub async fn start(&self) -> Running<L> {
        self.start_with(false).await
    }

    /// Starts the case with `statuses.readBack` on.
    pub async fn start_reading_back(&self) -> Running<L> {
        self.start_with(true).await
    }

    async fn start_with(&self, read_back: bool) -> Running<L> {
        let logs = Logs::capture();
        let clock = SkipClock::new();
        let fake = FakeServer::start((self.fake)(self.token), clock.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let token_path = secret_file(dir.path(), "token", self.token);
        let config = config(&self.yaml(&fake.url(), &token_path, read_back));
        let publishers = publishers(&config, clock.clone());
        Running {
            fake,
            publishers,
            clock,
            logs,
            dir,
        }
    }

    pub fn update(&self, state: CommitState) -> StatusUpdate {
        update(self.kind, self.host, self.repository, state)
    }
}

/// Publishes one update and returns its outcome.
pub async fn publish_one(publishers: &Publishers, update: StatusUpdate) -> DeliveryOutcome {
    let mut outcomes = publishers.publish(&[update]).await;
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

/// A 502, then success: delivered on the second attempt after a jittered back-off of 0.5-1 s.
pub async fn retries_a_server_error_then_delivers<L: ForgeLogic>(case: Case<L>) {
    let run = case.start().await;
    run.fake
        .inject(Fault::Respond(Reply::message(502, "Bad Gateway")));
    let outcome = publish_one(&run.publishers, case.update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 2);
    assert_eq!(run.fake.requests().len(), 2);
    assert_eq!(run.fake.requests()[0], run.fake.requests()[1]);
    let backoffs = run.clock.sleeps_over(Duration::from_millis(100));
    assert_eq!(backoffs.len(), 1, "{backoffs:?}");
    assert!(
        backoffs[0] >= Duration::from_millis(500) && backoffs[0] <= Duration::from_secs(1),
        "{backoffs:?}"
    );
    run.logs.assert_never_contains(case.token);
}

/// A 429 with `Retry-After: 30`: the next request waits exactly 30 s, then delivers.
pub async fn waits_as_long_as_the_rate_limit_says<L: ForgeLogic>(case: Case<L>) {
    let run = case.start().await;
    run.fake.inject(Fault::Respond(
        Reply::message(429, "Too Many Requests").header("retry-after", 30),
    ));
    let outcome = publish_one(&run.publishers, case.update(CommitState::Success)).await;
    assert_eq!(outcome.result, DeliveryResult::Delivered);
    assert_eq!(outcome.attempts, 2);
    assert_eq!(outcome.http_status, Some(case.created));
    assert_eq!(
        run.clock.sleeps_over(Duration::from_millis(100)),
        vec![Duration::from_secs(30)]
    );
    assert!(outcome.duration >= Duration::from_secs(30));
    run.logs.assert_never_contains(case.token);
}

/// A permanent refusal is reported as such after exactly one request.
pub async fn does_not_retry_a_permanent_error<L: ForgeLogic>(case: Case<L>) {
    let run = case.start().await;
    assert_refused_for_good_at_once(&case, &run, case.permanent.clone()).await;
    run.logs.assert_never_contains(case.token);
}

/// Answers the next post with `refusal`: the case's permanent error, after one request.
async fn assert_refused_for_good_at_once<L: ForgeLogic>(
    case: &Case<L>,
    run: &Running<L>,
    refusal: Reply,
) {
    run.fake.inject(Fault::Respond(refusal));
    let outcome = publish_one(&run.publishers, case.update(CommitState::Failure)).await;
    assert_eq!(
        outcome.result,
        DeliveryResult::PermanentError {
            error: case.permanent_error.into()
        }
    );
    assert_eq!(outcome.attempts, 1);
    assert_eq!(run.fake.requests().len(), 1);
}

/// The same refusal with 100 KB more in its error document: still one request and the same
/// error, cut to what is kept of a message, not a failure to read the answer that is retried.
pub async fn refuses_for_good_when_the_error_document_is_100_kb<L: ForgeLogic>(case: Case<L>) {
    let run = case.start().await;
    let mut refusal = case.permanent.clone();
    let serde_json::Value::Object(fields) = &mut refusal.body else {
        panic!("the case's refusal is not a JSON object: {refusal:?}");
    };
    fields.insert("padding".into(), "x".repeat(100_000).into());
    assert_refused_for_good_at_once(&case, &run, refusal).await;
}

/// Updates for another host, an unconfigured forge, or a repository outside the allowlist are
/// never sent, even when the update claims this forge.
pub async fn never_sends_to_an_unconfigured_host<L: ForgeLogic>(case: Case<L>) {
    let run = case.start().await;
    let mut other_host = case.update(CommitState::Success);
    other_host.key.host = "evil.example.com".into();
    let mut unmatched = case.update(CommitState::Success);
    unmatched.key.host = "git.example.org".into();
    unmatched.delivery = Delivery::Unmatched;
    let mut outside = case.update(CommitState::Success);
    outside.key.repository =
        outside
            .key
            .repository
            .replacen(case.repository.split('/').next().unwrap(), "intruder", 1);
    let mut not_allowed = case.update(CommitState::Success);
    not_allowed.delivery = Delivery::NotAllowed {
        forge: case.kind.into(),
    };
    let outcomes = run
        .publishers
        .publish(&[other_host, unmatched, outside, not_allowed])
        .await;
    let results: Vec<_> = outcomes.iter().map(|o| o.result.clone()).collect();
    assert_eq!(
        results,
        vec![
            DeliveryResult::SkippedUnmatched,
            DeliveryResult::SkippedUnmatched,
            DeliveryResult::SkippedNotAllowed,
            DeliveryResult::SkippedNotAllowed,
        ]
    );
    assert!(outcomes.iter().all(|o| o.attempts == 0));
    assert_eq!(run.fake.requests().len(), 0);
}

/// A forge echoing the credential in an error: neither the outcome, its JSON for `/status`,
/// nor any log line carries it.
pub async fn keeps_the_credential_out_of_errors_and_logs<L: ForgeLogic>(case: Case<L>) {
    let run = case.start().await;
    let echo = format!("credential {} is not valid for this repository", case.token);
    run.fake
        .inject(Fault::Respond(Reply::json(400, json!({ "message": echo }))));
    let outcome = publish_one(&run.publishers, case.update(CommitState::Pending)).await;
    let error = outcome.result.error().unwrap().to_string();
    assert!(!error.contains(case.token), "{error}");
    assert!(error.contains("[redacted]"), "{error}");
    assert!(
        !serde_json::to_string(&outcome)
            .unwrap()
            .contains(case.token)
    );
    assert!(!format!("{outcome:?}").contains(case.token));
    assert!(!format!("{:?}", run.publishers).contains(case.token));
    run.logs.assert_never_contains(case.token);
}

/// Fails if `text` holds 8 consecutive characters of `secret`.
pub fn assert_no_part_of(text: &str, secret: &str, what: &str) {
    for window in secret.as_bytes().windows(8) {
        let window = String::from_utf8_lossy(window);
        assert!(
            !text.contains(window.as_ref()),
            "{what} holds `{window}` of a credential: {text}"
        );
    }
}

/// A forge echoing the credential in every form it was sent in (raw, the whole header, the
/// header's value without its scheme, e.g. the bare base64 of `user:token`, URL-encoded) and
/// at every cut position around the kept message's limit: no 8 characters of any of them
/// reach the outcome, its JSON, or a log line.
pub async fn keeps_every_form_of_the_credential_out_at_every_cut<L: ForgeLogic>(case: Case<L>) {
    let run = case.start().await;
    publish_one(&run.publishers, case.update(CommitState::Pending)).await;
    let sent = run.fake.requests()[0].headers.clone();
    let header = sent
        .get("authorization")
        .or_else(|| sent.get("private-token"))
        .unwrap_or_else(|| panic!("no credential header in {sent:?}"))
        .clone();
    let bare = header
        .split_once(' ')
        .map_or(header.as_str(), |(_, value)| value)
        .to_string();
    let url_encoded: String = case.token.bytes().map(|b| format!("%{b:02X}")).collect();
    let forms = [
        case.token.to_string(),
        header.clone(),
        bare.clone(),
        url_encoded,
    ];
    for form in &forms {
        for pad in [0, 200, 250, 270, 285, 295, 299] {
            let echo = format!("{} Authorization: {form} was refused", "x".repeat(pad));
            run.fake
                .inject(Fault::Respond(Reply::json(422, json!({ "message": echo }))));
            let outcome = publish_one(&run.publishers, case.update(CommitState::Pending)).await;
            let error = outcome.result.error().unwrap().to_string();
            // The commit's SHA may share digits with a test token; it is no credential.
            let json = serde_json::to_string(&outcome)
                .unwrap()
                .replace(SHA, "<sha>");
            for (what, text) in [("error", &error), ("JSON", &json)] {
                assert_no_part_of(text, case.token, what);
                assert_no_part_of(text, &bare, what);
            }
        }
    }
    let logs = run.logs.text().replace(SHA, "<sha>");
    assert_no_part_of(&logs, case.token, "the log");
    assert_no_part_of(&logs, &bare, "the log");
}
