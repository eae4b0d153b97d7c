//! Publishing: the [`Producer`] of a channel, its [`PublishOptions`], and
//! the `Outbox` every publish goes through (the runtime's own SLA notices
//! and `courier import` included).
//!
//! Kept apart from [`Client`](crate::Client), which owns connections: a
//! publish is the envelope, the key and partition routing, one
//! `publish.lua` call per partition and batch, and the retry of passing
//! faults for up to [`PublishOptions::retry_for`]. Its items are public
//! from `courier::client`, where they always were.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use chrono::Utc;
use redis::Value;
use tracing::Instrument;

use crate::client::Client;
use crate::contract::{self, Contract};
use crate::envelope::{self, Envelope, HeaderCheck};
use crate::error::Error;
use crate::keys::ChannelKeys;
use crate::partition;
use crate::replication;
use crate::retry;
use crate::scripts::{self, PUBLISH};
use crate::spec::{Channel, ChannelSpec};
use crate::time::millis;
use courier_schema::Transport;

/// What a publish should do when the channel is at its maximum depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// Fail at once with [`Error::ChannelFull`].
    #[default]
    Fail,
    /// Wait until there is room, up to the given time, then fail.
    Wait(Duration),
}

/// Options of one publish; `Default` suits most calls.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// The idempotency key; default: derived from the payload's
    /// `x-courier` key fields.
    pub key: Option<String>,
    /// Correlation id carried to every message this one causes.
    pub correlation_id: Option<String>,
    /// W3C trace context of the publishing span.
    pub traceparent: Option<String>,
    /// Priority, on priority channels.
    pub priority: Option<u8>,
    /// Lifetime instead of the channel's TTL.
    pub ttl: Option<Duration>,
    /// What to do when the channel is full.
    pub backpressure: Backpressure,
    /// How long to keep retrying while Redis is unreachable (the idempotency
    /// key makes retries safe); zero fails at once.
    pub retry_for: Option<Duration>,
    /// Deliver only after this delay (set by [`Producer::publish_in`] and
    /// [`Producer::publish_at`]); through the same delayed set as retries.
    pub delay: Option<Duration>,
    /// SLA deadline on priority channels; default: now + the channel's SLA.
    pub sla_deadline: Option<chrono::DateTime<Utc>>,
}

/// Default time a publish retries while Redis is unreachable.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(5);

/// Most messages one publish script call takes: a bigger batch is split,
/// so that no single call holds Redis for long.
const PUBLISH_BATCH: usize = 500;

/// The result of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The message id; for a duplicate, the id of the first message
    /// published with the same key.
    pub id: String,
    /// Whether the key was already published within the dedup window, so
    /// nothing was written.
    pub duplicate: bool,
    /// The partition it went to.
    pub partition: Option<String>,
}

/// Publishes messages of type `T` on one channel.
pub struct Producer<T: Contract> {
    client: Client,
    spec: &'static ChannelSpec,
    _message: PhantomData<fn(T)>,
}

impl<T: Contract> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            spec: self.spec,
            _message: PhantomData,
        }
    }
}

/// One message ready to be sent.
#[derive(Debug)]
pub(crate) struct Prepared {
    keys: ChannelKeys,
    idem: String,
    id: String,
    json: String,
    priority: u8,
    /// SLA deadline in ms since the epoch; 0 for none.
    deadline_ms: i64,
}

impl Prepared {
    /// Its partition, message id and envelope JSON, for a recording client.
    pub(crate) fn into_parts(self) -> (Option<String>, String, String) {
        (
            self.keys.partition().map(str::to_string),
            self.id,
            self.json,
        )
    }
}

impl<T: Contract> Producer<T> {
    /// A producer of `C`'s latest message version on channel `C`; generated
    /// `producer()` functions call this. Another message type does not
    /// compile.
    pub fn of<C: Channel<Latest = T>>(client: &Client) -> Self {
        Self::untyped(client, C::SPEC)
    }

