//! Step 4: the gate, the one place that answers "may a handler start now,
//! and if not, how long to wait".
//!
//! Three things shared by every worker through Redis decide it: the
//! channel's manual pause, the circuit breaker of the handler's dependency
//! and the shared rate limit. Reading the pause and the breaker on every
//! message would cost two round trips per message, so maintenance refreshes
//! a local answer every [`GATE_REFRESH`] ([`Gate::refresh`]) and readers
//! consult it without a round trip ([`Gate::wait`]): every worker stops
//! taking work within one refresh of either opening. What only the moment
//! of a handler's start can decide (a half-open breaker's probe permit, a
//! rate token) is asked then ([`Gate::pass`]), and what a handler's outcome
//! tells the breaker is recorded after it ([`Gate::record`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::options::{Dependency, Rate};
use super::Outcome;
use crate::breaker::{Breaker, BreakerConfig, BreakerState};
use crate::client::Client;
use crate::error::Error;
use crate::metrics;
use crate::ratelimit::RateLimit;
use crate::spec::ChannelSpec;

/// How often a consumer reads the pause switch and its dependency's
/// breaker: every worker stops taking work within this after either opens.
pub(super) const GATE_REFRESH: Duration = Duration::from_millis(200);

/// The longest a message is held back while its dependency's breaker is
/// open: it comes back, still unattempted, at most this late after the
/// breaker closes.
const HOLD_BACK_MAX: Duration = Duration::from_secs(1);

/// Whether a handler may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// Start the handler.
    Start,
    /// Do not: put the message back on the delayed set for this long,
    /// without using an attempt (the dependency is failing, not the
    /// message).
    HoldBack(Duration),
}

/// The pause, the dependency's breaker and the shared rate of one
/// consumer, behind one answer.
pub(super) struct Gate {
    /// The channel, for logs and the gate metric.
    spec: &'static ChannelSpec,
    /// The channel's manual pause, a breaker only tools open.
    pause_switch: Breaker,
    /// The handler's dependency breaker, if any.
    dependency: Option<Breaker>,
    /// The shared rate handlers start at, if limited.
    rate: Option<RateLimit>,
    /// Whether the pause or the dependency's breaker stops taking work, as
    /// of the last refresh (or a handler's failure that found the breaker
    /// open).
    closed: AtomicBool,
}

impl Gate {
    /// The gate of a consumer of `spec`.
    pub(super) fn new(
        client: &Client,
        spec: &'static ChannelSpec,
        dependency: Option<Dependency>,
        rate: Option<Rate>,
    ) -> Result<Gate, Error> {
        Ok(Gate {
            spec,
            pause_switch: Breaker::channel(client, spec, BreakerConfig::default())?,
            dependency: match dependency {
                Some(dependency) => {
                    Some(Breaker::new(client, &dependency.name, dependency.breaker)?)
                }
                None => None,
            },
            rate: match rate {
                Some(rate) => Some(RateLimit::new(
                    client,
                    &rate.name,
                    rate.per_second,
                    rate.burst,
                )?),
                None => None,
            },
            closed: AtomicBool::new(false),
        })
    }

    /// For readers, before taking work: `None` when they may take it;
    /// otherwise how long to wait before asking again. While the channel
    /// is paused or the dependency's breaker open, nothing is taken, so
    /// every message stays queued.
    pub(super) fn wait(&self) -> Option<Duration> {
        self.closed
            .load(Ordering::Relaxed)
            .then_some(GATE_REFRESH / 2)
    }

    /// Right before a handler starts: a half-open breaker admits a few
    /// probes and holds the other messages back; the shared rate makes the
    /// handler wait for its token (a Redis fault there does not stop work).
    pub(super) async fn pass(&self) -> Pass {
        if let Some(breaker) = &self.dependency {
            if !breaker.allow().await.unwrap_or(false) {
                return Pass::HoldBack(hold_back_for(breaker));
            }
        }
        if let Some(rate) = &self.rate {
            if let Err(e) = rate.acquire().await {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "rate limit unavailable; not waiting");
            }
        }
        Pass::Start
    }

    /// After a handler: counts its outcome on the dependency's breaker (a
    /// retry is a failure). A failure that opened the breaker, or found it
    /// open, is the dependency's fault rather than the message's: the gate
    /// closes at once and the message is held back.
    pub(super) async fn record(&self, outcome: &Outcome) -> Pass {
        let Some(breaker) = &self.dependency else {
            return Pass::Start;
        };
        let success = !matches!(outcome, Outcome::Retry { .. });
        let state = breaker.record(success).await;
        if !success && matches!(state, Ok(BreakerState::Open { .. } | BreakerState::Paused)) {
            self.closed.store(true, Ordering::Relaxed);
            return Pass::HoldBack(hold_back_for(breaker));
        }
        Pass::Start
    }

    /// Reads the pause switch and the dependency's breaker; either one
    /// open closes the gate. An unreadable state keeps the last decision.
    /// Maintenance calls it every [`GATE_REFRESH`].
    pub(super) async fn refresh(&self) {
        let paused = self.pause_switch.state().await;
        let dependency = match &self.dependency {
            Some(breaker) => Some(breaker.state().await),
            None => None,
        };
        let paused_now = matches!(paused, Ok(BreakerState::Paused));
        let dependency_open = match (&self.dependency, &dependency) {
            (Some(breaker), Some(Ok(state))) => {
                Some((breaker.name(), !matches!(state, BreakerState::Closed)))
            }
            _ => None,
        };
        metrics::gate(self.spec, paused_now, dependency_open);
        let closed = match (paused, dependency) {
            (Ok(BreakerState::Paused), _) => true,
            (_, Some(Ok(BreakerState::Open { .. } | BreakerState::Paused))) => true,
            (Ok(_), None | Some(Ok(_))) => false,
            (Err(e), _) | (_, Some(Err(e))) => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot read the pause or breaker state");
                return;
            }
        };
        self.closed.store(closed, Ordering::Relaxed);
    }
}

/// How long a message waits on the delayed set while `breaker` is open:
/// its cool-down, at most [`HOLD_BACK_MAX`].
fn hold_back_for(breaker: &Breaker) -> Duration {
    breaker.config().cool_down.min(HOLD_BACK_MAX)
}
