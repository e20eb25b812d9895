//! Synthetic Flux clusters for benchmarks: N Kustomizations, N HelmReleases and N/5
//! GitRepositories with the fields, sizes and conditions real objects have (managedFields,
//! inventories, Helm values and history), so that a read costs what it costs on a real cluster
//! (about 5-6 KB of JSON per object).

use serde_json::{Value, json};

/// The objects of a cluster with about `total` Flux objects, deterministic for a given size.
pub fn cluster(total: usize) -> Vec<Value> {
    let n = (total * 5 / 11).max(1);
    let sources = (n / 5).max(1);
    let mut rng = fastrand::Rng::with_seed(total as u64);
    let mut objects = Vec::with_capacity(2 * n + sources);
    for i in 0..sources {
        objects.push(git_repository(i, &mut rng));
    }
    for i in 0..n {
        objects.push(kustomization(i, i % sources, &mut rng));
        objects.push(helm_release(i, &mut rng));
    }
    objects
}

fn sha(rng: &mut fastrand::Rng) -> String {
    (0..40)
        .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
        .collect()
}

pub fn namespace(i: usize) -> String {
    format!("team-{:03}", i % 200)
}

pub fn managed_fields(manager: &str) -> Value {
    json!([
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-06-03T11:40:17Z",
         "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}, "f:labels": {".": {}, "f:kustomize.toolkit.fluxcd.io/name": {}, "f:kustomize.toolkit.fluxcd.io/namespace": {}}}, "f:spec": {".": {}, "f:interval": {}, "f:path": {}, "f:prune": {}, "f:sourceRef": {".": {}, "f:kind": {}, "f:name": {}}, "f:timeout": {}}}},
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": manager, "operation": "Update", "subresource": "status", "time": "2026-08-14T09:24:02Z",
         "fieldsV1": {"f:status": {"f:conditions": {}, "f:history": {}, "f:inventory": {".": {}, "f:entries": {}}, "f:lastAppliedRevision": {}, "f:lastAttemptedRevision": {}, "f:observedGeneration": {}}}}
    ])
}

fn ready(rng: &mut fastrand::Rng, revision: &str, generation: i64) -> Value {
    match rng.u32(0..20) {
        0 => {
            json!({"type": "Ready", "status": "False", "reason": "HealthCheckFailed", "observedGeneration": generation, "lastTransitionTime": "2026-08-14T09:12:31Z",
            "message": format!("health check failed after 5m0s: timeout waiting for: [Deployment/app/api status: 'InProgress'] for revision {revision}")})
        }
        1 => {
            json!({"type": "Ready", "status": "Unknown", "reason": "Progressing", "observedGeneration": generation, "lastTransitionTime": "2026-08-14T09:12:31Z",
            "message": format!("Reconciliation in progress for revision {revision}")})
        }
        _ => {
            json!({"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "observedGeneration": generation, "lastTransitionTime": "2026-08-14T09:24:02Z",
            "message": format!("Applied revision: {revision}")})
        }
    }
}

fn git_repository(i: usize, rng: &mut fastrand::Rng) -> Value {
    let revision = format!("main@sha1:{}", sha(rng));
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {
            "name": format!("repo-{i}"), "namespace": namespace(i), "generation": 1,
            "creationTimestamp": "2026-06-03T11:40:17Z", "uid": format!("3b0c6c2e-0000-4000-8000-{i:012}"),
            "finalizers": ["finalizers.fluxcd.io"],
            "managedFields": managed_fields("source-controller"),
        },
        "spec": {"interval": "1m0s", "ref": {"branch": "main"}, "secretRef": {"name": "git-credentials"}, "timeout": "60s",
                 "url": format!("https://github.com/acme/service-{i}")},
        "status": {
            "artifact": {"digest": format!("sha256:{}{}", sha(rng), &sha(rng)[..24]), "lastUpdateTime": "2026-08-14T09:20:00Z",
                          "path": format!("gitrepository/{}/repo-{i}/{}.tar.gz", namespace(i), sha(rng)), "revision": revision, "size": rng.u32(1000..900000),
                          "url": format!("http://source-controller.flux-system.svc.cluster.local./gitrepository/{}/repo-{i}/latest.tar.gz", namespace(i))},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Succeeded", "observedGeneration": 1, "lastTransitionTime": "2026-08-14T09:20:00Z", "message": format!("stored artifact for revision '{revision}'")},
                {"type": "ArtifactInStorage", "status": "True", "reason": "Succeeded", "observedGeneration": 1, "lastTransitionTime": "2026-08-14T09:20:00Z", "message": format!("stored artifact for revision '{revision}'")},
            ],
            "observedGeneration": 1,
        },
    })
}

