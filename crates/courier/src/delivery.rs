//! What a handler receives and returns: a [`Delivery`] in, an [`Outcome`]
//! out.
//!
//! The public face of the consumer's pipeline: everything in `consumer/`
//! is how a message gets from Redis to here and back, and [`crate::handler`]
//! and [`crate::testing`] build on these two alone. A delivery also carries the
//! trace context of its handling, so follow-up messages continue the trace
//! and the correlation.

use std::fmt;
use std::time::Duration;

use crate::effects::{self, Effects};
use crate::envelope::{Envelope, TraceContext};
use crate::partition;
use crate::publish::PublishOptions;
use crate::spec::ChannelSpec;

/// What a handler decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: acknowledge it and mark its idempotency key done.
    Done,
    /// Handled, with Redis-side effects written in the same step as the
    /// acknowledgement, once per idempotency key (`crate::effects`).
    DoneWith(Effects),
    /// Failed for now: try again later, up to the channel's max attempts.
    Retry {
        /// Delay before the next attempt; default: the channel's backoff.
        after: Option<Duration>,
        /// What went wrong, kept in the attempt history.
        error: String,
    },
    /// Failed for good: dead-letter it now.
    Fatal {
        /// What went wrong.
        error: String,
    },
}

impl Outcome {
    /// Retry after the channel's backoff.
    pub fn retry(error: impl fmt::Display) -> Self {
        Outcome::Retry {
            after: None,
            error: error.to_string(),
        }
    }

    /// Retry after `delay`.
    pub fn retry_after(delay: Duration, error: impl fmt::Display) -> Self {
        Outcome::Retry {
            after: Some(delay),
            error: error.to_string(),
        }
    }

    /// Whether the message was handled ([`Outcome::Done`] or
    /// [`Outcome::DoneWith`]).
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done | Outcome::DoneWith(_))
    }

    /// Dead-letter now.
    pub fn fatal(error: impl fmt::Display) -> Self {
        Outcome::Fatal {
            error: error.to_string(),
        }
    }
}

/// One message handed to a handler.
#[derive(Debug)]
pub struct Delivery<M> {
    /// The decoded, validated message.
    pub message: M,
    /// Its envelope; the payload is `null` here since `message` holds it.
    pub envelope: Envelope,
    /// The partition it came from.
    pub partition: Option<String>,
}

impl<M> Delivery<M> {
    /// The trace context of this handling: a child of the span that
    /// published the message (or a new trace when it carried none).
    pub fn trace(&self) -> TraceContext {
        let parent = self
            .envelope
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse);
        // Derive the handling span deterministically from the message, so
        // `trace()`, `follow_up()` and the handler's tracing span agree.
        let mut seed = self.envelope.id.clone().into_bytes();
        seed.extend_from_slice(&self.envelope.attempt.to_le_bytes());
        let span_id = partition::fnv1a(&seed).max(1);
        match parent {
            Some(parent) => TraceContext {
                trace_id: parent.trace_id,
                span_id,
            },
            None => TraceContext {
                trace_id: u128::from(span_id) << 64 | u128::from(span_id),
                span_id,
            },
        }
    }

    /// Options for publishing what this message causes: the same
    /// correlation id, and the trace continued from this handling.
    pub fn follow_up(&self) -> PublishOptions {
        PublishOptions {
            correlation_id: Some(
                self.envelope
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| self.envelope.id.clone()),
            ),
            traceparent: Some(self.trace().traceparent()),
            ..PublishOptions::default()
        }
    }

    /// The `courier.handle` span the handler runs in: a child of the span
    /// that published the message.
    pub(crate) fn span(&self, spec: &ChannelSpec) -> tracing::Span {
        let parent = self
            .envelope
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse);
        let span = tracing::info_span!(
            "courier.handle",
            channel = %spec.qualified_name(),
            message_id = %self.envelope.id,
            correlation_id = self.envelope.correlation_id.as_deref().unwrap_or(""),
            attempt = self.envelope.attempt,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        if span.is_disabled() {
            // Nobody listens: skip computing what would be recorded.
            return span;
        }
        let traced = crate::telemetry::handle(&span, parent);
        let trace = traced.unwrap_or_else(|| self.trace());
        span.record("trace_id", trace.trace_hex());
        span.record("span_id", trace.span_hex());
        if let Some(parent) = parent {
            span.record("parent_span_id", parent.span_hex());
        }
        span
    }

    /// The idempotency key.
    pub fn key(&self) -> &str {
        &self.envelope.key
    }

    /// The stable key of this message's effect `name` outside Redis, for
    /// the other side's idempotency mechanism (an `Idempotency-Key`
    /// header, a unique column): a UUID that every delivery of the message
    /// shares, and that differs by effect name (`crate::effects`).
    ///
    /// ```
    /// # use courier::{Delivery, Envelope};
    /// # fn charge(delivery: &Delivery<String>) {
    /// let key = delivery.effect_key("charge");
    /// assert_eq!(key, delivery.effect_key("charge"));
    /// assert_ne!(key, delivery.effect_key("refund"));
    /// # }
    /// ```
    pub fn effect_key(&self, name: &str) -> String {
        effects::effect_key(&self.envelope.schema, &self.envelope.key, name)
    }

    /// The message id.
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.envelope.attempt
    }
}
