use super::*;
use crate::flux::FluxKind;
use crate::flux::revision::CommitSha;
use crate::model::{Readiness, ResourceAssessment};

fn key(sha: char, context: &str) -> StatusKey {
    StatusKey {
        host: "github.com".into(),
        repository: "acme/app".into(),
        sha: CommitSha::from_hex(&sha.to_string().repeat(40)).unwrap(),
        context: context.into(),
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn resource(
    name: &str,
    state: ResourceState,
    reason: &str,
    drift: Option<Option<Timestamp>>,
) -> ResourceAssessment {
    ResourceAssessment {
        resource: ResourceRef::new(FluxKind::Kustomization, "apps", name),
        state,
        ready: Readiness::Unknown,
        reason: reason.into(),
        message: String::new(),
        source: None,
        repository: None,
        applied_revision: None,
        attempted_revision: None,
        source_revision: None,
        drift,
        ready_since: None,
        observations: vec![],
        unattributed: None,
    }
}

fn assessment(resources: Vec<ResourceAssessment>) -> Assessment {
    Assessment { resources }
}

#[test]
fn recording_replaces_the_previous_state_and_marks_the_ledger_dirty_only_on_change() {
    let mut ledger = Ledger::new();
    let t = at("2026-11-22T10:00:00.750Z");
    ledger.record(key('a', "c"), CommitState::Pending, "Progressing", t);
    assert!(ledger.is_dirty());
    ledger.mark_saved();
    ledger.record(key('a', "c"), CommitState::Pending, "Progressing", t);
    assert!(
        !ledger.is_dirty(),
        "recording the same thing again changes nothing"
    );
    ledger.record(
        key('a', "c"),
        CommitState::Success,
        "ReconciliationSucceeded",
        t,
    );
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        ledger.get(&key('a', "c")).unwrap().state,
        CommitState::Success
    );
    assert_eq!(
        ledger.get(&key('a', "c")).unwrap().posted_at,
        at("2026-11-22T10:00:00Z")
    );
    assert_eq!(ledger.pending().count(), 0);
}

#[test]
fn failures_are_counted_on_each_transition_into_failure_only() {
    let mut ledger = Ledger::new();
    let t = at("2026-11-22T10:00:00Z");
    let r = ResourceRef::new(FluxKind::Kustomization, "apps", "web");
    for (state, reason) in [
        (ResourceState::Success, "ReconciliationSucceeded"),
        (ResourceState::Failure, "BuildFailed"),
        (ResourceState::Failure, "BuildFailed"),
        (ResourceState::Failure, "HealthCheckFailed"),
        (ResourceState::Pending, "Progressing"),
        (ResourceState::Failure, "HealthCheckFailed"),
    ] {
        ledger.observe(&assessment(vec![resource("web", state, reason, None)]), t);
    }
    let failures = &ledger.resource(&r).unwrap().failures;
    assert_eq!(
        failures,
        &BTreeMap::from([
            ("BuildFailed".to_string(), 1),
            ("HealthCheckFailed".to_string(), 1)
        ])
    );
}

#[test]
fn an_object_first_seen_failing_counts_one_failure() {
    let mut ledger = Ledger::new();
    ledger.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Failure,
            "BuildFailed",
            None,
        )]),
        at("2026-11-22T10:00:00Z"),
    );
    let r = ResourceRef::new(FluxKind::Kustomization, "apps", "web");
    assert_eq!(
        ledger.resource(&r).unwrap().failures.get("BuildFailed"),
        Some(&1)
    );
}

#[test]
fn drift_keeps_its_first_start_until_it_ends() {
    let mut ledger = Ledger::new();
    let r = ResourceRef::new(FluxKind::Kustomization, "apps", "web");
    let artifact_time = Some(at("2026-11-22T09:00:00Z"));
    ledger.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Pending,
            "Queued",
            Some(artifact_time),
        )]),
        at("2026-11-22T10:00:00Z"),
    );
    ledger.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Pending,
            "Queued",
            Some(Some(at("2026-11-22T09:30:00Z"))),
        )]),
        at("2026-11-22T10:01:00Z"),
    );
    assert_eq!(
        ledger.resource(&r).unwrap().drift,
        Some(DriftRecord {
            since: at("2026-11-22T09:00:00Z")
        })
    );
    ledger.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Success,
            "ReconciliationSucceeded",
            None,
        )]),
        at("2026-11-22T10:02:00Z"),
    );
    assert_eq!(ledger.resource(&r).unwrap().drift, None);
    ledger.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Pending,
            "Queued",
            Some(None),
        )]),
        at("2026-11-22T10:03:00Z"),
    );
    assert_eq!(
        ledger.resource(&r).unwrap().drift,
        Some(DriftRecord {
            since: at("2026-11-22T10:03:00Z")
        }),
        "no artifact time: since first seen"
    );
}

