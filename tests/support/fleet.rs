//! A synthetic Flux fleet whose objects can change between ticks: GitRepositories,
//! OCIRepositories, Kustomizations on either, HelmReleases with their HelmCharts (half built
//! from a GitRepository, half from a Helm repository). Revisions are consistent across objects
//! (a Kustomization attempts its source's revision, a chart records the commit it was built
//! from), so every object speaks for real commits the way it would in a cluster, and the
//! per-object noise (managedFields, inventories, values) makes a read cost what it costs on a
//! real cluster. Deterministic for a given size; objects are rendered on demand from a small
//! state so a 100,000-object fleet does not hold 100,000 JSON trees.

use serde_json::{Value, json};

use super::synthetic::{managed_fields, namespace};

/// How a Kustomization or HelmRelease stands on its source's current revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Applied and healthy.
    Ready,
    /// Applying (or waiting for health checks); the previous revision is still applied.
    Progressing,
    /// The apply or the health checks failed; the previous revision is still applied.
    Failed,
}

impl Health {
    /// The next health in the cycle Progressing → Ready → Failed → Progressing.
    pub fn next(self) -> Health {
        match self {
            Health::Progressing => Health::Ready,
            Health::Ready => Health::Failed,
            Health::Failed => Health::Progressing,
        }
    }
}

/// The fleet's state; objects are rendered from it.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The revision number of each GitRepository (its commit is derived from it).
    pub git_generations: Vec<u32>,
    pub oci_generations: Vec<u32>,
    pub kustomizations: Vec<Health>,
    pub helm_releases: Vec<Health>,
}

/// How many revisions a source cycles through before it repeats one: bounds the commits a long
/// run can see, as a retention window would.
pub const COMMIT_POOL: u32 = 4;

