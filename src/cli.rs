//! Command-line interface: arguments parsed once into typed commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::inputs::{load_config, read_snapshot};
use crate::app::{self, OnceOutcome, RunError, RunOptions};
use crate::assess::assess;
use crate::cluster::Snapshot;
use crate::cluster::client::{ConnectError, ConnectOptions, connect};
use crate::cluster::dump::DumpError;
use crate::cluster::kube::{KubeReader, ReadError};
use crate::config::{Config, ConfigError, Credentials, LedgerBackend};
use crate::forge::{CredentialSources, ForgeSetupError, Publishers};
use crate::ledger::{ConfigMapStore, FileStore, Ledger, LedgerError};
use crate::model::Plan;
use crate::plan::plan;
use crate::report;

fn long_version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("FLUX_STATUS_EXPORTER_BUILD_COMMIT"),
        ")"
    )
}

/// Posts Flux reconciliation results as git commit statuses and exports them as Prometheus
/// metrics.
#[derive(Debug, Parser)]
#[command(name = "flux-status-exporter", version = long_version(), about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (see config.yaml in the repository); built-in defaults when absent.
    #[arg(
        long,
        global = true,
        env = "FLUX_STATUS_EXPORTER_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "FLUX_STATUS_EXPORTER_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `flux_status_exporter=debug`.
    #[arg(
        long,
        global = true,
        default_value = "info",
        env = "FLUX_STATUS_EXPORTER_LOG",
        value_name = "FILTER"
    )]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the commit statuses that would be posted for the current state, posting nothing.
    Plan(PlanArgs),
    /// Plan from a snapshot, then post the statuses to the configured forges and print what
    /// became of each (nothing is remembered between runs: every planned status is posted).
    Publish(PublishArgs),
    /// Validate the configuration and print it with every default filled in.
    CheckConfig,
    /// Run as a Deployment: poll on the configured schedule, post changes, serve /metrics,
    /// /healthz, /readyz and /status; SIGHUP reloads the configuration, SIGTERM stops.
    Run(RunArgs),
    /// Run as a CronJob: one poll, then exit (0: done; 1: cluster unreadable, ledger not saved
    /// or stopped before the poll finished; 3: some deliveries left for the next run; 4:
    /// metrics push failed; 130: a second stop signal).
    Once(OnceArgs),
}

/// Where to read the cluster: a dump or the API.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Read the cluster from a `kubectl get ... -o yaml|json` dump instead of the API (`run`
    /// re-reads it every poll).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kubeconfig", "context"])]
    pub snapshot: Option<PathBuf>,

    /// Kubeconfig file; default: `KUBECONFIG`, then `~/.kube/config`, then the pod's service
    /// account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context; default: its current-context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Where `run` and `once` read the cluster, and whether they post.
#[derive(Debug, Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Log each status that would be posted instead of posting it; the ledger is never
    /// written (and is kept in memory only when reading a snapshot).
    #[arg(long)]
    pub dry_run: bool,
}

/// `run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Listen address for the HTTP endpoints; overrides `http.listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

/// `once` arguments.
#[derive(Debug, Args)]
pub struct OnceArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}