    /// A producer on `spec`'s channel, for tools and tests that build a
    /// channel's contract at run time. Nothing checks at compile time that
    /// `T` is the channel's message: a publish of another schema fails with
    /// [`Error::SchemaMismatch`]. Agents use [`of`](Self::of).
    pub fn untyped(client: &Client, spec: &'static ChannelSpec) -> Self {
        Self {
            client: client.clone(),
            spec,
            _message: PhantomData,
        }
    }

    /// The channel's contract.
    pub fn spec(&self) -> &'static ChannelSpec {
        self.spec
    }

    /// Publishes one message with default options.
    pub async fn publish(&self, message: &T) -> Result<Published, Error> {
        self.publish_with(message, &PublishOptions::default()).await
    }

    /// Publishes one message.
    pub async fn publish_with(
        &self,
        message: &T,
        options: &PublishOptions,
    ) -> Result<Published, Error> {
        let stamp = Stamp::new(self.spec, options);
        let prepared = self.prepare(message, options, &stamp)?;
        let mut published = self.send(vec![prepared], options, Instant::now()).await?;
        Ok(published.remove(0))
    }

    /// Publishes a message to be delivered after `delay`: it waits on the
    /// channel's delayed set, moved by the same atomic script as retries.
    /// The idempotency key is taken now, so a second publish is refused.
    pub async fn publish_in(&self, message: &T, delay: Duration) -> Result<Published, Error> {
        let options = PublishOptions {
            delay: Some(delay),
            ..PublishOptions::default()
        };
        self.publish_with(message, &options).await
    }

    /// Publishes a message to be delivered at `at` (at once if it passed).
    pub async fn publish_at(
        &self,
        message: &T,
        at: chrono::DateTime<Utc>,
    ) -> Result<Published, Error> {
        let delay = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        self.publish_in(message, delay).await
    }

    /// Publishes a batch. Each message keeps every guarantee of
    /// [`publish`](Self::publish). Up to 500 messages go in one round trip
    /// (one script call per partition); a bigger batch is sent 500 at a
    /// time, the next 500 encoded and checked while Redis writes the last,
    /// so a large batch costs little more than its slower side.
    ///
    /// Every message of a round trip is checked before it is sent, so an
    /// invalid message stops the call before its 500 are written: those
    /// before it may be published. `retry_for` and `Backpressure::Wait`
    /// bound the whole call, not each round. On any error, calling again
    /// with the same batch is safe; the idempotency keys make the repeats
    /// duplicates.
    pub async fn publish_many(
        &self,
        messages: &[T],
        options: &PublishOptions,
    ) -> Result<Vec<Published>, Error> {
        let started = Instant::now();
        let mut chunks = messages.chunks(PUBLISH_BATCH);
        let mut published = Vec::with_capacity(messages.len());
        let Some(first) = chunks.next() else {
            return Ok(published);
        };
        let mut ready = self.prepare_many(first, options)?;
        for chunk in chunks {
            // The send runs on a task of its own, so that Redis works on
            // this round trip while this task encodes the next one. It
            // stays in the caller's span, and stops if the caller gives up
            // (the call's future dropped).
            let sending = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
                {
                    let (producer, options) = (self.clone(), options.clone());
                    async move { producer.send(ready, &options, started).await }
                }
                .instrument(tracing::Span::current()),
            ));
            let next = self.prepare_many(chunk, options);
            let sent = match sending.await {
                Ok(sent) => sent,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a runtime that is shutting down cancels the task.
                Err(e) => Err(Error::Redis(
                    std::io::Error::other(format!(
                        "publish on {} cancelled: {e}",
                        self.spec.qualified_name()
                    ))
                    .into(),
                )),
            };
            published.extend(sent?);
            ready = next?;
        }
        published.extend(self.send(ready, options, started).await?);
        Ok(published)
    }

    /// Prepares one round trip's messages, with one [`Stamp`].
    fn prepare_many(
        &self,
        messages: &[T],
        options: &PublishOptions,
    ) -> Result<Vec<Prepared>, Error> {
        let stamp = Stamp::new(self.spec, options);
        messages
            .iter()
            .map(|message| self.prepare(message, options, &stamp))
            .collect()
    }

    fn prepare(
        &self,
        message: &T,
        options: &PublishOptions,
        stamp: &Stamp,
    ) -> Result<Prepared, Error> {
        crate::spec::expect_schema(self.spec, T::SCHEMA)?;
        let payload = contract::encode(message)?;
        let key = match &options.key {
            Some(key) => key.clone(),
            None => contract::idempotency_key::<T>(&payload)?,
        };
        self.outbox()
            .prepare(None, T::SCHEMA, T::VERSION, payload, key, options, stamp)
    }

    /// Sends prepared messages until each is written or found a duplicate;
    /// waits count from `started`.
    async fn send(
        &self,
        prepared: Vec<Prepared>,
        options: &PublishOptions,
        started: Instant,
    ) -> Result<Vec<Published>, Error> {
        if let Some(recorder) = self.client.recorder() {
            let parts: Vec<_> = prepared.into_iter().map(Prepared::into_parts).collect();
            let partitions: Vec<Option<String>> = parts.iter().map(|p| p.0.clone()).collect();
            let answers = recorder.record(self.spec, parts, options.delay)?;
            return Ok(answers
                .into_iter()
                .zip(partitions)
                .map(|((id, duplicate), partition)| Published {
                    id,
                    duplicate,
                    partition,
                })
                .collect());
        }
        self.outbox().send_since(prepared, options, started).await
    }

    fn outbox(&self) -> Outbox<'_> {
        Outbox {
            client: &self.client,
            spec: self.spec,
        }
    }
}

