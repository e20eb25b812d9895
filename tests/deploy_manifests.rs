//! The manifests in `deploy/`: every overlay builds with `kubectl kustomize`, every object
//! parses into its Kubernetes type without losing a field, and the security properties the
//! README promises hold: non-root, read-only root filesystem, no privilege escalation, no
//! capabilities, RuntimeDefault seccomp; RBAC without wildcards, get/list only on the Flux
//! kinds, writes only in the exporter's namespace, Secrets only by name; a NetworkPolicy that
//! lets out only DNS, the API server and HTTPS. The configs the overlays mount are valid and
//! agree with the manifests (ports, ledger, Lease, credential files).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flux_status_exporter::config::{Config, Credentials, LedgerBackend, SecretRef};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, PodTemplateSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use support::crd_schema::CrdSet;

const NAMESPACE: &str = "flux-status-exporter";
const SERVICE_ACCOUNT: &str = "flux-status-exporter";
const CREDENTIALS_MOUNT: &str = "/var/run/secrets/flux-status-exporter";

/// Exactly what the exporter reads, cluster-wide: (API group, resource).
const FLUX_KINDS_READ: [(&str, &str); 6] = [
    ("helm.toolkit.fluxcd.io", "helmreleases"),
    ("kustomize.toolkit.fluxcd.io", "kustomizations"),
    ("source.toolkit.fluxcd.io", "buckets"),
    ("source.toolkit.fluxcd.io", "gitrepositories"),
    ("source.toolkit.fluxcd.io", "helmcharts"),
    ("source.toolkit.fluxcd.io", "ocirepositories"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// Building and parsing

/// `to` relative to `from` (both absolute): kustomize refuses absolute paths.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part);
    }
    out
}

fn kubectl_kustomize(dir: &Path) -> Vec<Value> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8_lossy(&output.stdout))
        .expect("kustomize prints YAML")
}

/// Builds `deploy/overlays/<overlay>` with extra `components` (paths under `deploy/`).
fn build(overlay: &str, components: &[&str]) -> Build {
    let overlay_dir = root().join("deploy/overlays").join(overlay);
    if components.is_empty() {
        return Build::parse(&kubectl_kustomize(&overlay_dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\ncomponents:\n",
        relative_path(dir.path(), &overlay_dir).display()
    );
    for component in components {
        let path = relative_path(dir.path(), &root().join("deploy").join(component));
        text.push_str(&format!("  - {}\n", path.display()));
    }
    fs::write(dir.path().join("kustomization.yaml"), text).unwrap();
    Build::parse(&kubectl_kustomize(dir.path()))
}

/// JSON pointers at which `a` and `b` differ.
fn differences(a: &Value, b: &Value, pointer: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let here = format!("{pointer}/{key}");
                match (x.get(key), y.get(key)) {
                    (Some(v), Some(w)) => differences(v, w, &here, out),
                    _ => out.push(here),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(v, w, &format!("{pointer}/{i}"), out);
            }
        }
        _ if a != b => out.push(pointer.to_string()),
        _ => {}
    }
}

/// Parses `value` into `T`, and fails when serialising it back loses or changes anything: a
/// field the type does not know is a misspelling or a field of another kind.
fn typed<T: DeserializeOwned + serde::Serialize>(value: &Value) -> T {
    let who = format!(
        "{} {}",
        value["kind"].as_str().unwrap_or("?"),
        value["metadata"]["name"].as_str().unwrap_or("?")
    );
    let parsed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{who} does not parse into its Kubernetes type: {e}"));
    let back = serde_json::to_value(&parsed).unwrap();
    let mut changed = Vec::new();
    differences(value, &back, "", &mut changed);
    assert!(
        changed.is_empty(),
        "{who}: the k8s-openapi type does not keep {changed:?} (unknown or misspelled fields?)"
    );
    parsed
}

