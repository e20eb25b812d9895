//! Time as the delivery machinery sees it.
//!
//! Pacing, back-off and rate-limit waits go through a [`Clock`] so that tests can skip the
//! waits and assert on them, while requests still run against real loopback sockets (tokio's
//! paused clock would jump to the request timeout whenever a socket is not ready yet).

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;

/// A source of time and of waits.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic now, for pacing windows and durations.
    fn now(&self) -> Instant;
    /// Wall-clock now, for `x-ratelimit-reset` epochs, `Retry-After` dates and JWT claims.
    fn wall(&self) -> SystemTime;
    /// Completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock, through tokio's timer (so tokio's paused clock applies to it too).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_the_paused_runtime() {
        let clock = TokioClock;
        let start = clock.now();
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now() - start, Duration::from_secs(3600));
    }
}
