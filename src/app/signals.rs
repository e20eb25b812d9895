//! The signals the exporter acts on: SIGTERM and SIGINT stop it, SIGHUP reloads.

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::RunError;

/// The signals the exporter acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Received {
    Stop,
    Reload,
}

pub(super) struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    pub(super) fn install() -> Result<Signals, RunError> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).map_err(RunError::Signals)?,
            interrupt: signal(SignalKind::interrupt()).map_err(RunError::Signals)?,
            hangup: signal(SignalKind::hangup()).map_err(RunError::Signals)?,
        })
    }

    pub(super) async fn recv(&mut self) -> Received {
        tokio::select! {
            _ = self.terminate.recv() => Received::Stop,
            _ = self.interrupt.recv() => Received::Stop,
            _ = self.hangup.recv() => Received::Reload,
        }
    }

    pub(super) async fn stop(&mut self) {
        while self.recv().await != Received::Stop {}
    }
}