/// Publishes a payload as an existing envelope describes it (schema,
/// version, idempotency key, correlation id), under a new message id (a
/// dead letter's replay): the caller validates the payload against its
/// schema first, since this is not typed. A message whose key is still in
/// the dedup window is a duplicate.
pub async fn republish(
    client: &Client,
    spec: &'static ChannelSpec,
    envelope: &Envelope,
    options: &PublishOptions,
) -> Result<Published, Error> {
    publish_as(client, spec, None, envelope, options).await
}

/// [`republish`] keeping the envelope's message id, for tools that move
/// messages between Redis servers (`courier import`): a message keeps its
/// id, key and payload, and importing a file twice writes each once.
///
/// A key still in the dedup window is a duplicate, told by a read first:
/// the publish script takes a duplicate of a message's own id for a resend
/// after a lost reply, which a restored message, keeping its id, would
/// always look like.
pub async fn restore(
    client: &Client,
    spec: &'static ChannelSpec,
    envelope: &Envelope,
) -> Result<Published, Error> {
    let partition = partition::route(spec, &envelope.payload)?;
    let idem = client.keys(spec, partition.as_deref()).idem(&envelope.key);
    let first: Option<String> = client.query(redis::cmd("GET").arg(&idem)).await?;
    if let Some(first) = first {
        return Ok(Published {
            id: first,
            partition,
            duplicate: true,
        });
    }
    let id = Some(envelope.id.clone());
    publish_as(client, spec, id, envelope, &PublishOptions::default()).await
}

async fn publish_as(
    client: &Client,
    spec: &'static ChannelSpec,
    id: Option<String>,
    envelope: &Envelope,
    options: &PublishOptions,
) -> Result<Published, Error> {
    let outbox = Outbox { client, spec };
    let options = PublishOptions {
        correlation_id: options
            .correlation_id
            .clone()
            .or_else(|| envelope.correlation_id.clone()),
        priority: options.priority.or(envelope.priority),
        ..options.clone()
    };
    let prepared = outbox.prepare(
        id,
        &envelope.schema,
        envelope.version,
        envelope.payload.clone(),
        envelope.key.clone(),
        &options,
        &Stamp::new(spec, &options),
    )?;
    let mut published = outbox.send(vec![prepared], &options).await?;
    Ok(published.remove(0))
}