#[test]
fn losing_success_is_remembered_until_success_returns() {
    let mut ledger = Ledger::new();
    let r = ResourceRef::new(FluxKind::Kustomization, "apps", "web");
    ledger.observe(
        &assessment(vec![resource("web", ResourceState::Success, "", None)]),
        at("2026-11-22T10:00:00Z"),
    );
    ledger.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Failure,
            "BuildFailed",
            None,
        )]),
        at("2026-11-22T10:05:00Z"),
    );
    ledger.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Pending,
            "Progressing",
            None,
        )]),
        at("2026-11-22T10:06:00Z"),
    );
    assert_eq!(
        ledger.resource(&r).unwrap().left_success_at,
        Some(at("2026-11-22T10:05:00Z"))
    );
    ledger.observe(
        &assessment(vec![resource("web", ResourceState::Success, "", None)]),
        at("2026-11-22T10:07:00Z"),
    );
    assert_eq!(ledger.resource(&r).unwrap().left_success_at, None);
}

#[test]
fn an_idle_tick_changes_nothing() {
    let mut ledger = Ledger::new();
    let a = assessment(vec![resource(
        "web",
        ResourceState::Success,
        "ReconciliationSucceeded",
        None,
    )]);
    ledger.observe(&a, at("2026-11-22T10:00:00Z"));
    ledger.mark_saved();
    ledger.observe(&a, at("2026-11-22T10:01:00Z"));
    assert!(!ledger.is_dirty());
}

#[test]
fn pruning_keeps_recent_in_use_and_present_records() {
    let mut ledger = Ledger::new();
    ledger.record(
        key('a', "c"),
        CommitState::Success,
        "",
        at("2026-10-01T00:00:00Z"),
    );
    ledger.record(
        key('b', "c"),
        CommitState::Success,
        "",
        at("2026-10-01T00:00:00Z"),
    );
    ledger.record(
        key('c', "c"),
        CommitState::Success,
        "",
        at("2026-11-21T00:00:00Z"),
    );
    ledger.observe(
        &assessment(vec![
            resource("gone", ResourceState::Success, "", None),
            resource("kept", ResourceState::Success, "", None),
        ]),
        at("2026-10-01T00:00:00Z"),
    );
    ledger.observe(
        &assessment(vec![resource("kept", ResourceState::Success, "", None)]),
        at("2026-10-02T00:00:00Z"),
    );
    let dropped = ledger.prune(at("2026-11-01T00:00:00Z"), |k| *k == key('b', "c"));
    assert_eq!(dropped, 2);
    assert!(ledger.get(&key('a', "c")).is_none());
    assert!(ledger.get(&key('b', "c")).is_some());
    assert!(ledger.get(&key('c', "c")).is_some());
    assert!(
        ledger
            .resource(&ResourceRef::new(FluxKind::Kustomization, "apps", "gone"))
            .is_none()
    );
    assert!(
        ledger
            .resource(&ResourceRef::new(FluxKind::Kustomization, "apps", "kept"))
            .is_some()
    );
}

#[test]
fn merging_keeps_the_newest_post_and_the_larger_failure_count() {
    let mut ours = Ledger::new();
    let mut theirs = Ledger::new();
    ours.record(
        key('a', "c"),
        CommitState::Pending,
        "Progressing",
        at("2026-11-22T10:00:00Z"),
    );
    theirs.record(
        key('a', "c"),
        CommitState::Success,
        "ReconciliationSucceeded",
        at("2026-11-22T10:01:00Z"),
    );
    theirs.record(
        key('b', "c"),
        CommitState::Failure,
        "BuildFailed",
        at("2026-11-22T10:01:00Z"),
    );
    ours.record(
        key('c', "c"),
        CommitState::Success,
        "",
        at("2026-11-22T10:02:00Z"),
    );
    theirs.record(
        key('c', "c"),
        CommitState::Pending,
        "",
        at("2026-11-22T10:00:00Z"),
    );
    theirs.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Failure,
            "BuildFailed",
            None,
        )]),
        at("2026-11-22T10:00:00Z"),
    );
    ours.merge(theirs);
    assert_eq!(
        ours.get(&key('a', "c")).unwrap().state,
        CommitState::Success
    );
    assert_eq!(
        ours.get(&key('b', "c")).unwrap().state,
        CommitState::Failure
    );
    assert_eq!(
        ours.get(&key('c', "c")).unwrap().state,
        CommitState::Success
    );
    assert_eq!(ours.resources().count(), 1);
}

