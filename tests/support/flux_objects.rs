//! Small Flux objects for scripted scenarios against the fake API server: GitRepositories at
//! a commit and Kustomizations that are healthy, failing, suspended or undecodable, in the
//! shape the controllers write them.

use serde_json::{Value, json};

/// The namespace every object of these scenarios lives in.
pub const NAMESPACE: &str = "flux-system";

/// A 40-hex commit made of one repeated digit.
pub fn sha(digit: char) -> String {
    std::iter::repeat_n(digit, 40).collect()
}

/// `main@sha1:<sha>`, as Flux writes a branch revision.
pub fn revision(sha: &str) -> String {
    format!("main@sha1:{sha}")
}

/// A GitRepository for `url` whose artifact is at `sha`; `updated` is the artifact's
/// `lastUpdateTime` (RFC 3339), or none.
pub fn git_repository(name: &str, url: &str, sha: &str, updated: Option<&str>) -> Value {
    let revision = revision(sha);
    let mut artifact = json!({
        "digest": format!("sha256:{}", "0".repeat(64)),
        "path": format!("gitrepository/{NAMESPACE}/{name}/{sha}.tar.gz"),
        "revision": revision,
        "size": 1024,
        "url": format!("http://source-controller.flux-system.svc.cluster.local./gitrepository/{NAMESPACE}/{name}/{sha}.tar.gz"),
    });
    if let Some(updated) = updated {
        artifact["lastUpdateTime"] = json!(updated);
    }
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": {"interval": "1m", "ref": {"branch": "main"}, "url": url},
        "status": {
            "artifact": artifact,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Succeeded", "observedGeneration": 1,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "message": format!("stored artifact for revision '{revision}'"),
            }],
            "observedGeneration": 1,
        },
    })
}

/// A Kustomization reading GitRepository `source`, applied and healthy at `sha`.
pub fn kustomization(name: &str, source: &str, sha: &str) -> Value {
    let revision = revision(sha);
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": {
            "interval": "10m", "path": format!("./{name}"), "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": source},
        },
        "status": {
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z",
                "message": format!("Applied revision: {revision}"),
            }],
            "lastAppliedRevision": revision,
            "lastAttemptedRevision": revision,
            "observedGeneration": 1,
        },
    })
}

/// The same Kustomization failing its last attempt with `reason` and `message` (Ready=False).
pub fn failing(mut kustomization: Value, reason: &str, message: &str) -> Value {
    kustomization["status"]["conditions"] = json!([{
        "type": "Ready", "status": "False", "reason": reason, "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z", "message": message,
    }]);
    kustomization
}

/// The same Kustomization with `spec.suspend: true`.
pub fn suspended(mut kustomization: Value) -> Value {
    kustomization["spec"]["suspend"] = json!(true);
    kustomization
}

/// A Kustomization the exporter cannot decode (`spec.sourceRef.name` is a number).
pub fn undecodable(name: &str) -> Value {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": 7}},
    })
}

/// The path the exporter lists Kustomizations from (cluster-wide).
pub const KUSTOMIZATIONS_PATH: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";
