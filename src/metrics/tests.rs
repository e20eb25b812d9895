use super::*;
use crate::flux::{ResourceRef, SourceKind};
use crate::model::RepoLocation;
use crate::model::{Observation, Readiness, ResourceAssessment, ResourceState, reasons};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn resource(
    name: &str,
    state: ResourceState,
    ready: Readiness,
    reason: &str,
) -> ResourceAssessment {
    ResourceAssessment {
        resource: ResourceRef::new(FluxKind::Kustomization, "apps", name),
        state,
        ready,
        reason: reason.into(),
        message: String::new(),
        source: Some((
            SourceKind::GitRepository,
            "flux-system".into(),
            "fleet".into(),
        )),
        repository: Some(RepoLocation {
            host: "github.com".into(),
            repository: "acme/fleet".into(),
        }),
        applied_revision: Some("main@sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into()),
        attempted_revision: Some("main@sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into()),
        source_revision: Some("main@sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into()),
        drift: None,
        ready_since: Some(at("2026-11-22T11:00:00Z")),
        observations: Vec::<Observation>::new(),
        unattributed: None,
    }
}

fn metrics() -> Metrics {
    Metrics::new("prod", "0.1.0", "abc123").unwrap()
}

fn lines_of<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .collect()
}

#[test]
fn per_object_series_carry_the_object_labels_and_exact_values() {
    let m = metrics();
    let mut failing = resource(
        "web",
        ResourceState::Failure,
        Readiness::False,
        "HealthCheckFailed",
    );
    failing.drift = Some(Some(at("2026-11-22T11:30:00Z")));
    let healthy = resource(
        "api",
        ResourceState::Success,
        Readiness::True,
        "ReconciliationSucceeded",
    );
    let assessment = Assessment {
        resources: vec![failing, healthy],
    };
    let mut ledger = Ledger::new();
    ledger.observe(&assessment, at("2026-11-22T11:45:00Z"));
    m.update_objects(Arc::new(assessment), &ledger, &[FluxKind::Kustomization]);
    let text = m.render(at("2026-11-22T12:00:00Z"));
    let web = "cluster=\"prod\",kind=\"Kustomization\",namespace=\"apps\",name=\"web\"";
    let api = "cluster=\"prod\",kind=\"Kustomization\",namespace=\"apps\",name=\"api\"";
    assert_eq!(
        lines_of(&text, "flux_status_resource_ready"),
        [
            format!("flux_status_resource_ready{{{web}}} 0"),
            format!("flux_status_resource_ready{{{api}}} 1")
        ]
    );
    assert_eq!(
        lines_of(&text, "flux_status_resource_state"),
        [
            format!("flux_status_resource_state{{{web},state=\"failure\"}} 1"),
            format!("flux_status_resource_state{{{api},state=\"success\"}} 1")
        ]
    );
    assert_eq!(
        lines_of(&text, "flux_status_resource_info")[0],
        format!(
            "flux_status_resource_info{{{web},source_kind=\"GitRepository\",source_name=\"flux-system/fleet\",repository=\"github.com/acme/fleet\",revision=\"main@sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",attempted_revision=\"main@sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",reason=\"HealthCheckFailed\"}} 1"
        )
    );
    assert_eq!(
        lines_of(&text, "flux_status_revision_drift"),
        [
            format!("flux_status_revision_drift{{{web}}} 1"),
            format!("flux_status_revision_drift{{{api}}} 0")
        ]
    );
    // Drift began at the artifact's time (11:30), 30 minutes before now.
    assert_eq!(
        lines_of(&text, "flux_status_revision_drift_seconds"),
        [
            format!("flux_status_revision_drift_seconds{{{web}}} 1800"),
            format!("flux_status_revision_drift_seconds{{{api}}} 0")
        ]
    );
    // Never seen successful: stale since the Ready condition last changed (11:00).
    assert_eq!(
        lines_of(&text, "flux_status_stale_seconds"),
        [
            format!("flux_status_stale_seconds{{{web}}} 3600"),
            format!("flux_status_stale_seconds{{{api}}} 0")
        ]
    );
    assert_eq!(
        lines_of(&text, "flux_status_failures_total"),
        [format!(
            "flux_status_failures_total{{{web},reason=\"HealthCheckFailed\"}} 1"
        )]
    );
    assert_eq!(
        lines_of(&text, "flux_status_suspended"),
        [
            format!("flux_status_suspended{{{web}}} 0"),
            format!("flux_status_suspended{{{api}}} 0")
        ]
    );
    assert_eq!(
        lines_of(&text, "flux_status_resources"),
        [
            "flux_status_resources{cluster=\"prod\",kind=\"Kustomization\",state=\"pending\"} 0",
            "flux_status_resources{cluster=\"prod\",kind=\"Kustomization\",state=\"success\"} 1",
            "flux_status_resources{cluster=\"prod\",kind=\"Kustomization\",state=\"failure\"} 1",
            "flux_status_resources{cluster=\"prod\",kind=\"Kustomization\",state=\"suspended\"} 0",
        ]
    );
    assert!(
        text.contains(
            "flux_status_build_info{commit=\"abc123\",version=\"0.1.0\",cluster=\"prod\"} 1"
        ),
        "{text}"
    );
}

#[test]
fn series_of_deleted_objects_disappear_with_the_next_update() {
    let m = metrics();
    let both = Assessment {
        resources: vec![
            resource("web", ResourceState::Success, Readiness::True, ""),
            resource("api", ResourceState::Success, Readiness::True, ""),
        ],
    };
    m.update_objects(Arc::new(both), &Ledger::new(), &[FluxKind::Kustomization]);
    assert!(
        m.render(at("2026-11-22T12:00:00Z"))
            .contains("name=\"api\"")
    );
    let one = Assessment {
        resources: vec![resource("web", ResourceState::Success, Readiness::True, "")],
    };
    m.update_objects(Arc::new(one), &Ledger::new(), &[FluxKind::Kustomization]);
    assert!(
        !m.render(at("2026-11-22T12:00:00Z"))
            .contains("name=\"api\"")
    );
}

#[test]
fn label_values_are_escaped() {
    let m = metrics();
    let mut odd = resource(
        "web",
        ResourceState::Pending,
        Readiness::Unknown,
        reasons::QUEUED,
    );
    odd.attempted_revision = Some("a\"b\\c\nd".into());
    m.update_objects(
        Arc::new(Assessment {
            resources: vec![odd],
        }),
        &Ledger::new(),
        &[FluxKind::Kustomization],
    );
    let text = m.render(at("2026-11-22T12:00:00Z"));
    assert!(
        text.contains("attempted_revision=\"a\\\"b\\\\c\\nd\""),
        "{text}"
    );
}

#[test]
fn failure_reasons_are_bounded_per_object() {
    let many = [("A", 5), ("B", 4), ("C", 3), ("D", 2), ("not a reason!", 1)];
    assert_eq!(
        bounded_failures(many.iter().map(|(r, n)| (*r, *n as u64))),
        vec![
            ("A".to_string(), 5),
            ("B".to_string(), 4),
            ("Other".to_string(), 6)
        ]
    );
}

#[test]
fn an_object_has_at_most_ten_series() {
    let m = metrics();
    let mut r = resource(
        "web",
        ResourceState::Failure,
        Readiness::False,
        "BuildFailed",
    );
    r.drift = Some(None);
    let assessment = Assessment { resources: vec![r] };
    let mut ledger = Ledger::new();
    for (i, reason) in ["A", "B", "C", "D", "E"].iter().enumerate() {
        let mut flip = assessment.clone();
        flip.resources[0].reason = reason.to_string();
        flip.resources[0].state = if i % 2 == 0 {
            ResourceState::Failure
        } else {
            ResourceState::Success
        };
        ledger.observe(&flip, at("2026-11-22T12:00:00Z"));
        flip.resources[0].state = ResourceState::Success;
        ledger.observe(&flip, at("2026-11-22T12:00:00Z"));
        flip.resources[0].state = ResourceState::Failure;
        ledger.observe(&flip, at("2026-11-22T12:00:00Z"));
    }
    m.update_objects(Arc::new(assessment), &ledger, &[FluxKind::Kustomization]);
    let text = m.render(at("2026-11-22T12:00:00Z"));
    let series = text.lines().filter(|l| l.contains("name=\"web\"")).count();
    assert!(series <= 10, "{series} series:\n{text}");
}

#[test]
fn exporter_counters_and_histograms_render_with_their_labels() {
    let m = metrics();
    m.record_poll(
        "success",
        Duration::from_millis(300),
        Some(at("2026-11-22T12:00:00Z")),
    );
    m.record_kube_request(
        "kustomizations",
        "list",
        Some(200),
        Duration::from_millis(20),
    );
    m.record_kube_request("kustomizations", "list", None, Duration::from_millis(20));
    m.record_delivery(
        "github",
        "success",
        "delivered",
        Some(Duration::from_millis(50)),
    );
    m.set_rate_limit_remaining("github", Some(4999));
    m.set_ledger_size(3, 512);
    let text = m.render(at("2026-11-22T12:00:00Z"));
    for line in [
        "flux_status_polls_total{outcome=\"success\",cluster=\"prod\"} 1",
        "flux_status_polls_total{outcome=\"failure\",cluster=\"prod\"} 0",
        "flux_status_last_successful_poll_timestamp_seconds{cluster=\"prod\"} 1795348800",
        "flux_status_kube_requests_total{code=\"200\",resource=\"kustomizations\",verb=\"list\",cluster=\"prod\"} 1",
        "flux_status_kube_requests_total{code=\"error\",resource=\"kustomizations\",verb=\"list\",cluster=\"prod\"} 1",
        "flux_status_commit_status_deliveries_total{forge=\"github\",outcome=\"delivered\",state=\"success\",cluster=\"prod\"} 1",
        "flux_status_forge_rate_limit_remaining{forge=\"github\",cluster=\"prod\"} 4999",
        "flux_status_ledger_entries{cluster=\"prod\"} 3",
        "flux_status_ledger_bytes{cluster=\"prod\"} 512",
        "flux_status_poll_duration_seconds_count{cluster=\"prod\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    m.set_rate_limit_remaining("github", None);
    assert!(
        !m.render(at("2026-11-22T12:00:00Z"))
            .contains("flux_status_forge_rate_limit_remaining{")
    );
}

#[test]
fn every_family_has_help_text_and_counters_end_in_total() {
    for (name, kind, help) in FAMILIES {
        assert!(!help.is_empty(), "{name}");
        assert!(name.starts_with("flux_status_"), "{name}");
        assert_eq!(*kind == "counter", name.ends_with("_total"), "{name}");
    }
}

#[test]
fn every_saved_counter_is_restored_into_the_same_series() {
    let first = metrics();
    first.record_delivery("github", "pending", "delivered", None);
    first.record_delivery("github", "success", "retry_later", None);
    first.record_kube_request("kustomizations", "list", Some(200), Duration::ZERO);
    first.record_poll("success", Duration::ZERO, None);
    let saved = first.counter_values();
    assert!(saved.contains(&(
        "flux_status_commit_status_deliveries_total".to_string(),
        vec!["github".into(), "pending".into(), "delivered".into()],
        1
    )));
    let second = metrics();
    for (name, labels, value) in &saved {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        second.restore_counter(name, &labels, *value);
    }
    let mut restored = second.counter_values();
    let mut saved = saved;
    restored.sort();
    saved.sort();
    assert_eq!(restored, saved);
    let now = at("2026-11-22T12:00:00Z");
    let series = |m: &Metrics| -> Vec<String> {
        m.render(now)
            .lines()
            .filter(|l| l.starts_with("flux_status_commit_status_deliveries_total{"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(series(&second), series(&first));
}

#[test]
fn counters_restored_after_this_run_counted_add_the_saved_value() {
    let m = metrics();
    m.record_poll("success", Duration::from_millis(1), None);
    m.add_restored_counter("flux_status_polls_total", &["success"], 41);
    assert!(
        m.render(at("2026-11-22T12:00:00Z"))
            .lines()
            .any(|l| l == "flux_status_polls_total{outcome=\"success\",cluster=\"prod\"} 42")
    );
}

#[test]
fn counters_restored_from_a_previous_run_continue() {
    let m = metrics();
    m.restore_counter("flux_status_polls_total", &["success"], 41);
    m.record_poll("success", Duration::from_millis(1), None);
    assert!(
        m.render(at("2026-11-22T12:00:00Z"))
            .lines()
            .any(|l| l == "flux_status_polls_total{outcome=\"success\",cluster=\"prod\"} 42")
    );
    assert!(m.counter_values().contains(&(
        "flux_status_polls_total".to_string(),
        vec!["success".to_string()],
        42
    )));
}

#[test]
fn counters_with_several_labels_are_restored_under_the_same_labels() {
    let before = metrics();
    before.record_delivery(
        "github",
        "success",
        "delivered",
        Some(Duration::from_millis(5)),
    );
    before.record_kube_request(
        "kustomizations",
        "list",
        Some(200),
        Duration::from_millis(5),
    );
    let after = metrics();
    for (name, labels, value) in before.counter_values() {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        after.restore_counter(&name, &labels, value);
    }
    let text = after.render(at("2026-11-22T12:00:00Z"));
    assert_eq!(
        lines_of(&text, "flux_status_commit_status_deliveries_total"),
        [
            "flux_status_commit_status_deliveries_total{forge=\"github\",outcome=\"delivered\",state=\"success\",cluster=\"prod\"} 1"
        ]
    );
    assert_eq!(
        lines_of(&text, "flux_status_kube_requests_total"),
        [
            "flux_status_kube_requests_total{code=\"200\",resource=\"kustomizations\",verb=\"list\",cluster=\"prod\"} 1"
        ]
    );
}

#[test]
fn the_last_successful_poll_time_is_saved_and_restored_with_the_counters() {
    let m = metrics();
    m.restore_counter(
        "flux_status_last_successful_poll_timestamp_seconds",
        &[],
        1_795_348_800,
    );
    assert!(
        m.render(at("2026-11-22T12:30:00Z")).lines().any(|l| l
            == "flux_status_last_successful_poll_timestamp_seconds{cluster=\"prod\"} 1795348800")
    );
    assert!(m.counter_values().contains(&(
        "flux_status_last_successful_poll_timestamp_seconds".to_string(),
        vec![],
        1_795_348_800
    )));
    // An older saved time never replaces a newer poll.
    m.record_poll(
        "success",
        Duration::from_millis(1),
        Some(at("2026-11-22T13:00:00Z")),
    );
    m.restore_counter(
        "flux_status_last_successful_poll_timestamp_seconds",
        &[],
        1_795_348_800,
    );
    assert!(m.counter_values().contains(&(
        "flux_status_last_successful_poll_timestamp_seconds".to_string(),
        vec![],
        1_795_352_400
    )));
}