/// A Kubernetes object's plural resource, namespace and name (how the fake API server keys it).
pub type ObjectId = (&'static str, String, String);

impl Fleet {
    /// A fleet of about `total` objects: 40% Kustomizations, 20% HelmReleases, 20% HelmCharts,
    /// 13% GitRepositories, 7% OCIRepositories; 1 in 20 failing and 1 in 20 progressing.
    pub fn new(total: usize) -> Fleet {
        let kustomizations = (total * 2 / 5).max(1);
        let helm_releases = (total / 5).max(1);
        let oci = (total * 7 / 100).max(1);
        let git = total
            .saturating_sub(kustomizations + 2 * helm_releases + oci)
            .max(1);
        let health = |i: usize| match mix(i as u64) % 20 {
            0 => Health::Failed,
            1 => Health::Progressing,
            _ => Health::Ready,
        };
        Fleet {
            git_generations: vec![0; git],
            oci_generations: vec![0; oci],
            kustomizations: (0..kustomizations).map(health).collect(),
            helm_releases: (0..helm_releases)
                .map(|i| health(i + 1_000_000_007))
                .collect(),
        }
    }

    /// How many objects the fleet has.
    pub fn len(&self) -> usize {
        self.git_generations.len()
            + self.oci_generations.len()
            + self.kustomizations.len()
            + 2 * self.helm_releases.len()
    }

    /// Every object.
    pub fn objects(&self) -> impl Iterator<Item = Value> + '_ {
        (0..self.git_generations.len())
            .map(|i| self.git_repository(i))
            .chain((0..self.oci_generations.len()).map(|i| self.oci_repository(i)))
            .chain((0..self.kustomizations.len()).map(|i| self.kustomization(i)))
            .chain(
                (0..self.helm_releases.len())
                    .flat_map(|i| [self.helm_chart(i), self.helm_release(i)]),
            )
    }

    /// The id of Kustomization `i`, as the fake API server keys it.
    pub fn kustomization_id(&self, i: usize) -> ObjectId {
        ("kustomizations", namespace(i), format!("app-{i}"))
    }

    /// Whether Kustomization `i` reads an OCIRepository (else a GitRepository).
    fn on_oci(i: usize) -> bool {
        i % 4 == 3
    }

    /// The source revision Kustomization `i` attempts, and the one applied before it.
    fn kustomization_revisions(&self, i: usize) -> (String, String) {
        if Fleet::on_oci(i) {
            let o = i % self.oci_generations.len();
            let g = self.oci_generations[o];
            (
                oci_digest_revision(o, g),
                oci_digest_revision(o, g + COMMIT_POOL - 1),
            )
        } else {
            let r = i % self.git_generations.len();
            let g = self.git_generations[r];
            (git_revision(r, g), git_revision(r, g + COMMIT_POOL - 1))
        }
    }

    /// GitRepository `r`'s current commit.
    pub fn git_commit(&self, r: usize) -> String {
        commit('g', r, self.git_generations[r] % COMMIT_POOL)
    }

    /// Advances GitRepository `r` to its next commit.
    pub fn advance_git(&mut self, r: usize) {
        self.git_generations[r] = (self.git_generations[r] + 1) % COMMIT_POOL;
    }

    /// Advances OCIRepository `o` to its next artifact (built from the next commit).
    pub fn advance_oci(&mut self, o: usize) {
        self.oci_generations[o] = (self.oci_generations[o] + 1) % COMMIT_POOL;
    }

    pub fn git_repository(&self, r: usize) -> Value {
        let ns = namespace(r);
        let revision = git_revision(r, self.git_generations[r]);
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {
                "name": format!("repo-{r}"), "namespace": ns, "generation": 1,
                "creationTimestamp": "2026-06-03T11:40:17Z", "uid": uid(1, r),
                "finalizers": ["finalizers.fluxcd.io"],
                "labels": {"kustomize.toolkit.fluxcd.io/name": "sources", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
                "managedFields": managed_fields("source-controller"),
            },
            "spec": {"interval": "1m0s", "ref": {"branch": "main"}, "secretRef": {"name": "git-credentials"}, "timeout": "60s",
                     "url": format!("https://github.com/acme/service-{r}")},
            "status": {
                "artifact": {"digest": format!("sha256:{}", hex64(mix(r as u64 ^ 0xa5))), "lastUpdateTime": "2026-08-14T09:20:00Z",
                             "path": format!("gitrepository/{ns}/repo-{r}/{}.tar.gz", self.git_commit(r)), "revision": revision, "size": 4096 + r % 90000,
                             "url": format!("http://source-controller.flux-system.svc.cluster.local./gitrepository/{ns}/repo-{r}/latest.tar.gz")},
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Succeeded", "observedGeneration": 1, "lastTransitionTime": "2026-08-14T09:20:00Z", "message": format!("stored artifact for revision '{revision}'")},
                    {"type": "ArtifactInStorage", "status": "True", "reason": "Succeeded", "observedGeneration": 1, "lastTransitionTime": "2026-08-14T09:20:00Z", "message": format!("stored artifact for revision '{revision}'")},
                ],
                "observedGeneration": 1,
            },
        })
    }

    pub fn oci_repository(&self, o: usize) -> Value {
        let ns = namespace(o);
        let g = self.oci_generations[o];
        let revision = oci_digest_revision(o, g);
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {
                "name": format!("manifests-{o}"), "namespace": ns, "generation": 1,
                "creationTimestamp": "2026-06-03T11:40:17Z", "uid": uid(2, o),
                "finalizers": ["finalizers.fluxcd.io"],
                "managedFields": managed_fields("source-controller"),
            },
            "spec": {"interval": "5m", "provider": "generic", "ref": {"tag": "latest"}, "secretRef": {"name": "ghcr-pull"}, "timeout": "60s",
                     "url": format!("oci://ghcr.io/acme/manifests-{o}")},
            "status": {
                "artifact": {"digest": format!("sha256:{}", hex64(mix(o as u64 ^ 0x5a))), "lastUpdateTime": "2026-08-14T08:55:31Z",
                             "metadata": {"org.opencontainers.image.created": "2026-08-14T08:54:58Z",
                                          "org.opencontainers.image.revision": format!("main@sha1:{}", commit('o', o, g % COMMIT_POOL)),
                                          "org.opencontainers.image.source": format!("https://github.com/acme/oci-{o}")},
                             "path": format!("ocirepository/{ns}/manifests-{o}/{}.tar.gz", &revision[revision.len() - 64..]),
                             "revision": revision, "size": 3917,
                             "url": format!("http://source-controller.flux-system.svc.cluster.local./ocirepository/{ns}/manifests-{o}/latest.tar.gz")},
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Succeeded", "observedGeneration": 1, "lastTransitionTime": "2026-08-14T08:55:31Z", "message": format!("stored artifact for digest '{revision}'")},
                ],
                "observedGeneration": 1,
                "url": format!("http://source-controller.flux-system.svc.cluster.local./ocirepository/{ns}/manifests-{o}/latest.tar.gz"),
            },
        })
    }

    pub fn kustomization(&self, i: usize) -> Value {
        let ns = namespace(i);
        let health = self.kustomizations[i];
        let (attempted, previous) = self.kustomization_revisions(i);
        let applied = if health == Health::Ready {
            &attempted
        } else {
            &previous
        };
        let (source_kind, source_name, source_ns) = if Fleet::on_oci(i) {
            let o = i % self.oci_generations.len();
            ("OCIRepository", format!("manifests-{o}"), namespace(o))
        } else {
            let r = i % self.git_generations.len();
            ("GitRepository", format!("repo-{r}"), namespace(r))
        };
        let entries: Vec<Value> = (0..8 + (mix(i as u64) % 16) as usize)
            .map(|e| json!({"id": format!("{ns}_app-{i}-{e}_apps_Deployment"), "v": "v1"}))
            .collect();
        let mut status = json!({
            "conditions": [ready_condition(health, &attempted, 2)],
            "history": [{"digest": format!("sha256:{}", hex64(mix(i as u64 ^ 0x77))), "firstReconciled": "2026-08-12T17:03:44Z", "lastReconciled": "2026-08-14T09:02:40Z",
                         "lastReconciledDuration": "2.093318841s", "lastReconciledStatus": "ReconciliationSucceeded",
                         "metadata": {"revision": applied}, "totalReconciliations": 1 + i % 500}],
            "inventory": {"entries": entries},
            "lastAppliedRevision": applied, "lastAttemptedRevision": attempted, "observedGeneration": 2,
        });
        if Fleet::on_oci(i) {
            let o = i % self.oci_generations.len();
            let g = self.oci_generations[o];
            let origin = |g: u32| format!("main@sha1:{}", commit('o', o, g % COMMIT_POOL));
            let applied_origin = if health == Health::Ready {
                origin(g)
            } else {
                origin(g + 1)
            };
            status["lastAppliedOriginRevision"] = json!(applied_origin);
        }
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {
                "name": format!("app-{i}"), "namespace": ns, "generation": 2,
                "creationTimestamp": "2026-06-03T11:40:17Z", "uid": uid(3, i),
                "finalizers": ["finalizers.fluxcd.io"],
                "labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{{\"apiVersion\":\"kustomize.toolkit.fluxcd.io/v1\",\"kind\":\"Kustomization\",\"metadata\":{{\"name\":\"app-{i}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"interval\":\"10m\",\"path\":\"./deploy/app-{i}\",\"prune\":true,\"sourceRef\":{{\"kind\":\"{source_kind}\",\"name\":\"{source_name}\"}}}}}}\n")},
                "managedFields": managed_fields("kustomize-controller"),
            },
            "spec": {"force": false, "interval": "10m", "path": format!("./deploy/app-{i}"), "prune": true, "timeout": "5m", "wait": true,
                     "postBuild": {"substitute": {"cluster": "production", "region": "eu-west-1"}},
                     "sourceRef": {"kind": source_kind, "name": source_name, "namespace": source_ns}},
            "status": status,
        })
    }

    /// Where HelmRelease `j`'s chart comes from: `Some(r)` for GitRepository `r`, `None` for
    /// the shared Helm repository.
    fn chart_git_source(&self, j: usize) -> Option<usize> {
        j.is_multiple_of(2).then(|| j % self.git_generations.len())
    }

    /// The HelmChart's namespace and name.
    fn chart_name(&self, j: usize) -> (String, String) {
        let ns = match self.chart_git_source(j) {
            Some(r) => namespace(r),
            None => "flux-system".to_string(),
        };
        (ns, format!("{}-release-{j}", namespace(j)))
    }

    fn chart_version(&self, j: usize) -> String {
        match self.chart_git_source(j) {
            Some(r) => format!("1.4.0+{}", &self.git_commit(r)[..12]),
            None => format!("1.{}.{}", j % 30, j % 10),
        }
    }

    pub fn helm_chart(&self, j: usize) -> Value {
        let (ns, name) = self.chart_name(j);
        let version = self.chart_version(j);
        let (source, strategy, observed_source) = match self.chart_git_source(j) {
            Some(r) => (
                json!({"kind": "GitRepository", "name": format!("repo-{r}")}),
                "Revision",
                Some(git_revision(r, self.git_generations[r])),
            ),
            None => (
                json!({"kind": "HelmRepository", "name": "charts"}),
                "ChartVersion",
                None,
            ),
        };
        let mut status = json!({
            "artifact": {"digest": format!("sha256:{}", hex64(mix(j as u64 ^ 0x33))), "lastUpdateTime": "2026-08-14T09:20:09Z",
                         "path": format!("helmchart/{ns}/{name}/app-{version}.tgz"), "revision": version, "size": 15267,
                         "url": format!("http://source-controller.flux-system.svc.cluster.local./helmchart/{ns}/{name}/app-{version}.tgz")},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "ChartPackageSucceeded", "observedGeneration": 1, "lastTransitionTime": "2026-08-14T09:20:09Z", "message": format!("packaged 'app' chart with version '{version}'")},
                {"type": "ArtifactInStorage", "status": "True", "reason": "ChartPackageSucceeded", "observedGeneration": 1, "lastTransitionTime": "2026-08-14T09:20:09Z", "message": format!("packaged 'app' chart with version '{version}'")},
            ],
            "observedChartName": "app", "observedGeneration": 1,
            "url": format!("http://source-controller.flux-system.svc.cluster.local./helmchart/{ns}/{name}/latest.tar.gz"),
        });
        if let Some(observed) = observed_source {
            status["observedSourceArtifactRevision"] = json!(observed);
        }
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmChart",
            "metadata": {
                "name": name, "namespace": ns, "generation": 1,
                "creationTimestamp": "2026-06-03T11:40:41Z", "uid": uid(4, j),
                "finalizers": ["finalizers.fluxcd.io"],
                "labels": {"helm.toolkit.fluxcd.io/name": format!("release-{j}"), "helm.toolkit.fluxcd.io/namespace": namespace(j)},
                "managedFields": managed_fields("source-controller"),
            },
            "spec": {"chart": "./charts/app", "interval": "10m", "reconcileStrategy": strategy, "sourceRef": source, "version": "*"},
            "status": status,
        })
    }

    pub fn helm_release(&self, j: usize) -> Value {
        let ns = namespace(j);
        let health = self.helm_releases[j];
        let version = self.chart_version(j);
        let (chart_ns, chart_name) = self.chart_name(j);
        let source = match self.chart_git_source(j) {
            Some(r) => {
                json!({"kind": "GitRepository", "name": format!("repo-{r}"), "namespace": namespace(r)})
            }
            None => json!({"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}),
        };
        let values: serde_json::Map<String, Value> = (0..10 + (mix(j as u64) % 20) as usize)
            .map(|v| (format!("setting{v}"), json!({"enabled": v % 2 == 0, "replicas": v, "image": format!("registry.example.com/acme/app-{j}:1.{v}.0")})))
            .collect();
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {
                "name": format!("release-{j}"), "namespace": ns, "generation": 1,
                "creationTimestamp": "2026-06-03T11:40:17Z", "uid": uid(5, j),
                "finalizers": ["finalizers.fluxcd.io"],
                "labels": {"kustomize.toolkit.fluxcd.io/name": format!("app-{j}"), "kustomize.toolkit.fluxcd.io/namespace": ns},
                "managedFields": managed_fields("helm-controller"),
            },
            "spec": {"interval": "10m", "releaseName": format!("release-{j}"),
                     "chart": {"spec": {"chart": "./charts/app", "version": "*", "reconcileStrategy": "Revision", "sourceRef": source}},
                     "install": {"remediation": {"retries": 3}}, "upgrade": {"remediation": {"retries": 3}},
                     "values": values},
            "status": {
                "conditions": [ready_condition(health, &format!("app@{version}"), 1)],
                "helmChart": format!("{chart_ns}/{chart_name}"),
                "history": [{"apiVersion": "helm.toolkit.fluxcd.io/v2", "chartName": "app", "chartVersion": version, "configDigest": format!("sha256:{}", hex64(mix(j as u64 ^ 0x11))),
                             "digest": format!("sha256:{}", hex64(mix(j as u64 ^ 0x22))), "firstDeployed": "2026-06-03T11:41:00Z", "lastDeployed": "2026-08-14T09:24:02Z",
                             "name": format!("release-{j}"), "namespace": ns, "status": "deployed", "version": 3}],
                "lastAttemptedConfigDigest": format!("sha256:{}", hex64(mix(j as u64 ^ 0x11))), "lastAttemptedGeneration": 1, "lastAttemptedReleaseAction": "upgrade",
                "lastAttemptedRevision": version, "observedGeneration": 1, "storageNamespace": ns,
            },
        })
    }
}