fn kustomization(i: usize, source: usize, rng: &mut fastrand::Rng) -> Value {
    let revision = format!("main@sha1:{}", sha(rng));
    let ns = namespace(i);
    let entries: Vec<Value> = (0..rng.usize(8..24))
        .map(|e| json!({"id": format!("{ns}_app-{i}-{e}_apps_Deployment"), "v": "v1"}))
        .collect();
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": format!("app-{i}"), "namespace": ns, "generation": 2,
            "creationTimestamp": "2026-06-03T11:40:17Z", "uid": format!("672809f8-0000-4000-8000-{i:012}"),
            "finalizers": ["finalizers.fluxcd.io"],
            "labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{{\"apiVersion\":\"kustomize.toolkit.fluxcd.io/v1\",\"kind\":\"Kustomization\",\"metadata\":{{\"name\":\"app-{i}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"interval\":\"10m\",\"path\":\"./deploy/app-{i}\",\"prune\":true,\"sourceRef\":{{\"kind\":\"GitRepository\",\"name\":\"repo-{source}\"}}}}}}\n")},
            "managedFields": managed_fields("kustomize-controller"),
        },
        "spec": {"force": false, "interval": "10m", "path": format!("./deploy/app-{i}"), "prune": true, "timeout": "5m", "wait": true,
                 "postBuild": {"substitute": {"cluster": "production", "region": "eu-west-1"}},
                 "sourceRef": {"kind": "GitRepository", "name": format!("repo-{source}"), "namespace": namespace(source)}},
        "status": {
            "conditions": [ready(rng, &revision, 2)],
            "history": [{"digest": format!("sha256:{}", sha(rng)), "firstReconciled": "2026-08-12T17:03:44Z", "lastReconciled": "2026-08-14T09:02:40Z",
                         "lastReconciledDuration": "2.093318841s", "lastReconciledStatus": "ReconciliationSucceeded",
                         "metadata": {"revision": revision}, "totalReconciliations": rng.u32(1..500)}],
            "inventory": {"entries": entries},
            "lastAppliedRevision": revision, "lastAttemptedRevision": revision, "observedGeneration": 2,
        },
    })
}

fn helm_release(i: usize, rng: &mut fastrand::Rng) -> Value {
    let ns = namespace(i);
    let values: serde_json::Map<String, Value> = (0..rng.usize(10..30))
        .map(|v| (format!("setting{v}"), json!({"enabled": v % 2 == 0, "replicas": v, "image": format!("registry.example.com/acme/app-{i}:1.{v}.0")})))
        .collect();
    let chart_version = format!("1.{}.{}", rng.u32(0..30), rng.u32(0..10));
    json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": format!("release-{i}"), "namespace": ns, "generation": 1,
            "creationTimestamp": "2026-06-03T11:40:17Z", "uid": format!("9c1d4c35-0000-4000-8000-{i:012}"),
            "finalizers": ["finalizers.fluxcd.io"],
            "labels": {"kustomize.toolkit.fluxcd.io/name": format!("app-{i}"), "kustomize.toolkit.fluxcd.io/namespace": ns},
            "managedFields": managed_fields("helm-controller"),
        },
        "spec": {"interval": "10m", "releaseName": format!("release-{i}"),
                 "chart": {"spec": {"chart": "app", "version": ">=1.0.0", "reconcileStrategy": "ChartVersion",
                                    "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}}},
                 "install": {"remediation": {"retries": 3}}, "upgrade": {"remediation": {"retries": 3}},
                 "values": values},
        "status": {
            "conditions": [
                ready(rng, &format!("app@{chart_version}"), 1),
                {"type": "Released", "status": "True", "reason": "UpgradeSucceeded", "observedGeneration": 1, "lastTransitionTime": "2026-08-14T09:24:02Z",
                 "message": format!("Helm upgrade succeeded for release {ns}/release-{i}.v3 with chart app@{chart_version}")},
            ],
            "helmChart": format!("flux-system/{ns}-release-{i}"),
            "history": [{"apiVersion": "helm.toolkit.fluxcd.io/v2", "chartName": "app", "chartVersion": chart_version, "configDigest": format!("sha256:{}", sha(rng)),
                         "digest": format!("sha256:{}", sha(rng)), "firstDeployed": "2026-06-03T11:41:00Z", "lastDeployed": "2026-08-14T09:24:02Z",
                         "name": format!("release-{i}"), "namespace": ns, "status": "deployed", "version": 3}],
            "lastAttemptedConfigDigest": format!("sha256:{}", sha(rng)), "lastAttemptedGeneration": 1, "lastAttemptedReleaseAction": "upgrade",
            "lastAttemptedRevision": chart_version, "observedGeneration": 1, "storageNamespace": ns,
        },
    })
}
