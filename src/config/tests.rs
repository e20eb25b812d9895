use super::*;
use crate::flux::FluxKind;
use crate::model::RepoLocation;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(text, "test.yaml")
}

fn error(text: &str) -> String {
    match load(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_reference_config_yaml_is_valid() {
    let config = Config::from_yaml(include_str!("../../config.yaml"), "config.yaml").unwrap();
    assert_eq!(config.cluster, "demo");
    assert_eq!(config.forges.len(), 1);
    assert_eq!(
        config.forges[0].credentials,
        Credentials::Token(SecretRef::Env("GITHUB_TOKEN".into()))
    );
    assert_eq!(
        config.forges[0].rate_limit,
        RateLimit {
            per_minute: 80,
            per_hour: 500,
            concurrency: 1
        }
    );
}

#[test]
fn an_empty_file_and_the_built_in_defaults_agree() {
    let empty = load("").unwrap();
    let built_in = Config::built_in().unwrap();
    assert_eq!(empty.to_yaml(), built_in.to_yaml());
    assert_eq!(built_in.cluster, "default");
    assert_eq!(
        built_in.kinds,
        vec![FluxKind::Kustomization, FluxKind::HelmRelease]
    );
    assert_eq!(built_in.statuses.context.source(), DEFAULT_CONTEXT);
    assert_eq!(built_in.kube.page_size, 500);
    assert!(built_in.forges.is_empty());
}

#[test]
fn the_resolved_config_reloads_to_the_same_config() {
    let config = Config::from_yaml(include_str!("../../config.yaml"), "config.yaml").unwrap();
    let again = Config::from_yaml(&config.to_yaml(), "resolved").unwrap();
    assert_eq!(config.to_yaml(), again.to_yaml());
}

#[test]
fn a_typo_names_the_file_line_column_and_field() {
    assert_eq!(
        error("cluster: a\nforges:\n  - type: github\n    hots: github.com\n"),
        "test.yaml:4:5: forges[0].hots: unknown field `hots`, expected one of name, type, host, apiUrl, credentials, repositories, rateLimit, requestTimeout"
    );
    assert_eq!(
        error("clustr: a\n"),
        "test.yaml:1:1: clustr: unknown field `clustr`, expected one of cluster, namespaces, labelSelector, kinds, schedule, scheduleJitter, statuses, forges, ledger, http, pushgateway, kube, leaderElection, shutdownGracePeriod"
    );
}

#[test]
fn malformed_yaml_and_wrong_types_are_located() {
    assert_eq!(
        error("kube:\n  pageSize: lots\n"),
        "test.yaml:2:13: kube.pageSize: invalid u32"
    );
    let e = error("cluster: [\n");
    assert!(e.starts_with("test.yaml:"), "{e}");
    assert_eq!(
        error("schedule: 1m\nscheduleJitter: soon\n"),
        "test.yaml:2:17: scheduleJitter: `soon` is not a duration: it does not start with a number (use numbers with units ns, us, ms, s, m or h, as Go and Flux write durations, e.g. 30s, 5m, 1h30m, 1.5h)"
    );
}

#[test]
fn invalid_values_name_the_field_and_the_problem() {
    let cases = [
        (
            "schedule: '* * * * * * * *'\n",
            "test.yaml: schedule: `* * * * * * * *` is neither an interval (e.g. 30s, 5m) nor a cron expression: expected 5 fields (minute hour day-of-month month day-of-week, as a CronJob's schedule) or 6-7 fields with seconds first, found 8",
        ),
        (
            "schedule: '61 * * * *'\n",
            "test.yaml: schedule: `61 * * * *` is neither an interval (e.g. 30s, 5m) nor a cron expression: minute `61`: 61 is out of range 0-59",
        ),
        (
            "forges:\n  - type: gitlabb\n",
            "test.yaml: forges[0].type: unknown forge type `gitlabb` (expected one of github, gitlab, bitbucket, bitbucketserver, azuredevops, gitea, forgejo)",
        ),
        (
            "statuses:\n  context: 'flux/{clustr}/{kind}/{namespace}/{name}'\n",
            "test.yaml: statuses.context: unknown placeholder `{clustr}` (allowed: cluster, kind, namespace, name)",
        ),
        (
            "statuses:\n  context: 'flux/{name}'\n",
            "test.yaml: statuses.context: must contain {kind}, {namespace}",
        ),
        (
            "statuses:\n  targetUrl: 'grafana/{name}'\n",
            "test.yaml: statuses.targetUrl: `grafana/{name}` must start with https:// or http://",
        ),
        (
            "namespaces: [Team-A]\n",
            "test.yaml: namespaces[0]: `Team-A` is not a valid namespace name",
        ),
        (
            "labelSelector: 'a in (b'\n",
            "test.yaml: labelSelector: invalid label selector `a in (b`: unbalanced `(`",
        ),
        (
            "kinds: [GitRepository]\n",
            "test.yaml: kinds[0]: `GitRepository` is a source kind; only Kustomization and HelmRelease are reported (sources are always read)",
        ),
        (
            "kinds: [Deployment]\n",
            "test.yaml: kinds[0]: unknown Flux kind `Deployment` (expected one of Kustomization, HelmRelease, GitRepository, OCIRepository, HelmChart, Bucket)",
        ),
        (
            "forges:\n  - type: gitea\n    credentials: {token: {env: T}}\n",
            "test.yaml: forges[0].host: required for type gitea",
        ),
        (
            "forges:\n  - type: gitea\n    host: gitea.example.com\n    credentials: {token: {env: T}}\n",
            "test.yaml: forges[0].apiUrl: required for a gitea forge on `gitea.example.com` (e.g. https://gitea.example.com)",
        ),
        (
            "forges:\n  - type: github\n    host: github.example.com\n    credentials: {token: {env: T}}\n",
            "test.yaml: forges[0].apiUrl: required for a github forge on `github.example.com` (e.g. https://github.example.com/api/v3)",
        ),
        (
            "forges:\n  - type: github\n    apiUrl: http://api.github.com\n    credentials: {token: {env: T}}\n",
            "test.yaml: forges[0].apiUrl: `http://api.github.com` must use https (plain http is only allowed to loopback addresses)",
        ),
        (
            "forges:\n  - type: github\n    host: github.example.com\n    apiUrl: http://127.0.0.1.attacker.example/api/v3\n    credentials: {token: {env: T}}\n",
            "test.yaml: forges[0].apiUrl: `http://127.0.0.1.attacker.example/api/v3` must use https (plain http is only allowed to loopback addresses)",
        ),
        (
            "forges:\n  - type: github\n    host: github.example.com\n    apiUrl: http://127.attacker.example/api/v3\n    credentials: {token: {env: T}}\n",
            "test.yaml: forges[0].apiUrl: `http://127.attacker.example/api/v3` must use https (plain http is only allowed to loopback addresses)",
        ),
        (
            "forges:\n  - type: github\n    host: https://github.com\n    credentials: {token: {env: T}}\n",
            "test.yaml: forges[0].host: `https://github.com` must be a lower-case host name without scheme, port or path",
        ),
        (
            "forges:\n  - type: github\n",
            "test.yaml: forges[0].credentials: required (token, basic or githubApp)",
        ),
        (
            "forges:\n  - type: github\n    credentials: {token: {env: T, file: /x}}\n",
            "test.yaml: forges[0].credentials.token: give only one of env, file, secret",
        ),
        (
            "forges:\n  - type: github\n    credentials: {token: {}}\n",
            "test.yaml: forges[0].credentials.token: needs one of env, file, secret",
        ),
        (
            "forges:\n  - type: gitlab\n    credentials: {githubApp: {appId: 1, privateKey: {file: /k}}}\n",
            "test.yaml: forges[0].credentials.githubApp: only for type github, not gitlab",
        ),
        (
            "forges:\n  - type: github\n    credentials: {basic: {username: u, password: {env: P}}}\n",
            "test.yaml: forges[0].credentials.basic: not supported for type github (use token)",
        ),
        (
            "forges:\n  - type: github\n    credentials: {token: {secret: {name: Bad_Name, key: token}}}\n",
            "test.yaml: forges[0].credentials.token.secret.name: `Bad_Name` is not a valid Secret name",
        ),
        (
            "forges:\n  - type: github\n    repositories: ['acme/[']\n    credentials: {token: {env: T}}\n",
            "test.yaml: forges[0].repositories[0]: `acme/[`: unclosed character class; missing ']'",
        ),
        (
            "forges:\n  - type: github\n    credentials: {token: {env: A}}\n  - type: github\n    credentials: {token: {env: B}}\n",
            "test.yaml: forges[1].name: `github` is already used by another forge",
        ),
        (
            "ledger:\n  backend: etcd\n",
            "test.yaml: ledger.backend: unknown backend `etcd` (expected configmap, file or memory)",
        ),
        (
            "ledger:\n  backend: file\n",
            "test.yaml: ledger.path: required when backend is `file`",
        ),
        (
            "http:\n  listen: ':8080'\n",
            "test.yaml: http.listen: `:8080` is not an address:port (e.g. 0.0.0.0:8080)",
        ),
        (
            "kube:\n  pageSize: 0\n",
            "test.yaml: kube.pageSize: 0 is outside 1-10000",
        ),
        (
            "cluster: 'my cluster'\n",
            "test.yaml: cluster: `my cluster` must be 1-63 characters of letters, digits, `-`, `_` or `.`",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(error(text), message, "for:\n{text}");
    }
}

#[test]
fn an_in_cluster_pushgateway_may_use_plain_http_but_a_forge_api_may_not() {
    let config =
        load("pushgateway:\n  url: http://prometheus-pushgateway.monitoring.svc:9091/\n").unwrap();
    assert_eq!(
        config.pushgateway,
        Some(PushgatewayConfig {
            url: "http://prometheus-pushgateway.monitoring.svc:9091".to_string(),
            job: "flux-status-exporter".to_string(),
        })
    );
    assert_eq!(
        error("pushgateway:\n  url: ftp://pushgateway.monitoring:9091\n"),
        "test.yaml: pushgateway.url: `ftp://pushgateway.monitoring:9091` must start with https://"
    );
    assert_eq!(
        error(
            "forges:\n  - type: gitea\n    host: gitea.example.com\n    apiUrl: http://gitea.example.com\n    credentials: {token: {env: T}}\n"
        ),
        "test.yaml: forges[0].apiUrl: `http://gitea.example.com` must use https (plain http is only allowed to loopback addresses)"
    );
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load(Path::new("/nonexistent/flux-status-exporter.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/flux-status-exporter.yaml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn routing_binds_repositories_to_the_forge_of_their_host_and_allowlist() {
    let config = load(
        "forges:\n  - name: acme\n    type: github\n    repositories: ['acme/*']\n    credentials: {token: {env: A}}\n  - name: partner\n    type: github\n    repositories: ['Partner/**']\n    credentials: {token: {env: B}}\n",
    )
    .unwrap();
    let at = |host: &str, repo: &str| RepoLocation {
        host: host.into(),
        repository: repo.into(),
    };
    assert!(
        matches!(config.route(&at("github.com", "acme/app")), Route::Forge(f) if f.name == "acme")
    );
    assert!(
        matches!(config.route(&at("github.com", "ACME/App")), Route::Forge(f) if f.name == "acme")
    );
    assert!(
        matches!(config.route(&at("github.com", "partner/x")), Route::Forge(f) if f.name == "partner")
    );
    assert!(matches!(
        config.route(&at("github.com", "acme/sub/app")),
        Route::NotAllowed(_)
    ));
    assert!(matches!(
        config.route(&at("github.com", "evil/app")),
        Route::NotAllowed(_)
    ));
    assert!(matches!(
        config.route(&at("gitlab.com", "acme/app")),
        Route::Unmatched
    ));
    assert!(matches!(
        config.route(&at("github.com.evil.example", "acme/app")),
        Route::Unmatched
    ));
}