/// What every message of one publish call shares, worked out once: the
/// instant it is published at, its expiry and SLA deadline (formatting two
/// RFC 3339 times costs more than the rest of a header), and whether a
/// header was checked whole against the envelope schema yet.
///
/// The first header built with a stamp is checked whole; the others, built
/// the same way from the same options and stamp, only for their keys (see
/// [`HeaderCheck::KeyOnly`]).
pub(crate) struct Stamp {
    created_at: String,
    expires_at: String,
    /// The SLA deadline in ms since the epoch; 0 for none.
    deadline_ms: i64,
    checked: std::cell::Cell<bool>,
}

impl Stamp {
    /// The stamp of a publish on `spec` with `options`, now.
    pub(crate) fn new(spec: &ChannelSpec, options: &PublishOptions) -> Stamp {
        let now = Utc::now();
        let deadline = match (options.sla_deadline, spec.sla) {
            (Some(deadline), _) => Some(deadline),
            (None, Some(sla)) => Some(envelope::expiry(now, sla)),
            (None, None) => None,
        };
        Stamp {
            created_at: envelope::timestamp(now),
            expires_at: envelope::timestamp(envelope::expiry(now, options.ttl.unwrap_or(spec.ttl))),
            deadline_ms: deadline.map_or(0, |d| d.timestamp_millis()),
            checked: std::cell::Cell::new(false),
        }
    }

    /// How much of the next header to check.
    fn check(&self) -> HeaderCheck {
        if self.checked.replace(true) {
            HeaderCheck::KeyOnly
        } else {
            HeaderCheck::Full
        }
    }
}

/// Records that the consumer `groups` already handled `envelope`'s message:
/// each group's done mark, as long as a consumer's would live, so a copy that
/// reaches them is skipped. With `queue` false (every group that reads the
/// channel handled it), also its idempotency key for the channel's dedup
/// window, so a producer sending it again is told it is a duplicate, and
/// nothing is queued; with `queue` true it is then published as
/// [`republish`] does, for the groups that have not handled it. For tools
/// that move a channel to another Redis (`courier import` of an export
/// with `--group`): what was handled on the old one stays handled.
pub async fn restore_handled(
    client: &Client,
    spec: &'static ChannelSpec,
    envelope: &Envelope,
    groups: &[&str],
    queue: bool,
) -> Result<Option<Published>, Error> {
    let partition = partition::route(spec, &envelope.payload)?;
    let keys = client.keys(spec, partition.as_deref());
    let done_ttl = envelope::done_mark_ttl(&envelope.expires_at, spec.ttl, spec.visibility_timeout);
    // Every key shares the partition's hash tag: one pipeline, one slot.
    let mut pipe = redis::pipe();
    for group in groups {
        pipe.cmd("SET")
            .arg(keys.done(group, &envelope.key))
            .arg(1)
            .arg("PX")
            .arg(millis(done_ttl))
            .ignore();
    }
    if !queue {
        pipe.cmd("SET")
            .arg(keys.idem(&envelope.key))
            .arg(&envelope.id)
            .arg("NX")
            .arg("PX")
            .arg(millis(spec.dedup_window))
            .ignore();
    }
    client.pipeline::<()>(&pipe).await?;
    if !queue {
        return Ok(None);
    }
    restore(client, spec, envelope).await.map(Some)
}

/// The publishing core every producer shares, not tied to a message type:
/// the runtime also publishes through it (SLA notices).
pub(crate) struct Outbox<'a> {
    pub(crate) client: &'a Client,
    pub(crate) spec: &'static ChannelSpec,
}

