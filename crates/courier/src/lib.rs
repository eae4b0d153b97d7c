//! courier: schema-first coordination of agents and workers over Redis.
//!
//! Message types come from JSON Schemas through `cargo xtask codegen`, which
//! writes one crate per schema domain (`crates/contracts/<domain>`). Those
//! crates implement [`Contract`] for every message version and [`Readable`]
//! for the set of versions a consumer reads, and declare each channel as a
//! [`ChannelSpec`] constant and a marker type implementing [`Channel`],
//! with typed `producer()` and `consumer()` constructors. This crate holds every rule the generated code relies on
//! and keeps every promise on Redis: schema name and version, payload
//! validation, idempotency, TTLs, visibility timeouts, retries with backoff,
//! dead-letter queues.
//!
//! # Layout
//!
//! - [`client`]: [`Client`], the connections.
//! - [`publish`]: [`Producer`] (typed by [`Producer::of`], or untyped for
//!   tools) and [`PublishOptions`].
//! - [`delivery`]: [`Delivery`] in, [`Outcome`] out: what a handler sees.
//! - [`consumer`]: [`Consumer`]; a folder with
//!   one file per step of the pipeline (reading streams, reading lists and
//!   priority queues, claiming and recovery, dispatch, admission, the gate,
//!   processing, settling) beside maintenance, partition coordination and
//!   the stop signals.
//! - [`handler`]: the [`Handler`] trait, for closures and agent structs.
//! - [`testing`]: a harness that runs a handler on a typed message
//!   without Redis and returns its outcome and what it published.
//! - [`subscriber`]: [`Subscriber`], broadcast on `pubsub` channels.
//! - [`dlq`]: dead-letter queues: list, get, replay, purge.
//! - [`effects`]: effects exactly once: [`Effects`] written with the
//!   acknowledgement, and the effect key for systems outside Redis.
//! - [`state`]: a channel's state ([`ChannelState`]: waiting, held, lag,
//!   age, delayed, dead, live consumers), read here and nowhere else.
//! - [`metrics`]: Prometheus metrics and their exporter.
//! - `telemetry` (feature `otel`): courier's spans as OpenTelemetry spans.
//! - [`contract`]: the [`Contract`] and [`Readable`] traits, payload
//!   encoding, decoding and validation, idempotency-key derivation.
//! - [`envelope`]: the wire envelope and attempt history.
//! - [`spec`]: [`ChannelSpec`], a channel's contract from `channels.json`,
//!   and the [`Channel`] trait of its generated marker type.
//! - [`keys`]: Redis key names, built nowhere else.
//! - [`backoff`]: retry delays.
//! - [`breaker`]: [`Breaker`], circuit breakers and manual pauses shared
//!   through Redis.
//! - [`partition`]: routing a payload to its partition.
//! - [`lease`]: [`Lease`] locks with fencing tokens, and the [`Fence`] check.
//! - [`ratelimit`]: [`RateLimit`], a rate limit shared by every worker.
//! - [`error`]: [`Error`] and its [`ErrorKind`] policy.
//! - [`field`]: [`FieldError`], a value a generated type's checked
//!   constructor refuses.
//! - `scripts` and `lua/`: one Lua script per atomic operation; publish
//!   and settle scripts take a batch of messages per call.
//! - `retry`: the one retry and reconnect policy (first pause, cap,
//!   jitter) of every loop that waits out a passing Redis fault.
//! - `time`: durations as scripts take them (a leaf, like `retry`).
//! - `batch`: coalescing of the done checks and settlements of handlers in
//!   flight into one round trip.

pub mod backoff;
mod batch;
pub mod breaker;
pub mod client;
mod conn;
pub mod consumer;
pub mod contract;
pub mod delivery;
pub mod dlq;
pub mod effects;
pub mod envelope;
pub mod error;
pub mod field;
pub mod handler;
pub mod inflight;
pub mod keys;
pub mod lease;
pub mod metrics;
pub mod partition;
pub mod publish;
pub mod ratelimit;
mod replication;
mod retry;
pub mod scaler;
mod scripts;
pub mod spec;
pub mod state;
pub mod subscriber;
#[cfg(feature = "otel")]
mod telemetry;
pub mod testing;
mod time;
pub mod unreadable;
/// Without the `otel` feature, spans carry courier's own trace context.
#[cfg(not(feature = "otel"))]
mod telemetry {
    use crate::envelope::TraceContext;

    pub(crate) fn publish(_: &tracing::Span, _: Option<TraceContext>) -> Option<TraceContext> {
        None
    }

    pub(crate) fn handle(_: &tracing::Span, _: Option<TraceContext>) -> Option<TraceContext> {
        None
    }
}

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use client::{Client, ConnectOptions};
pub use consumer::{
    Consumer, ConsumerOptions, ConsumerReport, ConsumerStats, Delivery, Dependency, Outcome, Rate,
};
pub use contract::{Contract, Readable};
pub use courier_schema::{
    Backoff, Compatibility, Durability, Retention, Transport, ValidationError, Validator,
};
pub use dlq::{DeadLetter, DeadReason, Dlq, DlqFilter};
pub use effects::{Effects, EffectsReader};
pub use envelope::Envelope;
pub use error::{Error, ErrorKind};
pub use field::FieldError;
pub use handler::Handler;
pub use inflight::InFlight;
pub use lease::{Fence, Lease, LeaseHolder};
pub use publish::{Backpressure, Producer, PublishOptions, Published};
pub use ratelimit::RateLimit;
pub use scaler::{Scaler, ScalerConfig, ScalerHandle, ScalerReport};
pub use spec::{
    Channel, ChannelRef, ChannelSpec, DependencySpec, PartitionSpec, RateSpec, SlaNoticeSpec,
};
pub use state::{ChannelState, Figures, PartitionState};
pub use subscriber::{Subscriber, SubscriberReport};
pub use tokio_util::sync::CancellationToken;
