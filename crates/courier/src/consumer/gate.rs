//! The gate: whether a handler may start now.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Ctx, Delivery, Outcome};
use crate::breaker::BreakerState;
use crate::contract::Readable;
use crate::metrics;

/// How often a consumer reads the pause switch and its dependency's
/// breaker: every worker stops taking work within this after either opens.
pub(super) const GATE_REFRESH: Duration = Duration::from_millis(200);

impl<M, F, Fut> Ctx<M, F>
where
    M: Readable,
    F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    /// Reads the pause switch and the dependency's breaker; either one
    /// open closes the gate. An unreadable state keeps the last decision.
    pub(super) async fn refresh_gate(&self) {
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
        self.gate_closed.store(closed, Ordering::Relaxed);
    }
}
