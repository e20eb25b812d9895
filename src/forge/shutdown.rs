//! The publishers' shutdown phases: running, draining (no new request starts, in-flight ones
//! finish), aborted (in-flight requests are cut off).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Running,
    /// No new request starts; in-flight ones finish.
    Draining,
    /// In-flight requests are cut off.
    Aborted,
}

/// The phase and the requests in flight.
#[derive(Debug)]
pub(crate) struct Shutdown {
    phase: watch::Sender<Phase>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Shutdown {
    pub(crate) fn new() -> Shutdown {
        Shutdown {
            phase: watch::Sender::new(Phase::Running),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    pub(crate) fn enter(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// Completes once the phase is `phase` or later.
    pub(crate) async fn reached(&self, phase: Phase) {
        let mut rx = self.phase.subscribe();
        // The sender lives as long as `self`, so the wait ends only by reaching the phase.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }

    /// Completes once no request is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Counts a request as in flight while it lives.
pub(crate) struct InFlight<'a>(&'a Shutdown);

impl<'a> InFlight<'a> {
    pub(crate) fn new(shutdown: &'a Shutdown) -> InFlight<'a> {
        shutdown.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(shutdown)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