impl Outbox<'_> {
    /// An envelope for `payload` (already valid against `schema` v`version`),
    /// routed to its partition and ready to send, under message id `id`: a
    /// new one for `None` (a restored message keeps its own).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prepare(
        &self,
        id: Option<String>,
        schema: &str,
        version: u32,
        payload: serde_json::Value,
        key: String,
        options: &PublishOptions,
        stamp: &Stamp,
    ) -> Result<Prepared, Error> {
        let partition = partition::route(self.spec, &payload)?;
        let keys = self.client.keys(self.spec, partition.as_deref());
        // The publish is a span of the caller's trace (the current span
        // with OpenTelemetry, else the options' traceparent) or the root of
        // a new one; its context travels in the envelope.
        let id = id.unwrap_or_else(envelope::new_id);
        let parent = options
            .traceparent
            .as_deref()
            .and_then(envelope::TraceContext::parse);
        let span = tracing::info_span!(
            "courier.publish",
            channel = %self.spec.qualified_name(),
            message_id = %id,
            correlation_id = options.correlation_id.as_deref().unwrap_or(""),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        let traced = crate::telemetry::publish(&span, parent);
        let trace = traced.unwrap_or_else(|| {
            parent.map_or_else(envelope::TraceContext::new_root, |parent| parent.child())
        });
        if !span.is_disabled() {
            span.record("trace_id", trace.trace_hex());
            span.record("span_id", trace.span_hex());
            if let Some(parent) = parent {
                span.record("parent_span_id", parent.span_hex());
            }
            span.in_scope(|| tracing::debug!("publishing"));
        }
        let envelope = Envelope {
            schema: schema.to_string(),
            version,
            id,
            key,
            created_at: stamp.created_at.clone(),
            expires_at: stamp.expires_at.clone(),
            attempt: 1,
            producer: self.client.name().to_string(),
            correlation_id: options.correlation_id.clone(),
            traceparent: Some(trace.traceparent()),
            priority: options.priority,
            payload,
        };
        let (idem, id) = (keys.idem(&envelope.key), envelope.id.clone());
        Ok(Prepared {
            idem,
            json: envelope.into_json_checked(stamp.check())?,
            id,
            priority: options.priority.unwrap_or(0).min(9),
            deadline_ms: stamp.deadline_ms,
            keys,
        })
    }

    /// Sends prepared messages until each is written or found a duplicate.
    pub(crate) async fn send(
        &self,
        prepared: Vec<Prepared>,
        options: &PublishOptions,
    ) -> Result<Vec<Published>, Error> {
        self.send_since(prepared, options, Instant::now()).await
    }

    /// [`send`](Self::send) for a call that began at `started`: its
    /// waits (`retry_for`, `Backpressure::Wait`) count from there, so the
    /// rounds of one `publish_many` share them.
    pub(crate) async fn send_since(
        &self,
        prepared: Vec<Prepared>,
        options: &PublishOptions,
        started: Instant,
    ) -> Result<Vec<Published>, Error> {
        let retry_for = options.retry_for.unwrap_or(DEFAULT_RETRY_FOR);
        let mut results: Vec<Option<Published>> = vec![None; prepared.len()];
        let mut backoff = retry::Backoff::new();
        loop {
            let waiting: Vec<usize> = (0..prepared.len())
                .filter(|&i| results[i].is_none())
                .collect();
            if waiting.is_empty() {
                return Ok(results.into_iter().flatten().collect());
            }
            // One script call per queue (partition), at most PUBLISH_BATCH
            // messages each, all in one pipeline.
            let delay = options
                .delay
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let mut groups: Vec<Vec<usize>> = Vec::new();
            for &i in &waiting {
                let queue = prepared[i].keys.partition();
                match groups
                    .iter_mut()
                    .find(|g| g.len() < PUBLISH_BATCH && prepared[g[0]].keys.partition() == queue)
                {
                    Some(group) => group.push(i),
                    None => groups.push(vec![i]),
                }
            }
            let mut pipe = redis::pipe();
            for group in &groups {
                let keys = &prepared[group[0]].keys;
                let (inbox, delayed, sla) =
                    (keys.inbox(self.spec.transport), keys.delayed(), keys.sla());
                let mut script_keys = vec![inbox.as_str(), delayed.as_str(), sla.as_str()];
                script_keys.extend(group.iter().map(|&i| prepared[i].idem.as_str()));
                let mut cmd = scripts::evalsha(&PUBLISH, &script_keys);
                cmd.arg(millis(self.spec.dedup_window))
                    .arg(self.spec.max_depth.unwrap_or(0))
                    .arg(self.spec.retention.max_len.unwrap_or(0))
                    .arg(millis(self.spec.retention.max_age))
                    .arg(self.spec.transport.as_str())
                    .arg(delay);
                // Priority and SLA deadline only where the script reads
                // them (`publish.lua`): each argument costs it a string.
                let ranked = self.spec.transport == Transport::Priority;
                for &i in group {
                    let p = &prepared[i];
                    cmd.arg(&p.json).arg(&p.id);
                    if ranked {
                        cmd.arg(p.priority).arg(p.deadline_ms);
                    }
                }
                pipe.add_command(cmd);
                replication::wait(&mut pipe, self.spec.durability);
            }
            let sent = self
                .client
                .pipeline::<Vec<Value>>(&pipe)
                .await
                .and_then(|values| {
                    replication::confirmed(
                        values,
                        self.spec,
                        groups.iter().map(|g| prepared[g[0]].keys.partition()),
                    )
                });
            let replies: Vec<Vec<(String, String)>> = match sent {
                Ok(replies) => replies,
                // Redis is away, or replicas are late: every message keeps
                // its id and key, so a resend reads as "dup" of our own id.
                Err(e) if e.is_transient() && started.elapsed() < retry_for => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "publish failed, retrying");
                    backoff.sleep().await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if replies.len() != groups.len()
                || groups.iter().zip(&replies).any(|(g, r)| g.len() != r.len())
            {
                return Err(Error::UnexpectedReply {
                    script: "publish",
                    reply: format!("{replies:?}"),
                });
            }
            let mut full = None;
            // Written (a resend's "dup" of its own id included), duplicate,
            // full: counted once per call, not per message.
            let mut counts = [0u64; 3];
            let replies = groups.iter().flatten().zip(replies.into_iter().flatten());
            for (&i, (status, value)) in replies {
                let p = &prepared[i];
                let partition = p.keys.partition().map(str::to_string);
                match status.as_str() {
                    "ok" => {
                        counts[0] += 1;
                        results[i] = Some(Published {
                            id: p.id.clone(),
                            duplicate: false,
                            partition,
                        })
                    }
                    "dup" => {
                        counts[usize::from(value != p.id)] += 1;
                        results[i] = Some(Published {
                            duplicate: value != p.id,
                            id: value,
                            partition,
                        })
                    }
                    "full" => {
                        counts[2] += 1;
                        full = Some((p.keys.partition().map(str::to_string), value));
                    }
                    _ => {
                        return Err(Error::UnexpectedReply {
                            script: "publish",
                            reply: format!("{status} {value}"),
                        })
                    }
                }
            }
            for (outcome, n) in ["written", "duplicate", "full"].into_iter().zip(counts) {
                if n > 0 {
                    crate::metrics::published(self.spec, outcome, n);
                }
            }
            if let Some((partition, depth)) = full {
                let error = Error::ChannelFull {
                    channel: match partition {
                        Some(p) => format!("{}#{p}", self.spec.qualified_name()),
                        None => self.spec.qualified_name(),
                    },
                    depth: depth.parse().unwrap_or(0),
                    max_depth: self.spec.max_depth.unwrap_or(0),
                };
                match options.backpressure {
                    Backpressure::Wait(limit) if started.elapsed() < limit => {
                        backoff.sleep().await;
                    }
                    _ => return Err(error),
                }
            }
        }
    }
}

impl<T: Contract> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("channel", &self.spec.qualified_name())
            .field("version", &T::VERSION)
            .finish()
    }
}
