//! Time as the program sees it: one [`Clock`] for waits, deadlines and timestamps.
//!
//! Pacing, back-off and rate-limit waits go through [`Clock::sleep`], so that tests can skip
//! them and assert on them. Limits on how long we wait for something outside (a request's
//! answer, in-flight requests at shutdown) go through [`Clock::deadline`]: a clock that skips
//! waits keeps real deadlines by default, because the other side (a real loopback socket)
//! still needs real time to answer; a fully virtual clock overrides it too.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::{BoxFuture, Either, select};

/// A source of time and of waits.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic now, for pacing windows and durations.
    fn now(&self) -> Instant;
    /// Wall-clock now, for `x-ratelimit-reset` epochs, `Retry-After` dates and JWT claims.
    fn wall(&self) -> SystemTime;
    /// Completes once `duration` has passed on this clock (a wait we choose to make).
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
    /// Completes once `duration` has passed for a deadline on something outside us (an
    /// answer, a drain). Real time through tokio unless the clock says otherwise.
    fn deadline(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The deadline passed before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no result within {0:?}")]
pub struct Elapsed(pub Duration);

impl dyn Clock {
    /// `work`'s output, unless [`Clock::deadline`] of `limit` comes first.
    pub async fn timeout<F: Future>(&self, limit: Duration, work: F) -> Result<F::Output, Elapsed> {
        let work = std::pin::pin!(work);
        match select(work, self.deadline(limit)).await {
            Either::Left((output, _)) => Ok(output),
            Either::Right(((), _)) => Err(Elapsed(limit)),
        }
    }
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
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_the_paused_runtime() {
        let clock = TokioClock;
        let start = clock.now();
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now() - start, Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_gives_the_output_when_the_work_is_first() {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock);
        assert_eq!(
            clock.timeout(Duration::from_secs(1), async { 7 }).await,
            Ok(7)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_names_its_limit_when_the_deadline_is_first() {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock);
        let never = futures_util::future::pending::<()>();
        assert_eq!(
            clock.timeout(Duration::from_millis(200), never).await,
            Err(Elapsed(Duration::from_millis(200)))
        );
    }
}
