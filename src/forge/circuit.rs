//! A circuit breaker per forge: after a run of failed requests (no answer, time-outs, 5xx) the
//! forge is left alone for a cool-down; then one probe decides whether to resume. Answers that
//! are the request's fault (4xx) show the forge is up, so they close the circuit. Pure: the
//! caller supplies the time.

use std::time::{Duration, Instant};

/// Circuit settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Consecutive failures that open the circuit.
    pub threshold: u32,
    /// First cool-down; doubled each time a probe fails.
    pub cooldown: Duration,
    /// Longest cool-down.
    pub max_cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// Why a request may not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Open until `until`, after `failures` failed requests in a row.
    Open { until: Instant, failures: u32 },
    /// Half-open and a probe is already out.
    Probing,
}

/// The circuit of one forge.
#[derive(Debug, Clone)]
pub struct Circuit {
    settings: CircuitSettings,
    state: State,
    failures: u32,
    cooldown: Duration,
}

impl Circuit {
    /// A closed circuit.
    pub fn new(settings: CircuitSettings) -> Circuit {
        Circuit {
            settings,
            state: State::Closed,
            failures: 0,
            cooldown: settings.cooldown,
        }
    }

    /// Whether a request may start now; a half-open circuit lets one probe through.
    pub fn begin(&mut self, now: Instant) -> Result<(), Refusal> {
        match self.state {
            State::Closed => Ok(()),
            State::Open { until } if now < until => Err(Refusal::Open {
                until,
                failures: self.failures,
            }),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                Ok(())
            }
            State::HalfOpen { probing: true } => Err(Refusal::Probing),
        }
    }

    /// The forge answered (success or the request's own fault).
    pub fn answered(&mut self) {
        self.state = State::Closed;
        self.failures = 0;
        self.cooldown = self.settings.cooldown;
    }

    /// The request got no usable answer. Returns the cool-down when this opened the circuit.
    pub fn failed(&mut self, now: Instant) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        match self.state {
            State::HalfOpen { .. } => {
                self.cooldown = (self.cooldown * 2).min(self.settings.max_cooldown);
            }
            State::Closed if self.failures >= self.settings.threshold => {}
            _ => return None,
        }
        self.state = State::Open {
            until: now + self.cooldown,
        };
        Some(self.cooldown)
    }

    /// Consecutive failed requests.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A request that began was never sent (its credential could not be read): a probe slot it
    /// held is given back.
    pub fn abandoned(&mut self) {
        if self.state == (State::HalfOpen { probing: true }) {
            self.state = State::HalfOpen { probing: false };
        }
    }

    /// Whether the circuit is open (or probing) rather than closed.
    pub fn is_open(&self) -> bool {
        self.state != State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: CircuitSettings = CircuitSettings {
        threshold: 3,
        cooldown: Duration::from_secs(30),
        max_cooldown: Duration::from_secs(100),
    };

    #[test]
    fn a_run_of_failures_opens_the_circuit_for_the_cooldown() {
        let mut c = Circuit::new(SETTINGS);
        let t0 = Instant::now();
        assert_eq!(c.begin(t0), Ok(()));
        assert_eq!(c.failed(t0), None);
        assert_eq!(c.failed(t0), None);
        assert_eq!(c.failed(t0), Some(Duration::from_secs(30)));
        assert_eq!(
            c.begin(t0 + Duration::from_secs(29)),
            Err(Refusal::Open {
                until: t0 + Duration::from_secs(30),
                failures: 3
            })
        );
        // After the cool-down, exactly one probe goes out.
        assert_eq!(c.begin(t0 + Duration::from_secs(30)), Ok(()));
        assert_eq!(c.begin(t0 + Duration::from_secs(30)), Err(Refusal::Probing));
    }

    #[test]
    fn a_failed_probe_doubles_the_cooldown_up_to_the_cap() {
        let mut c = Circuit::new(SETTINGS);
        let mut now = Instant::now();
        for _ in 0..3 {
            c.begin(now).unwrap();
            c.failed(now);
        }
        for expected in [60, 100, 100] {
            now += Duration::from_secs(1000);
            c.begin(now).unwrap();
            c.failed(now);
            match c.begin(now) {
                Err(Refusal::Open { until, .. }) => {
                    assert_eq!(until - now, Duration::from_secs(expected));
                }
                other => panic!("expected open, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_answer_closes_the_circuit_and_resets_the_count() {
        let mut c = Circuit::new(SETTINGS);
        let now = Instant::now();
        c.failed(now);
        c.failed(now);
        c.answered();
        c.failed(now);
        c.failed(now);
        assert_eq!(c.begin(now), Ok(()));
        assert!(!c.is_open());
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let mut c = Circuit::new(SETTINGS);
        let now = Instant::now();
        for _ in 0..3 {
            c.failed(now);
        }
        let later = now + Duration::from_secs(31);
        c.begin(later).unwrap();
        c.abandoned();
        assert_eq!(c.begin(later), Ok(()));
    }
}