fn sample() -> Ledger {
    let mut ledger = Ledger::new();
    ledger.record(
        key('a', "flux/prod/Kustomization/apps/web"),
        CommitState::Success,
        "ReconciliationSucceeded",
        at("2026-11-22T10:00:00Z"),
    );
    ledger.record(
        key('b', "flux/prod/Kustomization/apps/web"),
        CommitState::Canceled,
        "Superseded",
        at("2026-11-22T10:01:00Z"),
    );
    let mut azure = key('c', "flux/prod/HelmRelease/apps/api");
    azure.host = "dev.azure.com".into();
    azure.repository = "acme/My Project/My Repo".into();
    ledger.record(
        azure,
        CommitState::Pending,
        "Progressing",
        at("2026-11-22T10:02:00Z"),
    );
    ledger.observe(
        &assessment(vec![resource(
            "web",
            ResourceState::Failure,
            "BuildFailed",
            Some(Some(at("2026-11-22T09:00:00Z"))),
        )]),
        at("2026-11-22T10:00:00Z"),
    );
    ledger.observe(&assessment(vec![]), at("2026-11-22T10:03:00Z"));
    ledger.set_counters(vec![(
        "flux_status_polls_total".into(),
        vec!["success".into()],
        7,
    )]);
    ledger.mark_saved();
    ledger
}

#[test]
fn the_stored_form_round_trips_and_is_deterministic() {
    let ledger = sample();
    let bytes = encode(&ledger);
    let decoded = decode(&bytes, "test").unwrap();
    assert_eq!(decoded, ledger);
    assert_eq!(encode(&decoded), bytes);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("{\"version\":1,"), "{text}");
    assert_eq!(
        text.matches("flux/prod/Kustomization/apps/web").count(),
        1,
        "contexts are stored once: {text}"
    );
}

#[test]
fn an_unreadable_stored_form_is_refused_with_the_reason() {
    let cases: [(&[u8], &str); 5] = [
        (b"not json", "ledger test: not a ledger: expected ident at line 1 column 2"),
        (b"{\"version\": 7}", "ledger test: written in format version 7, this exporter reads version 1"),
        (b"{\"statuses\": []}", "ledger test: not a ledger: no format version"),
        (b"{\"version\":1,\"repositories\":[\"github.com acme/app\"],\"contexts\":[],\"reasons\":[\"\"],\"statuses\":[[0,\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",3,\"s\",0,0]],\"resources\":[]}", "ledger test: context index 3 is out of range"),
        (b"{\"version\":1,\"repositories\":[\"github.com acme/app\"],\"contexts\":[\"c\"],\"reasons\":[\"\"],\"statuses\":[[0,\"xyz\",0,\"s\",0,0]],\"resources\":[]}", "ledger test: `xyz` is not a commit sha"),
    ];
    for (bytes, message) in cases {
        assert_eq!(decode(bytes, "test").unwrap_err().to_string(), message);
    }
}

#[test]
fn the_file_store_round_trips_and_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("ledger.json"));
    let loaded = store.load().unwrap();
    assert_eq!(
        loaded.ledger,
        Ledger::new(),
        "a missing file is an empty ledger"
    );
    assert!(loaded.discarded.is_none());
    let mut ledger = sample();
    ledger.record(
        key('d', "x"),
        CommitState::Success,
        "",
        at("2026-11-22T11:00:00Z"),
    );
    store.save(&mut ledger).unwrap();
    assert!(!ledger.is_dirty());
    assert_eq!(store.load().unwrap().ledger, ledger);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ledger.json"], "no temporary file is left behind");
}

#[test]
fn loading_a_file_ledger_deletes_the_temporary_files_a_killed_process_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("ledger.json"));
    store.save(&mut sample()).unwrap();
    std::fs::write(dir.path().join(".ledger.json.tmp-4242"), b"half a ledger").unwrap();
    std::fs::write(dir.path().join("unrelated.txt"), b"kept").unwrap();
    assert_eq!(store.load().unwrap().ledger, sample());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ledger.json", "unrelated.txt"]);
}

#[test]
fn a_corrupt_ledger_file_is_moved_aside_and_a_fresh_ledger_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.json");
    std::fs::write(&path, b"{\"version\": 99}").unwrap();
    let loaded = FileStore::new(&path).load().unwrap();
    assert_eq!(loaded.ledger, Ledger::new());
    let discarded = loaded.discarded.unwrap();
    assert!(
        discarded.starts_with(&format!(
            "ledger {}: written in format version 99, this exporter reads version 1; moved to ",
            path.display()
        )),
        "{discarded}"
    );
    assert!(!path.exists());
    let aside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(
        aside.len(),
        1,
        "the unreadable ledger is kept for inspection"
    );
    let name = aside[0].as_ref().unwrap().file_name();
    let name = name.to_string_lossy();
    let seconds = name
        .strip_prefix("ledger.json.corrupt-")
        .unwrap_or_else(|| panic!("{name} is not <file>.corrupt-<unix seconds>"));
    assert!(seconds.parse::<i64>().is_ok(), "{name}");
    assert!(discarded.ends_with(&format!("corrupt-{seconds} and starting fresh")));
}

#[test]
fn a_ledger_in_a_missing_directory_fails_to_save_with_the_path() {
    let store = FileStore::new("/nonexistent-dir/ledger.json");
    let err = store.save(&mut sample()).unwrap_err().to_string();
    assert_eq!(
        err,
        "ledger /nonexistent-dir/ledger.json: cannot write: No such file or directory (os error 2)"
    );
}
