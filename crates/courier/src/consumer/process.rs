//! Step 4: processing, running the handler on an admitted message and
//! turning its [`Outcome`] into a settlement.
//!
//! The handler runs inside its tracing span, with panics caught (a panic is
//! a retry, never a crashed consumer). Its slot is freed as soon as it
//! returns, so the next message starts while this one settles.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::FutureExt;
use tracing::Instrument;

use super::admit::admit;
use super::dispatch::Entry;
use super::settle::Action;
use super::stats::bump;
use super::{Ctx, Delivery, Outcome};
use crate::backoff;
use crate::breaker::{Breaker, BreakerState};
use crate::client::millis;
use crate::contract::Readable;
use crate::dlq::DeadReason;
use crate::envelope::{self, Attempt, Envelope};
use crate::error::Error;
use crate::metrics;

/// The delayed-set member for the next attempt: the envelope with its
/// attempt raised (when `count`), and the history so far.
pub(super) fn next_attempt(raw: &str, history: &[Attempt], count: bool) -> Result<String, Error> {
    let mut envelope = Envelope::from_json(raw)?;
    if count {
        envelope.attempt += 1;
    }
    Ok(serde_json::json!({
        "m": envelope.to_json()?,
        "h": serde_json::to_string(history)?,
    })
    .to_string())
}

