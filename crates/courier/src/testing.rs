//! Unit tests for handlers, without Redis.
//!
//! A [`Harness`] gives a [`Client`] whose producers record what they
//! publish instead of sending it, and delivers a typed message to a
//! [`Handler`] the way a consumer would: the message is encoded, validated
//! and wrapped in an envelope as a producer does, then admitted as a
//! consumer admits it (the same checks, the same decoding), so a handler
//! sees exactly what it would see from Redis. The result is the handler's
//! [`Outcome`] and every message it published, typed.
//!
//! What the harness does not do is everything Redis does: no retries, no
//! visibility timeouts, no dead-letter queue. Those are the runtime's, and
//! its own suites test them against real `redis-server` processes.
//!
//! The contact-center demo's agents are tested this way
//! (`crates/contact-center/src/agents.rs`):
//!
//! ```text
//! let harness = Harness::new();
//! let classifier = Classifier::new(harness.client(), Arc::new(Keywords), tally);
//! let handled = harness.deliver(intake::Intake, &classifier, contact).await?;
//! assert_eq!(handled.outcome, Outcome::Done);
//! let tasks = handled.published::<billing::Billing>()?; // Vec<ClassifiedTaskV2>
//! ```

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::client::{Client, Recording};
use crate::contract::{self, Contract};
use crate::delivery::{Delivery, Outcome};
use crate::envelope::Envelope;
use crate::error::Error;
use crate::handler::{self, Handler};
use crate::publish::{Outbox, PublishOptions, Stamp};
use crate::spec::{Channel, ChannelSpec};

/// Delivers typed messages to handlers and records what they publish.
#[derive(Debug, Clone)]
pub struct Harness {
    recorder: Arc<Recorder>,
    client: Client,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A harness with nothing recorded yet.
    pub fn new() -> Self {
        let recorder = Arc::new(Recorder::default());
        Self {
            client: Client::recording(recorder.clone()),
            recorder,
        }
    }

    /// The client to build the handler's producers from: they record
    /// instead of publishing. Any other use of Redis through it fails.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Delivers `message` to `handler` as a consumer of `channel` would
    /// (attempt 1), and returns the outcome and what the handler published
    /// meanwhile. `message` is any version of the channel's message. An
    /// error means the message would never reach a handler: it breaks its
    /// schema, or a consumer would dead-letter it.
    pub async fn deliver<C, T, H>(
        &self,
        channel: C,
        handler: &H,
        message: T,
    ) -> Result<Handled, Error>
    where
        C: Channel,
        T: Contract,
        C::Message: From<T>,
        H: Handler<C::Message>,
    {
        let _ = channel;
        let payload = contract::encode(&message)?;
        let key = contract::idempotency_key::<T>(&payload)?;
        let outbox = Outbox {
            client: &self.client,
            spec: C::SPEC,
        };
        let options = PublishOptions::default();
        let prepared = outbox.prepare(
            None,
            T::SCHEMA,
            T::VERSION,
            payload,
            key,
            &options,
            &Stamp::new(C::SPEC, &options),
        )?;
        let (partition, _, json) = prepared.into_parts();
        let (message, envelope) = crate::consumer::admit::<C::Message>(C::SPEC, Some(&json), 1)
            .map_err(|rejected| Error::Refused {
                channel: C::SPEC.qualified_name(),
                reason: rejected.reason.to_string(),
                error: rejected.error,
            })?;
        let delivery = Delivery {
            message,
            envelope,
            partition,
        };
        let before = self.recorder.len();
        let outcome = handler::guarded(handler.handle(delivery)).await;
        Ok(Handled {
            outcome,
            published: self.recorder.since(before),
        })
    }

    /// Everything published through the harness's client so far.
    pub fn published(&self) -> Vec<Recorded> {
        self.recorder.since(0)
    }
}

/// What one delivery led to.
#[derive(Debug, Clone)]
pub struct Handled {
    /// What the handler decided.
    pub outcome: Outcome,
    /// What it published, in order, duplicates included (flagged).
    pub published: Vec<Recorded>,
}

impl Handled {
    /// The messages published on channel `C`, as its latest version (what
    /// its producers write); duplicates left out.
    pub fn published<C: Channel>(&self) -> Result<Vec<C::Latest>, Error> {
        self.published
            .iter()
            .filter(|r| !r.duplicate && r.channel == C::SPEC.qualified_name())
            .map(Recorded::message::<C::Latest>)
            .collect()
    }
}

/// One message a recording producer published.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The channel, `domain.channel`.
    pub channel: String,
    /// The partition it was routed to.
    pub partition: Option<String>,
    /// The envelope as it would be written, payload included.
    pub envelope: Envelope,
    /// How long it would wait before delivery (`publish_in`, `publish_at`).
    pub delay: Option<Duration>,
    /// Whether its idempotency key was published before on the same
    /// channel and partition, so Redis would have written nothing (the
    /// harness keeps every key: its dedup window never ends).
    pub duplicate: bool,
}

impl Recorded {
    /// The payload as a `T`, checked against `T`'s schema and version.
    pub fn message<T: Contract>(&self) -> Result<T, Error> {
        if self.envelope.schema != T::SCHEMA {
            return Err(Error::SchemaMismatch {
                expected: T::SCHEMA,
                found: self.envelope.schema.clone(),
            });
        }
        if self.envelope.version != T::VERSION {
            return Err(Error::VersionUnsupported {
                schema: T::SCHEMA,
                version: self.envelope.version,
                supported: std::slice::from_ref(&T::VERSION),
            });
        }
        contract::decode::<T>(&self.envelope.payload)
    }
}

/// Where a recording client's producers put their messages.
#[derive(Debug, Default)]
struct Recorder {
    published: Mutex<Vec<Recorded>>,
}

impl Recording for Recorder {
    /// A key already recorded on the channel is a duplicate, answered with
    /// the first message's id, as Redis would answer within the dedup
    /// window.
    fn record(
        &self,
        spec: &ChannelSpec,
        batch: Vec<(Option<String>, String, String)>,
        delay: Option<Duration>,
    ) -> Result<Vec<(String, bool)>, Error> {
        let mut published = self.lock();
        let channel = spec.qualified_name();
        let mut answers = Vec::with_capacity(batch.len());
        for (partition, id, json) in batch {
            let envelope = Envelope::from_json(&json)?;
            let first = published
                .iter()
                .find(|r| {
                    !r.duplicate
                        && r.channel == channel
                        && r.partition == partition
                        && r.envelope.key == envelope.key
                })
                .map(|r| r.envelope.id.clone());
            published.push(Recorded {
                channel: channel.clone(),
                partition,
                envelope,
                delay,
                duplicate: first.is_some(),
            });
            answers.push((first.clone().unwrap_or(id), first.is_some()));
        }
        Ok(answers)
    }
}

impl Recorder {
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn since(&self, start: usize) -> Vec<Recorded> {
        self.lock()[start..].to_vec()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
