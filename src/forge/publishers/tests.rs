use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use futures_util::future::BoxFuture;

use super::*;
use crate::forge::answer::{Failure, ReadAnswer};
use crate::forge::request::StatusRequest;
use crate::forge::tests::update;
use crate::forge::transport::Transport;
use crate::model::CommitState;

/// A clock on which every wait and every deadline passes at once, recording each.
#[derive(Debug)]
struct VirtualClock {
    start: Instant,
    sleeps: Mutex<Vec<Duration>>,
    deadlines: Mutex<Vec<Duration>>,
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        self.start
    }

    fn wall(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.sleeps.lock().unwrap().push(duration);
        Box::pin(tokio::task::yield_now())
    }

    fn deadline(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.deadlines.lock().unwrap().push(duration);
        Box::pin(tokio::task::yield_now())
    }
}

/// A forge that never answers.
#[derive(Debug)]
struct Silent;

impl Transport for Silent {
    fn send<'a>(
        &'a self,
        _update: &'a StatusUpdate,
        _request: &'a StatusRequest,
    ) -> BoxFuture<'a, Result<ReadAnswer, Failure>> {
        Box::pin(futures_util::future::pending())
    }
}

#[tokio::test]
async fn request_timeouts_run_on_the_clock_so_a_virtual_one_never_waits() {
    let clock = Arc::new(VirtualClock {
        start: Instant::now(),
        sleeps: Mutex::new(Vec::new()),
        deadlines: Mutex::new(Vec::new()),
    });
    let policy = DeliveryPolicy {
        jitter_seed: Some(7),
        ..DeliveryPolicy::default()
    };
    let publisher = Publisher::new(NEUTRAL.at(""), Box::new(Silent));
    let lane = Lane::new(None, publisher, false, &policy);
    let publishers = Publishers::assemble(Vec::new(), Some(lane), policy, clock.clone());
    let outcomes = publishers
        .publish(&[update("h", "a/b", CommitState::Success)])
        .await;
    assert_eq!(
        outcomes[0].result,
        DeliveryResult::RetryLater {
            error: "no answer within 10s (gave up after 4 attempts)".into()
        }
    );
    assert_eq!(outcomes[0].attempts, 4);
    assert_eq!(
        *clock.deadlines.lock().unwrap(),
        vec![Duration::from_secs(10); 4]
    );
    // A back-off between each two attempts, and no other wait.
    assert_eq!(clock.sleeps.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn shutdown_with_nothing_in_flight_is_done_at_once() {
    let publishers = Publishers::dry_run();
    assert!(publishers.shutdown(Duration::from_secs(5)).await);
    assert!(publishers.is_shutting_down());
}