impl<M, F, Fut> Ctx<M, F>
where
    M: Readable,
    F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    /// One message, from the checks to its settlement.
    pub(super) async fn process(&self, entry: &Entry<'_>) {
        let (keys, deliveries) = (entry.keys, entry.deliveries);

        if deliveries > self.spec.max_attempts as usize {
            let error = format!(
                "delivered {deliveries} times without being settled (max attempts {})",
                self.spec.max_attempts
            );
            return self.dead(entry, "-", DeadReason::Poison, error, None).await;
        }
        let Some(raw) = entry.raw else {
            let error = "the message has no envelope (none, or not UTF-8 text)".to_string();
            return self
                .dead(entry, "-", DeadReason::InvalidPayload, error, None)
                .await;
        };
        let (message, envelope) = match admit::<M>(self.spec, raw) {
            Ok(admitted) => admitted,
            Err(rejected) => {
                if rejected.reason == DeadReason::Expired {
                    bump(&self.stats.expired, 1);
                    metrics::expired(self.spec);
                }
                return self
                    .dead(entry, &rejected.key, rejected.reason, rejected.error, None)
                    .await;
            }
        };
        let key = envelope.key.clone();

        let hinted = match &entry.done_hint {
            Some((hints, i)) => match hints.clone().await.get(*i) {
                Some(Some((hinted, done))) if *hinted == key => Some(*done),
                _ => None,
            },
            None => None,
        };
        let done = match hinted {
            Some(done) => Ok(done),
            None => {
                self.persist(|| self.checker.call(keys.done(&self.group, &key)))
                    .await
            }
        };
        match done {
            Ok(true) => {
                bump(&self.stats.duplicates, 1);
                return self.settle(entry, &key, Action::Skip).await;
            }
            Ok(false) => {}
            // Unsure whether it was handled, for longer than the visibility
            // timeout: leave it held, for another consumer to reclaim.
            Err(e) => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot check the idempotency key; leaving the message pending");
                return;
            }
        }

        // A half-open breaker admits a few probes; the others wait on the
        // delayed set without using an attempt.
        if let Some(breaker) = &self.dependency {
            if !breaker.allow().await.unwrap_or(false) {
                return self.hold_back(entry, &key, raw, breaker).await;
            }
        }
        if let Some(rate) = &self.rate {
            // Waiting is the point; a Redis fault here must not stop work.
            if let Err(e) = rate.acquire().await {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "rate limit unavailable; not waiting");
            }
        }
        let attempt = envelope.attempt;
        let expires_at = envelope.expires_at.clone();
        let delivery = Delivery {
            message,
            envelope,
            partition: keys.partition().map(str::to_string),
        };
        let created_at = delivery.envelope.created_at.clone();
        let span = delivery.span(self.spec);
        let started = Instant::now();
        let outcome = match AssertUnwindSafe((self.handler)(delivery).instrument(span))
            .catch_unwind()
            .await
        {
            Ok(outcome) => outcome,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".into());
                Outcome::retry(format!("handler panicked: {text}"))
            }
        };

        metrics::handler_duration(self.spec, started.elapsed().as_secs_f64());
        // The handler returned: the next message may start while this one
        // settles (within the settling bound).
        let _settling = self.settling.clone().acquire_owned().await.ok();
        drop(entry.permit.lock().map(|mut p| p.take()));
        if outcome == Outcome::Done {
            if let Ok(created) = chrono::DateTime::parse_from_rfc3339(&created_at) {
                let waited = Utc::now() - created.with_timezone(&Utc);
                metrics::end_to_end(
                    self.spec,
                    waited.num_microseconds().unwrap_or(0) as f64 / 1e6,
                );
            }
        }
        if let Some(breaker) = &self.dependency {
            let success = !matches!(outcome, Outcome::Retry { .. });
            let state = breaker.record(success).await;
            // A failure that opened (or found open) the breaker is the
            // dependency's fault, not the message's: it waits out the
            // cool-down without using an attempt.
            if !success && matches!(state, Ok(BreakerState::Open { .. } | BreakerState::Paused)) {
                self.gate_closed.store(true, Ordering::Relaxed);
                return self.hold_back(entry, &key, raw, breaker).await;
            }
        }
        match outcome {
            Outcome::Done => {
                // The done mark must outlive every redelivery that could
                // still be handled, i.e. until the message expires.
                let remaining = chrono::DateTime::parse_from_rfc3339(&expires_at)
                    .ok()
                    .and_then(|at| (at.with_timezone(&Utc) - Utc::now()).to_std().ok())
                    .unwrap_or(self.spec.ttl);
                let ttl = remaining + self.spec.visibility_timeout;
                self.settle(entry, &key, Action::Done { ttl }).await;
            }
            Outcome::Fatal { error } => {
                self.dead(entry, &key, DeadReason::Fatal, error, Some(attempt))
                    .await
            }
            Outcome::Retry { error, .. } if attempt >= self.spec.max_attempts => {
                self.dead(entry, &key, DeadReason::MaxAttempts, error, Some(attempt))
                    .await
            }
            Outcome::Retry { after, error } => {
                let delay = after.unwrap_or_else(|| backoff::delay(&self.spec.backoff, attempt));
                let mut history = entry.history.clone();
                history.push(self.attempt_record(attempt, error, Some(delay)));
                match next_attempt(raw, &history, true) {
                    Ok(delayed) => {
                        self.settle(entry, &key, Action::Retry { delay, delayed })
                            .await
                    }
                    Err(e) => {
                        self.dead(entry, &key, DeadReason::InvalidPayload, e.to_string(), None)
                            .await
                    }
                }
            }
        }
    }

    /// Puts a message back on the delayed set for the breaker's cool-down,
    /// keeping its attempt count: the dependency failed, not the message.
    pub(super) async fn hold_back(
        &self,
        entry: &Entry<'_>,
        key: &str,
        raw: &str,
        breaker: &Breaker,
    ) {
        bump(&self.stats.held_back, 1);
        let delay = breaker.config().cool_down.min(Duration::from_secs(1));
        match next_attempt(raw, &entry.history, false) {
            Ok(delayed) => {
                self.settle(entry, key, Action::HoldBack { delay, delayed })
                    .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot hold a message back; it stays held and will be reclaimed")
            }
        }
    }

    pub(super) fn attempt_record(
        &self,
        attempt: u32,
        error: String,
        delay: Option<Duration>,
    ) -> Attempt {
        Attempt {
            attempt,
            at: envelope::timestamp(Utc::now()),
            consumer: self.name.clone(),
            error,
            retry_in_ms: delay.map(millis),
        }
    }
}