fn ready_condition(health: Health, revision: &str, generation: i64) -> Value {
    match health {
        Health::Failed => {
            json!({"type": "Ready", "status": "False", "reason": "HealthCheckFailed", "observedGeneration": generation, "lastTransitionTime": "2026-08-14T09:12:31Z",
            "message": format!("health check failed after 5m0s: timeout waiting for: [Deployment/app/api status: 'InProgress'] for revision {revision}")})
        }
        Health::Progressing => {
            json!({"type": "Ready", "status": "Unknown", "reason": "Progressing", "observedGeneration": generation, "lastTransitionTime": "2026-08-14T09:12:31Z",
            "message": format!("Reconciliation in progress for revision {revision}")})
        }
        Health::Ready => {
            json!({"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "observedGeneration": generation, "lastTransitionTime": "2026-08-14T09:24:02Z",
            "message": format!("Applied revision: {revision}")})
        }
    }
}

fn git_revision(r: usize, generation: u32) -> String {
    format!("main@sha1:{}", commit('g', r, generation % COMMIT_POOL))
}

fn oci_digest_revision(o: usize, generation: u32) -> String {
    format!(
        "latest@sha256:{}",
        hex64(mix(((o as u64) << 8) | u64::from(generation % COMMIT_POOL)))
    )
}

/// A 40-hex commit for (source family, index, generation).
pub fn commit(family: char, index: usize, generation: u32) -> String {
    let seed = (u64::from(family) << 56) ^ ((index as u64) << 8) ^ u64::from(generation);
    hex64(mix(seed))[..40].to_string()
}

fn uid(family: u64, i: usize) -> String {
    format!("3b0c6c2e-000{family}-4000-8000-{i:012}")
}

/// splitmix64: a fixed, well-spread hash of the input.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64 hex characters from a seed.
fn hex64(seed: u64) -> String {
    (0..4).map(|k| format!("{:016x}", mix(seed ^ k))).collect()
}
