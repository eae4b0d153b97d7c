//! Step 5: processing, running the handler on an admitted message and
//! turning its [`Outcome`] into a settlement.
//!
//! The handler runs inside its tracing span, with panics caught (a panic is
//! a retry, never a crashed consumer). Its slot is freed as soon as it
//! returns, so the next message starts while this one settles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::Instrument;

use super::admit::{Admission, Precheck, Rejected};
use super::dispatch::Entry;
use super::gate::Pass;
use super::settle::Action;
use super::stats::bump;
use super::{Ctx, Delivery, Outcome};
use crate::backoff;
use crate::contract::Readable;
use crate::dlq::DeadReason;
use crate::envelope::{self, Attempt, Envelope};
use crate::error::Error;
use crate::handler::{self, Handler};
use crate::time::millis;

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

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// One message, from admission to its settlement.
    pub(super) async fn process(&self, entry: &Entry<'_>, precheck: Precheck<M>) {
        let keys = entry.keys;
        let (message, envelope, raw) = match self.admission(entry, precheck).await {
            Admission::Admitted {
                message,
                envelope,
                raw,
            } => (message, envelope, raw),
            Admission::Refused(rejected) => return self.refuse(entry, rejected).await,
            Admission::Duplicate { key } => {
                bump(&self.stats.duplicates, 1);
                return self.settle(entry, &key, Action::Skip).await;
            }
            Admission::Unsure => return,
        };
        let key = envelope.key.clone();
        if let Pass::HoldBack(delay) = self.gate.pass().await {
            return self.hold_back(entry, &key, raw, delay).await;
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
        let outcome = {
            // Counted while it runs, also when a hard stop drops it.
            let _running = Running::start(&self.stats.handling);
            handler::guarded(self.handler.handle(delivery).instrument(span)).await
        };
        let took = started.elapsed();
        bump(&self.stats.handler_micros, took.as_micros() as u64);
        self.metrics.handler_duration(took.as_secs_f64());
        // The handler returned: the next message may start while this one
        // settles (within the settling bound).
        let _settling = self.settling.clone().acquire_owned().await.ok();
        drop(entry.permit.lock().map(|mut p| std::mem::take(&mut *p)));
        if outcome.is_done() {
            if let Ok(created) = chrono::DateTime::parse_from_rfc3339(&created_at) {
                let waited = Utc::now() - created.with_timezone(&Utc);
                self.metrics
                    .end_to_end(waited.num_microseconds().unwrap_or(0) as f64 / 1e6);
            }
        }
        if let Pass::HoldBack(delay) = self.gate.record(&outcome).await {
            return self.hold_back(entry, &key, raw, delay).await;
        }
        // The done mark must outlive every redelivery that could still be
        // handled, i.e. until the message expires.
        let done_ttl =
            || envelope::done_mark_ttl(&expires_at, self.spec.ttl, self.spec.visibility_timeout);
        match outcome {
            Outcome::Done => {
                let ttl = done_ttl();
                self.settle(entry, &key, Action::Done { ttl }).await;
            }
            Outcome::DoneWith(effects) => {
                let ttl = done_ttl();
                let action = if effects.is_empty() {
                    Action::Done { ttl }
                } else {
                    Action::DoneWith { ttl, effects }
                };
                self.settle(entry, &key, action).await;
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

    /// Dead-letters a message admission refused.
    async fn refuse(&self, entry: &Entry<'_>, rejected: Rejected) {
        if rejected.reason == DeadReason::Expired {
            bump(&self.stats.expired, 1);
            self.metrics.expired();
        }
        self.dead(entry, &rejected.key, rejected.reason, rejected.error, None)
            .await
    }

    /// Puts a message back on the delayed set for `delay` (the gate's
    /// answer while the dependency's breaker is open), keeping its attempt
    /// count: the dependency failed, not the message.
    async fn hold_back(&self, entry: &Entry<'_>, key: &str, raw: &str, delay: Duration) {
        bump(&self.stats.held_back, 1);
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

/// One running handler in a count, for as long as it lives.
struct Running<'a>(&'a AtomicU64);

impl<'a> Running<'a> {
    fn start(count: &'a AtomicU64) -> Running<'a> {
        bump(count, 1);
        Running(count)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