/// The Prometheus Operator's resources, with the fields used here; any other field is an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MonitorEndpoint {
    port: String,
    path: String,
    interval: String,
    scrape_timeout: String,
    honor_labels: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    job_label: String,
    selector: LabelSelector,
    endpoints: Vec<MonitorEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodMonitorSpec {
    job_label: String,
    selector: LabelSelector,
    pod_metrics_endpoints: Vec<MonitorEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Monitor<S> {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: ObjectMeta,
    spec: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRuleSpec {
    groups: Value,
}

/// One overlay's objects, by kind.
#[derive(Default)]
struct Build {
    kinds: Vec<String>,
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
    services: Vec<Service>,
    deployments: Vec<Deployment>,
    cron_jobs: Vec<CronJob>,
    network_policies: Vec<NetworkPolicy>,
    service_monitors: Vec<Monitor<ServiceMonitorSpec>>,
    pod_monitors: Vec<Monitor<PodMonitorSpec>>,
    prometheus_rules: Vec<Monitor<PrometheusRuleSpec>>,
}

impl Build {
    fn parse(documents: &[Value]) -> Build {
        let mut build = Build::default();
        for document in documents {
            let api_version = document["apiVersion"].as_str().unwrap_or("?");
            let kind = document["kind"].as_str().unwrap_or("?");
            build.kinds.push(kind.to_string());
            let name = document["metadata"]["name"].as_str().unwrap_or("?");
            let namespace = document["metadata"]["namespace"].as_str();
            let cluster_scoped = matches!(kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding");
            if cluster_scoped {
                assert_eq!(namespace, None, "{kind} {name} is cluster-scoped");
            } else {
                assert_eq!(
                    namespace,
                    Some(NAMESPACE),
                    "{kind} {name} is not in {NAMESPACE}"
                );
            }
            match (api_version, kind) {
                ("v1", "Namespace") => build.namespaces.push(typed(document)),
                ("v1", "ServiceAccount") => build.service_accounts.push(typed(document)),
                ("v1", "ConfigMap") => build.config_maps.push(typed(document)),
                ("v1", "Service") => build.services.push(typed(document)),
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                    build.cluster_roles.push(typed(document));
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                    build.cluster_role_bindings.push(typed(document));
                }
                ("rbac.authorization.k8s.io/v1", "Role") => build.roles.push(typed(document)),
                ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                    build.role_bindings.push(typed(document));
                }
                ("apps/v1", "Deployment") => build.deployments.push(typed(document)),
                ("batch/v1", "CronJob") => build.cron_jobs.push(typed(document)),
                ("networking.k8s.io/v1", "NetworkPolicy") => {
                    build.network_policies.push(typed(document));
                }
                ("monitoring.coreos.com/v1", "ServiceMonitor") => build
                    .service_monitors
                    .push(serde_json::from_value(document.clone()).unwrap()),
                ("monitoring.coreos.com/v1", "PodMonitor") => build
                    .pod_monitors
                    .push(serde_json::from_value(document.clone()).unwrap()),
                ("monitoring.coreos.com/v1", "PrometheusRule") => build
                    .prometheus_rules
                    .push(serde_json::from_value(document.clone()).unwrap()),
                _ => panic!("unexpected {api_version} {kind} {name} in the build"),
            }
        }
        build
    }

    fn sorted_kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.kinds.iter().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }

    /// The workload's pod template: the Deployment's or the CronJob's.
    fn pod_template(&self) -> &PodTemplateSpec {
        match (self.deployments.as_slice(), self.cron_jobs.as_slice()) {
            ([deployment], []) => &deployment.spec.as_ref().unwrap().template,
            ([], [cron_job]) => {
                &cron_job
                    .spec
                    .as_ref()
                    .unwrap()
                    .job_template
                    .spec
                    .as_ref()
                    .unwrap()
                    .template
            }
            _ => panic!("expected exactly one Deployment or one CronJob"),
        }
    }

    fn pod(&self) -> &PodSpec {
        self.pod_template().spec.as_ref().unwrap()
    }

    fn container(&self) -> &Container {
        let containers = &self.pod().containers;
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    /// The generated config ConfigMap and the config it holds.
    fn config(&self) -> Config {
        let config_maps: Vec<&ConfigMap> = self
            .config_maps
            .iter()
            .filter(|c| name(&c.metadata).starts_with("flux-status-exporter-config-"))
            .collect();
        assert_eq!(
            config_maps.len(),
            1,
            "one config ConfigMap, with a hash suffix"
        );
        let text = &config_maps[0].data.as_ref().unwrap()["config.yaml"];
        Config::from_yaml(text, "config.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every Role and ClusterRole rule, with where it comes from.
    fn all_rules(&self) -> Vec<(String, &PolicyRule)> {
        let mut out = Vec::new();
        for role in &self.cluster_roles {
            for rule in role.rules.iter().flatten() {
                out.push((format!("ClusterRole {}", name(&role.metadata)), rule));
            }
        }
        for role in &self.roles {
            for rule in role.rules.iter().flatten() {
                out.push((format!("Role {}", name(&role.metadata)), rule));
            }
        }
        out
    }

    /// Role rules on `resource` (core or coordination group), with their role names.
    fn namespaced_rules_on(&self, resource: &str) -> Vec<&PolicyRule> {
        self.roles
            .iter()
            .flat_map(|role| role.rules.iter().flatten())
            .filter(|rule| rule.resources.iter().flatten().any(|r| r == resource))
            .collect()
    }
}

fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("?")
}

fn strings(list: &Option<Vec<String>>) -> Vec<&str> {
    list.iter().flatten().map(String::as_str).collect()
}

fn labels_match(selector: &LabelSelector, labels: &Option<BTreeMap<String, String>>) -> bool {
    assert!(
        selector.match_expressions.is_none(),
        "only matchLabels are used"
    );
    let wanted = selector.match_labels.clone().unwrap_or_default();
    let labels = labels.clone().unwrap_or_default();
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Mebibytes of a `NNNMi` quantity.
fn mebibytes(quantity: &Quantity) -> u64 {
    quantity
        .0
        .strip_suffix("Mi")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{}` is not written in Mi", quantity.0))
}

// ---------------------------------------------------------------------------------------------
// Every overlay builds

#[test]
fn each_overlay_builds_into_exactly_the_objects_of_its_mode() {
    assert_eq!(
        build("deployment", &[]).sorted_kinds(),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Namespace",
            "NetworkPolicy",
            "PrometheusRule",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    );
    assert_eq!(
        build("cronjob", &[]).sorted_kinds(),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CronJob",
            "Namespace",
            "NetworkPolicy",
            "NetworkPolicy",
            "PrometheusRule",
            "Role",
            "RoleBinding",
            "ServiceAccount",
        ]
    );
    let with_options = build(
        "deployment",
        &[
            "components/podmonitor",
            "components/secret-references",
            "components/grafana-dashboards",
        ],
    );
    assert_eq!(with_options.pod_monitors.len(), 1);
    assert_eq!(with_options.roles.len(), 3);
    let dashboards: Vec<&str> = with_options
        .config_maps
        .iter()
        .filter(|c| {
            c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("grafana_dashboard"))
                .is_some_and(|v| v == "1")
        })
        .map(|c| name(&c.metadata))
        .collect();
    assert_eq!(
        dashboards,
        [
            "flux-status-exporter-dashboard-health",
            "flux-status-exporter-dashboard-reconciliation"
        ]
    );
    let cron_with_secrets = build("cronjob", &["components/secret-references"]);
    assert_eq!(cron_with_secrets.roles.len(), 2);
}

#[test]
fn both_overlays_install_the_alert_rules_of_alerts_yaml() {
    for overlay in ["deployment", "cronjob"] {
        let build = build(overlay, &[]);
        assert_eq!(build.prometheus_rules.len(), 1, "{overlay}");
        assert_eq!(
            build.prometheus_rules[0].spec.groups,
            support::rules::alert_groups(),
            "{overlay}"
        );
    }
}

/// Every build the tests check: both overlays, alone and with the optional components.
fn every_build() -> &'static [(String, Build)] {
    static BUILDS: OnceLock<Vec<(String, Build)>> = OnceLock::new();
    BUILDS.get_or_init(|| {
        vec![
            ("deployment".into(), build("deployment", &[])),
            ("cronjob".into(), build("cronjob", &[])),
            (
                "deployment + podmonitor + secret-references".into(),
                build(
                    "deployment",
                    &["components/podmonitor", "components/secret-references"],
                ),
            ),
            (
                "cronjob + secret-references".into(),
                build("cronjob", &["components/secret-references"]),
            ),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Pod security

#[test]
fn the_pods_run_as_non_root_with_a_read_only_root_filesystem_no_escalation_and_no_capabilities() {
    for (what, build) in every_build() {
        let pod = build.pod();
        let pod_security = pod
            .security_context
            .as_ref()
            .expect("a pod securityContext");
        assert_eq!(pod_security.run_as_non_root, Some(true), "{what}");
        assert!(
            pod_security.run_as_user.is_some_and(|u| u > 0),
            "{what}: runAsUser"
        );
        assert!(
            pod_security.run_as_group.is_some_and(|g| g > 0),
            "{what}: runAsGroup"
        );
        assert_eq!(
            pod_security
                .seccomp_profile
                .as_ref()
                .map(|s| s.type_.as_str()),
            Some("RuntimeDefault"),
            "{what}"
        );
        assert_ne!(pod.host_network, Some(true), "{what}");
        assert_ne!(pod.host_pid, Some(true), "{what}");
        assert_ne!(pod.host_ipc, Some(true), "{what}");
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some(SERVICE_ACCOUNT),
            "{what}"
        );
        for volume in pod.volumes.iter().flatten() {
            assert!(
                volume.host_path.is_none(),
                "{what}: hostPath volume {}",
                volume.name
            );
        }
        assert!(pod.init_containers.is_none(), "{what}: init containers");

        let container = build.container();
        let security = container
            .security_context
            .as_ref()
            .expect("a container securityContext");
        assert_eq!(security.allow_privilege_escalation, Some(false), "{what}");
        assert_eq!(security.read_only_root_filesystem, Some(true), "{what}");
        assert_eq!(security.run_as_non_root, Some(true), "{what}");
        assert_ne!(security.privileged, Some(true), "{what}");
        assert_ne!(security.run_as_user, Some(0), "{what}");
        let capabilities = security.capabilities.as_ref().expect("capabilities");
        assert_eq!(strings(&capabilities.drop), ["ALL"], "{what}");
        assert!(
            strings(&capabilities.add).is_empty(),
            "{what}: capabilities added"
        );
        assert_eq!(
            security.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault"),
            "{what}"
        );
        // Every mount is read-only but the scratch space.
        for mount in container.volume_mounts.iter().flatten() {
            assert!(
                mount.read_only == Some(true) || mount.mount_path == "/tmp",
                "{what}: {} is writable",
                mount.mount_path
            );
        }
    }
}

#[test]
fn the_namespace_enforces_the_restricted_pod_security_standard() {
    for (what, build) in every_build() {
        assert_eq!(build.namespaces.len(), 1, "{what}");
        let namespace = &build.namespaces[0];
        assert_eq!(name(&namespace.metadata), NAMESPACE);
        let labels = namespace.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("pod-security.kubernetes.io/enforce")
                .map(String::as_str),
            Some("restricted"),
            "{what}"
        );
    }
}

#[test]
fn the_container_requests_cpu_and_memory_and_is_limited_in_memory() {
    for (what, build) in every_build() {
        let resources = build.container().resources.as_ref().expect("resources");
        let requests = resources.requests.as_ref().expect("requests");
        let limits = resources.limits.as_ref().expect("limits");
        assert!(requests.contains_key("cpu"), "{what}: no CPU request");
        let request = mebibytes(&requests["memory"]);
        let limit = mebibytes(&limits["memory"]);
        assert!(
            request > 0 && request <= limit,
            "{what}: memory {request}Mi / {limit}Mi"
        );
    }
}

#[test]
fn the_image_is_the_release_of_this_crate_version() {
    for (what, build) in every_build() {
        let image = build.container().image.as_deref().unwrap_or_default();
        assert_eq!(
            image,
            format!(
                "ghcr.io/flux-status-exporter/flux-status-exporter:{}",
                env!("CARGO_PKG_VERSION")
            ),
            "{what}"
        );
    }
}

#[test]
fn the_dockerfile_builds_in_its_own_stage_and_ships_only_the_binary_run_as_the_pods_user() {
    let dockerfile = fs::read_to_string(root().join("Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "a build stage and a run stage");
    let final_stage = instructions.iter().position(|l| l == stages[1]).unwrap();
    let run_stage = &instructions[final_stage..];
    assert!(
        stages[1].starts_with("FROM gcr.io/distroless/static"),
        "final image: {}",
        stages[1]
    );
    assert!(!stages.iter().any(|s| s.contains(":latest")));
    let copies: Vec<&&str> = run_stage.iter().filter(|l| l.starts_with("COPY")).collect();
    assert_eq!(
        copies,
        [&"COPY --from=build /flux-status-exporter /usr/local/bin/flux-status-exporter"]
    );
    let build = build("deployment", &[]);
    let pod_security = build.pod().security_context.as_ref().unwrap();
    let user = format!(
        "USER {}:{}",
        pod_security.run_as_user.unwrap(),
        pod_security.run_as_group.unwrap()
    );
    assert!(
        run_stage.contains(&user.as_str()),
        "{user} in the run stage"
    );
    assert!(run_stage.contains(&"ENTRYPOINT [\"/usr/local/bin/flux-status-exporter\"]"));
}

// ---------------------------------------------------------------------------------------------
// RBAC

#[test]
fn no_rbac_rule_uses_a_wildcard_or_a_verb_beyond_what_the_exporter_does() {
    let allowed_verbs = ["get", "list", "create", "update", "patch", "delete"];
    for (what, build) in every_build() {
        let rules = build.all_rules();
        assert!(!rules.is_empty(), "{what}");
        for (role, rule) in rules {
            for list in [
                strings(&rule.verbs.clone().into()),
                strings(&rule.api_groups),
                strings(&rule.resources),
                strings(&rule.resource_names),
            ] {
                assert!(
                    !list.iter().any(|item| item.contains('*')),
                    "{what}: {role} has a wildcard: {rule:?}"
                );
            }
            assert!(rule.non_resource_urls.is_none(), "{what}: {role}");
            for verb in &rule.verbs {
                assert!(
                    allowed_verbs.contains(&verb.as_str()),
                    "{what}: {role} grants `{verb}`"
                );
            }
        }
    }
}

#[test]
fn the_read_watch_component_adds_watch_and_nothing_else_to_the_flux_kinds() {
    let listing = build("deployment", &[]);
    let watching = build("deployment", &["components/read-watch"]);
    let rules =
        |b: &Build| -> Vec<PolicyRule> { b.cluster_roles[0].rules.clone().unwrap_or_default() };
    assert_eq!(rules(&listing).len(), rules(&watching).len());
    for (list, watch) in rules(&listing).iter().zip(rules(&watching)) {
        assert_eq!(list.verbs, ["get", "list"]);
        assert_eq!(watch.verbs, ["get", "list", "watch"], "{watch:?}");
        assert_eq!(
            (&list.api_groups, &list.resources),
            (&watch.api_groups, &watch.resources)
        );
    }
}

#[test]
fn cluster_wide_the_exporter_may_only_get_and_list_exactly_the_flux_kinds_it_reads() {
    for (what, build) in every_build() {
        assert_eq!(build.cluster_roles.len(), 1, "{what}");
        let mut granted = BTreeSet::new();
        for rule in build.cluster_roles[0].rules.iter().flatten() {
            assert_eq!(rule.verbs, ["get", "list"], "{what}: {rule:?}");
            assert!(rule.resource_names.is_none(), "{what}");
            for group in strings(&rule.api_groups) {
                for resource in strings(&rule.resources) {
                    assert!(
                        granted.insert((group.to_string(), resource.to_string())),
                        "{what}: {group}/{resource} granted twice"
                    );
                }
            }
        }
        let expected: BTreeSet<(String, String)> = FLUX_KINDS_READ
            .iter()
            .map(|(g, r)| (g.to_string(), r.to_string()))
            .collect();
        assert_eq!(granted, expected, "{what}");

        // Bound once, to the exporter's service account; no other cluster-wide grant.
        assert_eq!(build.cluster_role_bindings.len(), 1, "{what}");
        let binding = &build.cluster_role_bindings[0];
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(
            binding.role_ref.name,
            name(&build.cluster_roles[0].metadata)
        );
    }
}

#[test]
fn every_binding_binds_only_the_exporters_service_account() {
    for (what, build) in every_build() {
        assert_eq!(build.service_accounts.len(), 1, "{what}");
        assert_eq!(name(&build.service_accounts[0].metadata), SERVICE_ACCOUNT);
        let role_names: BTreeSet<&str> = build.roles.iter().map(|r| name(&r.metadata)).collect();
        let subjects = build
            .cluster_role_bindings
            .iter()
            .flat_map(|b| b.subjects.iter().flatten())
            .chain(
                build
                    .role_bindings
                    .iter()
                    .flat_map(|b| b.subjects.iter().flatten()),
            );
        for subject in subjects {
            assert_eq!(subject.kind, "ServiceAccount", "{what}");
            assert_eq!(subject.name, SERVICE_ACCOUNT, "{what}");
            assert_eq!(subject.namespace.as_deref(), Some(NAMESPACE), "{what}");
        }
        let mut bound = BTreeSet::new();
        for binding in &build.role_bindings {
            assert_eq!(
                binding.role_ref.kind, "Role",
                "{what}: RoleBinding to a ClusterRole"
            );
            assert!(
                role_names.contains(binding.role_ref.name.as_str()),
                "{what}: binds unknown Role {}",
                binding.role_ref.name
            );
            bound.insert(binding.role_ref.name.as_str());
        }
        assert_eq!(bound, role_names, "{what}: every Role is bound once");
    }
}

#[test]
fn in_its_namespace_the_exporter_may_manage_configmaps_use_its_lease_and_nothing_else() {
    for (what, build) in every_build() {
        let config = build.config();
        for role in &build.roles {
            for rule in role.rules.iter().flatten() {
                let resources = strings(&rule.resources);
                let groups = strings(&rule.api_groups);
                match (groups.as_slice(), resources.as_slice()) {
                    ([""], ["configmaps"]) => assert_eq!(
                        rule.verbs,
                        ["get", "list", "create", "update", "patch", "delete"],
                        "{what}: the ledger's verbs"
                    ),
                    (["coordination.k8s.io"], ["leases"]) => {
                        if rule.resource_names.is_none() {
                            assert_eq!(rule.verbs, ["create"], "{what}: unnamed Lease access");
                        } else {
                            assert_eq!(rule.verbs, ["get", "update"], "{what}");
                            assert_eq!(
                                strings(&rule.resource_names),
                                [config.leader_election.lease_name.as_str()],
                                "{what}: the Lease named in the config"
                            );
                        }
                    }
                    ([""], ["secrets"]) => {
                        assert_eq!(rule.verbs, ["get"], "{what}: Secrets are only read");
                        assert!(
                            !strings(&rule.resource_names).is_empty(),
                            "{what}: Secrets only by name"
                        );
                    }
                    _ => panic!("{what}: unexpected namespaced rule {rule:?}"),
                }
            }
        }
        // The ledger lives in the exporter's own namespace, where the Role is.
        assert_eq!(
            config.ledger.backend,
            LedgerBackend::ConfigMap {
                name: "flux-status-exporter-ledger".into(),
                namespace: None
            },
            "{what}"
        );
        let has_lease_rules = !build.namespaced_rules_on("leases").is_empty();
        assert_eq!(
            has_lease_rules, config.leader_election.enabled,
            "{what}: Lease access exactly when leader election is enabled"
        );
        if config.leader_election.enabled {
            assert_eq!(
                config.leader_election.namespace, None,
                "{what}: own namespace"
            );
        }
    }
}

#[test]
fn secrets_are_readable_only_with_the_secret_references_component_and_only_by_name() {
    let examples = example_secrets();
    let example_names: BTreeSet<String> = examples
        .iter()
        .map(|s| name(&s.metadata).to_string())
        .collect();
    for (what, build) in every_build() {
        let rules = build.namespaced_rules_on("secrets");
        if what.contains("secret-references") {
            assert_eq!(rules.len(), 1, "{what}");
            let names: BTreeSet<String> = strings(&rules[0].resource_names)
                .into_iter()
                .map(str::to_string)
                .collect();
            assert_eq!(names, example_names, "{what}: exactly the example Secrets");
        } else {
            assert!(
                rules.is_empty(),
                "{what}: reads Secrets without the component"
            );
        }
        assert!(
            build
                .cluster_roles
                .iter()
                .flat_map(|r| r.rules.iter().flatten())
                .all(|r| !strings(&r.resources).contains(&"secrets")),
            "{what}: cluster-wide Secret access"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The workloads and their configs

fn named_port(container: &Container, port_name: &str) -> i32 {
    container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(port_name))
        .unwrap_or_else(|| panic!("no port named {port_name}"))
        .container_port
}

#[test]
fn the_deployment_runs_run_and_probes_healthz_and_readyz_on_the_configs_listen_port() {
    let build = build("deployment", &[]);
    let config = build.config();
    let container = build.container();
    assert_eq!(strings(&container.args), ["run"]);
    let port = named_port(container, "http");
    assert_eq!(i32::from(config.http.listen.port()), port);
    for (probe, path) in [
        (&container.liveness_probe, "/healthz"),
        (&container.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::String("http".into()));
    }
    // SIGTERM: in-flight deliveries get the configured grace, and the pod outlives it.
    let grace = build.pod().termination_grace_period_seconds.unwrap();
    assert!(grace as u64 > config.shutdown_grace_period.as_secs());
    assert!(
        config.leader_election.enabled,
        "replicas and rolling updates post once"
    );
}

#[test]
fn the_service_and_monitors_reach_the_metrics_port_and_keep_the_exporters_labels() {
    let build = build("deployment", &["components/podmonitor"]);
    let pod_labels = &build.pod_template().metadata.as_ref().unwrap().labels;

    assert_eq!(build.services.len(), 1);
    let service = &build.services[0];
    let spec = service.spec.as_ref().unwrap();
    assert!(labels_match(
        &LabelSelector {
            match_labels: spec.selector.clone(),
            match_expressions: None
        },
        pod_labels
    ));
    let ports = spec.ports.as_ref().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(
        ports[0].target_port,
        Some(IntOrString::String("http".into()))
    );
    // An unready exporter (its last poll is old) is the one whose metrics matter.
    assert_eq!(spec.publish_not_ready_addresses, Some(true));

    let monitor = &build.service_monitors[0];
    assert_eq!(monitor.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert!(labels_match(
        &monitor.spec.selector,
        &service.metadata.labels
    ));
    let pod_monitor = &build.pod_monitors[0];
    assert!(labels_match(&pod_monitor.spec.selector, pod_labels));
    for (what, job_label, endpoints, labels) in [
        (
            "ServiceMonitor",
            &monitor.spec.job_label,
            &monitor.spec.endpoints,
            &service.metadata.labels,
        ),
        (
            "PodMonitor",
            &pod_monitor.spec.job_label,
            &pod_monitor.spec.pod_metrics_endpoints,
            pod_labels,
        ),
    ] {
        assert_eq!(endpoints.len(), 1, "{what}");
        let endpoint = &endpoints[0];
        assert_eq!(endpoint.port, "http", "{what}");
        assert_eq!(endpoint.path, "/metrics", "{what}");
        assert!(!endpoint.interval.is_empty() && !endpoint.scrape_timeout.is_empty());
        // Without honorLabels, the object's `namespace` label would become `exported_namespace`.
        assert!(endpoint.honor_labels, "{what}");
        // The alert rules expect job="flux-status-exporter".
        assert_eq!(
            labels.as_ref().unwrap().get(job_label).map(String::as_str),
            Some("flux-status-exporter"),
            "{what}: jobLabel {job_label}"
        );
    }
}

#[test]
fn the_cronjob_runs_once_never_concurrently_and_pushes_to_a_pushgateway() {
    let build = build("cronjob", &[]);
    let config = build.config();
    let cron_job = build.cron_jobs[0].spec.as_ref().unwrap();
    assert_eq!(cron_job.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(cron_job.schedule.split_whitespace().count(), 5);
    let job = cron_job.job_template.spec.as_ref().unwrap();
    assert_eq!(job.backoff_limit, Some(0));
    let pod = build.pod();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let container = build.container();
    assert_eq!(strings(&container.args), ["once"]);
    assert!(container.ports.is_none() && container.liveness_probe.is_none());
    let pushgateway = config.pushgateway.as_ref().expect("pushgateway.url");
    assert_eq!(pushgateway.job, "flux-status-exporter");
    assert!(!config.leader_election.enabled);
    // A run ends before the next one is due, and its grace outlasts the config's.
    let deadline = job.active_deadline_seconds.unwrap();
    assert!(
        deadline < 300,
        "activeDeadlineSeconds {deadline} within the 5-minute schedule"
    );
    assert!(
        pod.termination_grace_period_seconds.unwrap() as u64
            > config.shutdown_grace_period.as_secs()
    );
}

#[test]
fn the_config_file_is_the_one_the_container_is_told_to_read() {
    for (what, build) in every_build() {
        let container = build.container();
        let config_path = container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "FLUX_STATUS_EXPORTER_CONFIG")
            .and_then(|e| e.value.clone())
            .expect("FLUX_STATUS_EXPORTER_CONFIG");
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| config_path == format!("{}/config.yaml", m.mount_path))
            .unwrap_or_else(|| panic!("{what}: {config_path} is on no mount"));
        let volume = build
            .pod()
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        let config_map = volume.config_map.as_ref().expect("a ConfigMap volume");
        assert!(
            build
                .config_maps
                .iter()
                .any(|c| name(&c.metadata) == config_map.name),
            "{what}: the volume names the generated ConfigMap (with its hash)"
        );
    }
}

/// Projected credential files: file name under the mount → (Secret, key).
fn credential_files(build: &Build) -> BTreeMap<String, (String, String)> {
    let container = build.container();
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == CREDENTIALS_MOUNT)
        .expect("the credentials mount");
    let volume = build
        .pod()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap();
    let mut files = BTreeMap::new();
    for source in volume.projected.as_ref().unwrap().sources.iter().flatten() {
        let secret = source.secret.as_ref().expect("only Secrets are projected");
        assert_eq!(secret.optional, Some(true), "{}: optional", secret.name);
        for item in secret.items.iter().flatten() {
            let previous = files.insert(item.path.clone(), (secret.name.clone(), item.key.clone()));
            assert!(previous.is_none(), "two Secrets project {}", item.path);
        }
    }
    files
}

/// The files and Secrets a config's credentials name.
fn credential_refs(config: &Config) -> Vec<SecretRef> {
    config
        .forges
        .iter()
        .map(|forge| match &forge.credentials {
            Credentials::Token(r) => r.clone(),
            Credentials::Basic { password, .. } => password.clone(),
            Credentials::GitHubApp { private_key, .. } => private_key.clone(),
        })
        .collect()
}

#[test]
fn every_credential_file_a_config_names_is_projected_from_a_secret() {
    for (what, build) in every_build() {
        let files = credential_files(build);
        let config = build.config();
        assert!(!config.forges.is_empty(), "{what}: an example forge");
        for reference in credential_refs(&config) {
            let SecretRef::File(path) = reference else {
                panic!("{what}: the overlay config should use files, not {reference:?}");
            };
            assert_eq!(path.parent(), Some(Path::new(CREDENTIALS_MOUNT)), "{what}");
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(files.contains_key(&file), "{what}: {file} is not projected");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Network policy

fn port_text(port: &IntOrString) -> String {
    match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(name) => name.clone(),
    }
}

#[test]
fn network_policies_let_out_only_dns_the_api_server_and_https_and_in_only_the_metrics_port() {
    for (what, build) in every_build() {
        let pod_labels = &build.pod_template().metadata.as_ref().unwrap().labels;
        let config = build.config();
        let mut egress_ports = BTreeSet::new();
        let mut ingress_ports = BTreeSet::new();
        let mut policy_types = BTreeSet::new();
        for policy in &build.network_policies {
            let spec = policy.spec.as_ref().unwrap();
            assert!(
                labels_match(&spec.pod_selector.clone().unwrap_or_default(), pod_labels),
                "{what}"
            );
            policy_types.extend(strings(&spec.policy_types).into_iter().map(str::to_string));
            for rule in spec.egress.iter().flatten() {
                let ports = rule
                    .ports
                    .as_ref()
                    .expect("every egress rule names its ports");
                for port in ports {
                    egress_ports.insert((
                        port.protocol.clone().unwrap_or_default(),
                        port_text(port.port.as_ref().unwrap()),
                    ));
                }
            }
            for rule in spec.ingress.iter().flatten() {
                for port in rule
                    .ports
                    .as_ref()
                    .expect("every ingress rule names its ports")
                {
                    ingress_ports.insert((
                        port.protocol.clone().unwrap_or_default(),
                        port_text(port.port.as_ref().unwrap()),
                    ));
                }
            }
        }
        assert_eq!(
            policy_types,
            BTreeSet::from(["Egress".to_string(), "Ingress".to_string()]),
            "{what}"
        );
        let mut expected_egress = BTreeSet::from([
            ("UDP".to_string(), "53".to_string()),
            ("TCP".to_string(), "53".to_string()),
            ("TCP".to_string(), "443".to_string()),
            ("TCP".to_string(), "6443".to_string()),
        ]);
        if let Some(pushgateway) = &config.pushgateway {
            let port: u16 = pushgateway
                .url
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .expect("the Pushgateway URL has a port");
            expected_egress.insert(("TCP".to_string(), port.to_string()));
        }
        assert_eq!(egress_ports, expected_egress, "{what}");
        assert_eq!(
            ingress_ports,
            BTreeSet::from([("TCP".to_string(), config.http.listen.port().to_string())]),
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Examples: Secrets, forge entries, the Flux Kustomization

/// deploy/secrets/*.yaml but forges.yaml, as Secrets.
fn example_secrets() -> Vec<Secret> {
    let dir = root().join("deploy/secrets");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n != "forges.yaml" && !n.starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let documents: Vec<Value> =
                serde_saphyr::from_multiple(&fs::read_to_string(path).unwrap()).unwrap();
            assert_eq!(documents.len(), 1, "{}", path.display());
            typed::<Secret>(&documents[0])
        })
        .collect()
}

#[test]
fn there_is_an_example_secret_for_every_forge_and_credential_kind_laid_out_for_sops() {
    let secrets = example_secrets();
    let names: Vec<&str> = secrets.iter().map(|s| name(&s.metadata)).collect();
    assert_eq!(
        names,
        [
            "flux-status-exporter-azuredevops",
            "flux-status-exporter-bitbucket",
            "flux-status-exporter-gitea",
            "flux-status-exporter-github-app",
            "flux-status-exporter-github",
            "flux-status-exporter-gitlab",
        ]
    );
    for secret in &secrets {
        assert_eq!(secret.metadata.namespace.as_deref(), Some(NAMESPACE));
        // Values only under stringData, which .sops.yaml's encrypted_regex covers.
        assert!(secret.data.is_none(), "{}", name(&secret.metadata));
        assert_eq!(secret.string_data.as_ref().map(BTreeMap::len), Some(1));
    }
    let sops = fs::read_to_string(root().join("deploy/secrets/.sops.yaml")).unwrap();
    assert!(sops.contains("encrypted_regex: ^(data|stringData)$"));

    // The workloads project exactly these Secrets' keys.
    for (what, build) in every_build() {
        let projected: BTreeSet<(String, String)> = credential_files(build).into_values().collect();
        let examples: BTreeSet<(String, String)> = secrets
            .iter()
            .map(|s| {
                let key = s.string_data.as_ref().unwrap().keys().next().unwrap();
                (name(&s.metadata).to_string(), key.clone())
            })
            .collect();
        assert_eq!(projected, examples, "{what}");
    }
}

#[test]
fn the_example_forge_entries_are_a_valid_config_reading_the_projected_files() {
    let config = Config::load(&root().join("deploy/secrets/forges.yaml")).unwrap();
    let mut kinds: Vec<String> = config
        .forges
        .iter()
        .map(|f| {
            let credential = match f.credentials {
                Credentials::Token(_) => "token",
                Credentials::Basic { .. } => "basic",
                Credentials::GitHubApp { .. } => "githubApp",
            };
            format!("{} {credential}", f.kind.as_str())
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "azuredevops token",
            "bitbucket basic",
            "gitea token",
            "github githubApp",
            "github token",
            "gitlab token"
        ]
    );
    let files = credential_files(&build("deployment", &[]));
    let mut used = BTreeSet::new();
    for reference in credential_refs(&config) {
        let SecretRef::File(path) = reference else {
            panic!("forges.yaml should use files, not {reference:?}");
        };
        assert_eq!(path.parent(), Some(Path::new(CREDENTIALS_MOUNT)));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(files.contains_key(&file), "{file} is not projected");
        used.insert(file);
    }
    assert_eq!(
        used.len(),
        files.len(),
        "every projected file has an example entry"
    );
}

#[test]
fn the_flux_example_validates_against_the_vendored_crds_and_deploys_an_overlay_that_builds() {
    let path = root().join("deploy/flux/flux-status-exporter.yaml");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&fs::read_to_string(&path).unwrap()).unwrap();
    let crds = CrdSet::vendored();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds, ["GitRepository", "Kustomization"]);
    for document in &documents {
        assert_eq!(
            crds.check(document),
            Some(vec![]),
            "{} does not validate",
            document["kind"]
        );
    }
    let (source, kustomization) = (&documents[0], &documents[1]);
    assert_eq!(kustomization["spec"]["sourceRef"]["kind"], "GitRepository");
    assert_eq!(
        kustomization["spec"]["sourceRef"]["name"],
        source["metadata"]["name"]
    );
    let overlay = kustomization["spec"]["path"].as_str().unwrap();
    let overlay = overlay.strip_prefix("./deploy/overlays/").unwrap();
    let build = build(overlay, &[]);
    for check in kustomization["spec"]["healthChecks"].as_array().unwrap() {
        assert_eq!(check["kind"], "Deployment");
        assert_eq!(check["namespace"], NAMESPACE);
        assert!(
            build
                .deployments
                .iter()
                .any(|d| Some(name(&d.metadata)) == check["name"].as_str()),
            "the health check names a Deployment the overlay has"
        );
    }
    // The source's tag is this crate's release.
    assert_eq!(
        source["spec"]["ref"]["tag"],
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn relative_paths_climb_to_the_common_ancestor() {
    assert_eq!(
        relative_path(Path::new("/tmp/x1"), Path::new("/work/repo/deploy")),
        PathBuf::from("../../work/repo/deploy")
    );
    assert_eq!(
        relative_path(Path::new("/work/repo/a"), Path::new("/work/repo/deploy/b")),
        PathBuf::from("../deploy/b")
    );
}