/// `publish` arguments.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Read the cluster from a `kubectl get ... -o yaml|json` dump instead of the API.
    #[arg(long, value_name = "FILE")]
    pub snapshot: PathBuf,

    /// Log each request that would be sent instead of sending it; credentials are not read.
    #[arg(long)]
    pub dry_run: bool,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `plan` output formats: those of `publish`, and `wide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// The updates to post, a row each.
    Table,
    /// The updates to post, as JSON.
    Json,
    /// One row per Flux object, as `flux get` shows them, with what was last posted.
    Wide,
}

/// `plan` arguments.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Plan against an empty ledger (everything as new) instead of the configured one.
    #[arg(long)]
    pub no_ledger: bool,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = PlanFormat::Table)]
    pub output: PlanFormat,
}

/// `publish` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// A command that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error(transparent)]
    Forge(#[from] ForgeSetupError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot reach the cluster to read credential Secrets: {0}")]
    Kube(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// `once` finished, but not cleanly; `code` is its exit code.
    #[error("{message}")]
    Once { code: u8, message: String },
    /// A credential that can be read but not used.
    #[error("{0}")]
    Credential(String),
    #[error("{failed} of {total} statuses were not delivered")]
    Undelivered {
        failed: usize,
        total: usize,
        /// The report of every outcome, printed before the error.
        output: String,
    },
}

impl CommandError {
    /// The process exit code: 2 for bad input (configuration, snapshot, kubeconfig,
    /// credentials), 1 when the cluster cannot be read or statuses were not delivered.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CommandError::Config(_)
            | CommandError::Dump(_)
            | CommandError::Forge(_)
            | CommandError::Credential(_)
            | CommandError::Connect(_) => ExitCode::from(2),
            CommandError::Read(_)
            | CommandError::Kube(_)
            | CommandError::Ledger(_)
            | CommandError::Undelivered { .. } => ExitCode::from(1),
            CommandError::Run(RunError::Interrupted) => ExitCode::from(130),
            CommandError::Run(e) if e.is_bad_input() => ExitCode::from(2),
            CommandError::Run(_) => ExitCode::from(1),
            CommandError::Once { code, .. } => ExitCode::from(*code),
        }
    }

    /// What to print on standard output despite the error.
    pub fn output(&self) -> Option<&str> {
        match self {
            CommandError::Undelivered { output, .. } => Some(output),
            _ => None,
        }
    }
}

/// Runs the parsed command; returns what to print on standard output.
pub async fn execute(cli: &Cli) -> Result<String, CommandError> {
    match &cli.command {
        Command::Run(args) => {
            app::run(&run_options(cli, &args.source, args.listen)).await?;
            return Ok(String::new());
        }
        Command::Once(args) => {
            return match app::once(&run_options(cli, &args.source, None)).await? {
                OnceOutcome::Completed => Ok(String::new()),
                OnceOutcome::ReadFailed(e) => Err(CommandError::Once {
                    code: 1,
                    message: format!("the cluster could not be read: {e}"),
                }),
                OnceOutcome::SnapshotUnreadable(e) => Err(CommandError::Once {
                    code: 2,
                    message: e,
                }),
                OnceOutcome::Refused(n) => Err(CommandError::Once {
                    code: 5,
                    message: format!(
                        "the forge refused {n} status update(s) for good; they are not sent again until their state changes"
                    ),
                }),
                OnceOutcome::SaveFailed(e) => Err(CommandError::Once {
                    code: 1,
                    message: format!("the ledger could not be saved: {e}"),
                }),
                OnceOutcome::DeliveriesLeft(n) => Err(CommandError::Once {
                    code: 3,
                    message: format!(
                        "{n} status update(s) could not be delivered and are left for the next run"
                    ),
                }),
                OnceOutcome::PushFailed(e) => Err(CommandError::Once {
                    code: 4,
                    message: e,
                }),
                OnceOutcome::Stopped => Err(CommandError::Once {
                    code: 1,
                    message: "stopped before the poll finished; what was delivered is saved"
                        .to_string(),
                }),
            };
        }
        _ => {}
    }
    let config = load_config(cli.config.as_deref())?;
    match &cli.command {
        Command::CheckConfig => {
            check_app_keys(&config).await?;
            tracing::info!(source = %config.source, forges = config.forges.len(), "configuration is valid");
            Ok(config.to_yaml())
        }
        Command::Plan(args) => {
            let snapshot = match &args.cluster.snapshot {
                Some(path) => read_snapshot(path, &config)?,
                None => {
                    let options = ConnectOptions {
                        kubeconfig: args.cluster.kubeconfig.clone(),
                        context: args.cluster.context.clone(),
                        request_timeout: config.kube.request_timeout,
                    };
                    read_cluster(&options, &config).await?
                }
            };
            let assessment = assess(&snapshot, &config);
            // The assessment owns what planning needs; a large cluster's objects can go now.
            drop(snapshot);
            for resource in &assessment.resources {
                if let Some(why) = &resource.unattributed {
                    tracing::info!(resource = %resource.resource, "no commit status: {why}");
                }
            }
            let mut ledger = if args.no_ledger {
                Ledger::new()
            } else {
                ledger_for_plan(&config, &args.cluster).await?
            };
            // As a tick does: what the ledger knows of the objects is brought up to date first.
            ledger.observe(&assessment, jiff::Timestamp::now());
            if args.output == PlanFormat::Wide {
                return Ok(report::objects_wide(&assessment, &ledger, &config));
            }
            let planned = plan(&assessment, &ledger, &config);
            drop(assessment);
            Ok(match args.output {
                PlanFormat::Table | PlanFormat::Wide => report::plan_table(&planned),
                PlanFormat::Json => report::plan_json(&planned),
            })
        }
        Command::Publish(args) => publish(args, &config).await,
        Command::Run(_) | Command::Once(_) => Ok(String::new()),
    }
}

/// Checks that every GitHub App private key that can be read here (a file or an environment
/// variable present on this machine) is an RSA key in PEM form. Keys in Kubernetes Secrets, and
/// files or variables only the pod has, are named as not checked.
async fn check_app_keys(config: &Config) -> Result<(), CommandError> {
    let sources = CredentialSources::new();
    for (index, forge) in config.forges.iter().enumerate() {
        let Credentials::GitHubApp {
            app_id,
            private_key,
            ..
        } = &forge.credentials
        else {
            continue;
        };
        let field = format!(
            "forges[{index}] ({}): credentials.githubApp.privateKey",
            forge.name
        );
        if private_key.is_kubernetes_secret() {
            tracing::info!("{field}: a Kubernetes Secret; not checked here");
            continue;
        }
        match sources.source(private_key).get().await {
            Ok(pem) => {
                if let Err(problem) = crate::forge::check_private_key(&pem) {
                    return Err(CommandError::Credential(format!(
                        "{field} of GitHub App {app_id}: {problem}"
                    )));
                }
            }
            Err(unread) => tracing::warn!("{field}: not checked: {unread}"),
        }
    }
    Ok(())
}

/// The configured ledger, read without writing anything. A ConfigMap ledger needs the cluster:
/// planning a `--snapshot` where no cluster can be reached plans against an empty ledger, with
/// a warning.
async fn ledger_for_plan(config: &Config, cluster: &ClusterArgs) -> Result<Ledger, CommandError> {
    let loaded = match &config.ledger.backend {
        LedgerBackend::Memory => return Ok(Ledger::new()),
        LedgerBackend::File(path) => FileStore::new(path.clone()).peek()?,
        LedgerBackend::ConfigMap { name, namespace } => {
            match configmap_ledger(config, cluster, name, namespace.as_deref()).await {
                Ok(loaded) => loaded,
                Err(e) if cluster.snapshot.is_some() => {
                    tracing::warn!(
                        "the ConfigMap ledger cannot be read ({e}); planning the snapshot against an empty ledger (--no-ledger says so on purpose)"
                    );
                    return Ok(Ledger::new());
                }
                Err(e) => return Err(e),
            }
        }
    };
    if let Some(why) = &loaded.discarded {
        tracing::warn!("{why}");
    }
    Ok(loaded.ledger)
}

async fn configmap_ledger(
    config: &Config,
    cluster: &ClusterArgs,
    name: &str,
    namespace: Option<&str>,
) -> Result<crate::ledger::Loaded, CommandError> {
    let options = ConnectOptions {
        kubeconfig: cluster.kubeconfig.clone(),
        context: cluster.context.clone(),
        request_timeout: config.kube.request_timeout,
    };
    let connection = connect(&options).await?;
    let namespace = namespace.map_or_else(|| connection.default_namespace.clone(), str::to_string);
    Ok(ConfigMapStore::new(connection.client, &namespace, name)
        .load()
        .await?)
}

fn plan_snapshot(path: &std::path::Path, config: &Config) -> Result<Plan, CommandError> {
    let snapshot = read_snapshot(path, config)?;
    let assessment = assess(&snapshot, config);
    for resource in &assessment.resources {
        if let Some(why) = &resource.unattributed {
            tracing::info!(resource = %resource.resource, "no commit status: {why}");
        }
    }
    Ok(plan(&assessment, &Ledger::new(), config))
}

async fn publish(args: &PublishArgs, config: &Config) -> Result<String, CommandError> {
    let planned = plan_snapshot(&args.snapshot, config)?;
    let publishers = if args.dry_run {
        Publishers::dry_run_for(config)?
    } else {
        let sources = credential_sources(config).await?;
        // A credential that cannot be read is one setup error, not a failure per status.
        Publishers::read_credentials(config, &sources).await?;
        Publishers::from_config(config, &sources)?
    };
    let outcomes = publishers.publish(&planned.updates).await;
    let output = match args.output {
        OutputFormat::Table => report::outcomes_table(&outcomes),
        OutputFormat::Json => report::outcomes_json(&outcomes),
    };
    let failed = outcomes
        .iter()
        .filter(|o| o.result.error().is_some())
        .count();
    if failed > 0 {
        return Err(CommandError::Undelivered {
            failed,
            total: outcomes.len(),
            output,
        });
    }
    Ok(output)
}

fn run_options(cli: &Cli, source: &SourceArgs, listen: Option<std::net::SocketAddr>) -> RunOptions {
    RunOptions {
        config_path: cli.config.clone(),
        snapshot: source.cluster.snapshot.clone(),
        kubeconfig: source.cluster.kubeconfig.clone(),
        context: source.cluster.context.clone(),
        dry_run: source.dry_run,
        listen,
    }
}

/// Environment and files; a Kubernetes client too when a forge reads a Secret.
async fn credential_sources(config: &Config) -> Result<CredentialSources, CommandError> {
    let uses_secrets = config
        .forges
        .iter()
        .any(|f| f.credentials.uses_kubernetes_secret());
    let sources = CredentialSources::new();
    if !uses_secrets {
        return Ok(sources);
    }
    let client = kube::Client::try_default()
        .await
        .map_err(|e| CommandError::Kube(e.to_string()))?;
    let namespace = client.default_namespace().to_string();
    Ok(sources.with_kube(client, namespace))
}

/// Connects as `options` say and reads the Flux objects, logging what was skipped.
pub async fn read_cluster(
    options: &ConnectOptions,
    config: &Config,
) -> Result<Snapshot, CommandError> {
    let connection = connect(options).await?;
    let outcome = KubeReader::new(connection.client, config).read().await?;
    tracing::info!(
        objects = outcome.snapshot.object_count(),
        requests = outcome.requests.len(),
        "read the cluster"
    );
    for object in &outcome.snapshot.undecodable {
        tracing::warn!("skipping {object}");
    }
    Ok(outcome.snapshot)
}
