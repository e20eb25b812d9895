//! The two ways users deploy the exporter: `run` (a Deployment) and `once` (a CronJob).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::inputs::load_config;
use super::reload::reloadable;
use super::signals::{Received, Signals};
use super::wiring::metrics_for;
use super::{Exporter, RunError, RunOptions, TickOutcome, TickReport, build_parts};
use crate::config::{Config, KubeRead};
use crate::leader::{Elector, Leadership};
use crate::schedule::Ticker;
use crate::server::{Readiness, Server, ServerState};

/// After the shutdown grace period (when in-flight deliveries are cut off), how long a
/// stopping tick may still take to record and save before it is abandoned.
const STOP_MARGIN: Duration = Duration::from_secs(2);

/// Runs one tick, and on a stop signal lets in-flight deliveries finish within `grace` (the
/// rest are left for the next run). A second stop signal gives up at once.
async fn tick_until_stopped(
    exporter: &mut Exporter,
    signals: &mut Signals,
    grace: Duration,
    reload: &mut bool,
) -> Result<(TickReport, bool), RunError> {
    let publishers = exporter.publishers();
    let tick = exporter.tick();
    tokio::pin!(tick);
    loop {
        tokio::select! {
            report = &mut tick => return Ok((report, false)),
            received = signals.recv() => match received {
                Received::Reload => *reload = true,
                Received::Stop => {
                    tracing::info!(grace_seconds = grace.as_secs(), "stopping: letting in-flight deliveries finish");
                    let drain = async {
                        let (_, report) = tokio::join!(publishers.shutdown(grace), &mut tick);
                        report
                    };
                    // Deliveries are cut off at `grace`; the rest of the tick (a read of a slow
                    // API server, above all) must not hold the process past its deadline
                    // either. Recording is incremental, so nothing delivered is lost.
                    return tokio::select! {
                        report = drain => Ok((report, true)),
                        () = tokio::time::sleep(grace + STOP_MARGIN) => {
                            tracing::warn!(grace_seconds = grace.as_secs(), "the poll did not finish within the shutdown grace period; abandoning it");
                            Ok((TickReport::failed(TickOutcome::Abandoned), true))
                        }
                        () = signals.stop() => Err(RunError::Interrupted),
                    };
                }
            }
        }
    }
}

/// The result of `once`, mapped to the process exit code by the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnceOutcome {
    /// Everything planned was delivered or skipped (exit 0).
    Completed,
    /// Some deliveries failed and wait for the next run (exit 3).
    DeliveriesLeft(usize),
    /// The cluster could not be read (exit 1).
    ReadFailed(String),
    /// The `--snapshot` dump is missing, unreadable or not a dump (exit 2, bad input).
    SnapshotUnreadable(String),
    /// The forge refused some statuses for good, e.g. 422 for an invalid field (exit 5);
    /// they are not offered again until their state changes.
    Refused(usize),
    /// The ledger could not be saved (exit 1).
    SaveFailed(String),
    /// The tick completed but its metrics could not be pushed (exit 4).
    PushFailed(String),
    /// A signal stopped the tick before it finished within the grace period (exit 1); what
    /// was delivered is saved.
    Stopped,
}

/// One tick as a CronJob runs it: load the ledger, tick, save, push metrics.
pub async fn once(options: &RunOptions) -> Result<OnceOutcome, RunError> {
    let config = Arc::new(load_config(options.config_path.as_deref())?);
    let mut signals = Signals::install()?;
    let metrics = metrics_for(&config)?;
    let parts = build_parts(&config, options, false, KubeRead::List).await?;
    let mut exporter = Exporter::new(
        Arc::clone(&config),
        parts,
        Arc::clone(&metrics),
        Leadership::always(),
        options.dry_run,
    )
    .saving_every_tick()
    .loading_ledger_in_first_tick();
    let mut reload = false;
    let (report, _stopped) = tick_until_stopped(
        &mut exporter,
        &mut signals,
        config.shutdown_grace_period,
        &mut reload,
    )
    .await?;
    let mut outcome = match report.outcome {
        TickOutcome::ReadFailed(e) => OnceOutcome::ReadFailed(e),
        TickOutcome::SnapshotUnreadable(e) => OnceOutcome::SnapshotUnreadable(e),
        TickOutcome::SaveFailed(e) => OnceOutcome::SaveFailed(e),
        TickOutcome::LedgerUnreadable(e) => match exporter.take_ledger_load_error() {
            Some(error) => return Err(RunError::Ledger(error)),
            None => OnceOutcome::ReadFailed(e),
        },
        TickOutcome::Abandoned => match exporter.save_if_dirty().await {
            Ok(()) => OnceOutcome::Stopped,
            Err(e) => OnceOutcome::SaveFailed(e.to_string()),
        },
        TickOutcome::Completed if report.retry_later > 0 => {
            OnceOutcome::DeliveriesLeft(report.retry_later)
        }
        TickOutcome::Completed if report.permanent_errors > 0 => {
            OnceOutcome::Refused(report.permanent_errors)
        }
        TickOutcome::Completed => OnceOutcome::Completed,
    };
    if let Some(pushgateway) = &config.pushgateway {
        if options.dry_run {
            tracing::info!(url = %crate::pushgateway::group_url(pushgateway, &config.cluster), "dry run: metrics not pushed");
        } else if let Err(e) = crate::pushgateway::push(
            pushgateway,
            &config.cluster,
            metrics.render_for_push(Timestamp::now()),
        )
        .await
        {
            tracing::error!("{e}");
            if outcome == OnceOutcome::Completed {
                outcome = OnceOutcome::PushFailed(e.to_string());
            }
        }
    }
    Ok(outcome)
}

fn readiness_age(config: &Config) -> Duration {
    config
        .schedule
        .period(Timestamp::now())
        .saturating_mul(config.http.ready_max_age_periods)
}

/// The Deployment mode: ticks on the schedule until SIGTERM/SIGINT, serving HTTP throughout.
pub async fn run(options: &RunOptions) -> Result<(), RunError> {
    let mut config = Arc::new(load_config(options.config_path.as_deref())?);
    let mut signals = Signals::install()?;
    let metrics = metrics_for(&config)?;
    let readiness = Arc::new(Readiness::new(readiness_age(&config)));
    let server_state = Arc::new(ServerState::new(
        Arc::clone(&metrics),
        Arc::clone(&readiness),
    ));
    let listen = options.listen.unwrap_or(config.http.listen);
    let server = Server::bind(listen, Arc::clone(&server_state)).await?;
    tracing::info!(address = %server.local_addr().unwrap_or(listen), "serving /metrics, /healthz, /readyz and /status");
    let (stop_tx, stop_rx) = watch::channel(false);
    let server_task = tokio::spawn(server.serve(stop_rx.clone(), Duration::from_secs(5)));

    let parts = build_parts(
        &config,
        options,
        config.leader_election.enabled,
        config.kube.read,
    )
    .await?;
    let (leadership, elector_task) = match (&parts.connection, config.leader_election.enabled) {
        (Some(connection), true) => {
            let namespace = config
                .leader_election
                .namespace
                .clone()
                .unwrap_or_else(|| connection.default_namespace.clone());
            let identity = crate::leader::identity();
            tracing::info!(lease = %format!("{namespace}/{}", config.leader_election.lease_name), %identity, "campaigning for leadership");
            let (mut elector, leadership) = Elector::new(
                connection.client.clone(),
                &namespace,
                &config.leader_election.lease_name,
                &identity,
                config.leader_election.lease_duration,
            );
            // One round before the first tick, so a replica that can lead does so from the
            // start instead of one schedule period late.
            if let Err(e) = elector.round().await {
                tracing::warn!("leader election: {e}");
            }
            (leadership, Some(tokio::spawn(elector.run(stop_rx.clone()))))
        }
        _ => (Leadership::always(), None),
    };
    let mut exporter = Exporter::new(
        Arc::clone(&config),
        parts,
        Arc::clone(&metrics),
        leadership,
        options.dry_run,
    )
    .with_server(Arc::clone(&server_state));
    exporter.load_ledger().await?;

    let mut ticker = Ticker::new(config.schedule.clone(), config.schedule_jitter);
    let mut next = ticker.first(Timestamp::now(), fastrand::f64());
    let mut reload = false;
    let mut stopped = false;
    while !stopped {
        let Some(due) = next else {
            tracing::error!(schedule = %config.schedule, "the schedule never fires again; stopping");
            break;
        };
        let wait =
            Duration::try_from(due.at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            received = signals.recv() => match received {
                Received::Stop => break,
                Received::Reload => {
                    reload = true;
                }
            }
        }
        if reload {
            reload = false;
            match load_config(options.config_path.as_deref()) {
                Err(e) => {
                    tracing::error!("configuration not reloaded, keeping the running one: {e}")
                }
                Ok(new) => match reloadable(&config, &new) {
                    Err(why) => tracing::error!(
                        "configuration not reloaded, keeping the running one: {why}"
                    ),
                    Ok(()) => match build_parts(&new, options, false, new.kube.read).await {
                        Err(e) => tracing::error!(
                            "configuration not reloaded, keeping the running one: {e}"
                        ),
                        Ok(parts) => {
                            config = Arc::new(new);
                            exporter.reconfigure(Arc::clone(&config), parts);
                            ticker = Ticker::new(config.schedule.clone(), config.schedule_jitter);
                            readiness.set_max_age(readiness_age(&config));
                            next = ticker.first(Timestamp::now(), fastrand::f64());
                            tracing::info!(source = %config.source, "configuration reloaded");
                        }
                    },
                },
            }
            if Timestamp::now() < due.at {
                continue;
            }
        }
        let scheduled = due.at;
        let (_report, stop) = tick_until_stopped(
            &mut exporter,
            &mut signals,
            config.shutdown_grace_period,
            &mut reload,
        )
        .await?;
        stopped = stop;
        next = ticker.after(scheduled, Timestamp::now(), fastrand::f64());
        if let Some(n) = next.filter(|n| n.skipped > 0) {
            tracing::warn!(skipped = n.skipped, schedule = %config.schedule, "the last poll outlasted its slot; skipped scheduled polls (the schedule may be too frequent)");
            for _ in 0..n.skipped {
                metrics.record_poll("skipped", Duration::ZERO, None);
            }
        }
    }

    tracing::info!("shutting down");
    if let Err(e) = exporter.save_if_dirty().await {
        tracing::error!("ledger not saved on shutdown: {e}");
    }
    let _ = stop_tx.send(true);
    let grace = config.shutdown_grace_period;
    let _ = tokio::time::timeout(grace, async {
        if let Some(task) = elector_task {
            let _ = task.await;
        }
        let _ = server_task.await;
    })
    .await;
    Ok(())
}
