//! Broadcast: typed publish/subscribe on `pubsub` channels.
//!
//! Every live subscriber receives each message, with the same envelope and
//! the same checks as queued messages (malformed, expired, foreign or
//! unreadable messages are dead-lettered with their reason). Delivery is
//! **at most once**: Redis Pub/Sub keeps nothing, so a subscriber that is
//! disconnected, restarting or slow when a message is published never gets
//! it, and a failed handler is not retried. Broadcasts that must not be
//! missed belong on a `stream` channel read by one consumer group per
//! subscriber (see [`Consumer::replay_from`](crate::Consumer::replay_from)).

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::consumer::{admit, Delivery, Outcome};
use crate::contract::Readable;
use crate::dlq::{self, DeadLetter, DeadReason};
use crate::effects::{self, Effects, Fence};
use crate::envelope;
use crate::error::Error;
use crate::handler::{self, Handler};
use crate::keys::ChannelKeys;
use crate::retry::{self, Backoff};
use crate::spec::{Channel, ChannelSpec};
use crate::time::millis;

/// How long a subscriber retries writing a handler's effects through
/// passing Redis faults.
const EFFECTS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Counters of one subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriberReport {
    /// Messages received.
    pub received: u64,
    /// Handled successfully.
    pub done: u64,
    /// Rejected before the handler or failed in it; dead-lettered.
    pub dead: u64,
}

/// Receives the broadcasts of one `pubsub` channel.
pub struct Subscriber<M: Readable> {
    client: Client,
    spec: &'static ChannelSpec,
    name: String,
    counters: Arc<[AtomicU64; 3]>,
    _message: PhantomData<fn() -> M>,
}

impl<M: Readable> fmt::Debug for Subscriber<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("channel", &self.spec.qualified_name())
            .field("name", &self.name)
            .finish()
    }
}

impl<M: Readable> Subscriber<M> {
    /// A subscriber of channel `C`'s broadcasts, reading every version of
    /// its message; generated `subscriber()` functions call this.
    pub fn of<C: Channel<Message = M>>(client: &Client) -> Self {
        Self::untyped(client, C::SPEC)
    }

    /// A subscriber of `spec`'s broadcasts, for tools and tests; `run`
    /// refuses to start with [`Error::SchemaMismatch`] when `M` is not the
    /// channel's message. Agents use [`of`](Self::of).
    pub fn untyped(client: &Client, spec: &'static ChannelSpec) -> Self {
        Self {
            client: client.clone(),
            spec,
            name: format!("{}-{}", client.name(), &crate::envelope::new_id()[..8]),
            counters: Arc::default(),
            _message: PhantomData,
        }
    }

    /// The counters so far.
    pub fn report(&self) -> SubscriberReport {
        let get = |i: usize| self.counters[i].load(Ordering::Relaxed);
        SubscriberReport {
            received: get(0),
            done: get(1),
            dead: get(2),
        }
    }

    /// Receives broadcasts until `shutdown`, running `handler` on each, one
    /// at a time in publishing order. Reconnects by itself; what is
    /// published while it reconnects is missed (at most once).
    pub async fn run_until<F>(
        &self,
        handler: F,
        shutdown: CancellationToken,
    ) -> Result<SubscriberReport, Error>
    where
        F: Handler<M>,
    {
        crate::spec::expect_schema(self.spec, M::SCHEMA)?;
        let keys = self.client.keys(self.spec, None);
        let channel = keys.inbox(self.spec.transport);
        let mut backoff = Backoff::new();
        while !shutdown.is_cancelled() {
            let mut pubsub = match self.client.pubsub().await {
                Ok(pubsub) => pubsub,
                Err(e) => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot subscribe; retrying");
                    if !backoff.pause(&shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            if let Err(e) = pubsub.subscribe(&channel).await {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot subscribe; retrying");
                backoff.pause(&shutdown).await;
                continue;
            }
            backoff.reset();
            let mut messages = pubsub.on_message();
            loop {
                let message = tokio::select! {
                    message = messages.next() => message,
                    () = shutdown.cancelled() => return Ok(self.report()),
                };
                let Some(message) = message else {
                    tracing::warn!(channel = %self.spec.qualified_name(), "subscription lost; reconnecting");
                    break;
                };
                let text: String = match message.get_payload() {
                    Ok(text) => text,
                    Err(e) => format!("<unreadable payload: {e}>"),
                };
                self.deliver(&keys, &text, &handler).await;
            }
        }
        Ok(self.report())
    }

    async fn deliver<F>(&self, keys: &ChannelKeys, text: &str, handler: &F)
    where
        F: Handler<M>,
    {
        self.counters[0].fetch_add(1, Ordering::Relaxed);
        let (message, envelope) = match admit::<M>(self.spec, Some(text), 1) {
            Ok(admitted) => admitted,
            Err(rejected) => return self.dead(keys, text, rejected.reason, rejected.error).await,
        };
        let (key, expires_at) = (envelope.key.clone(), envelope.expires_at.clone());
        let delivery = Delivery {
            message,
            envelope,
            partition: None,
        };
        // A panic is a failure like any other: dead-lettered with its text.
        let outcome = handler::guarded(handler.handle(delivery)).await;
        match outcome {
            Outcome::Done => {
                self.counters[1].fetch_add(1, Ordering::Relaxed);
            }
            Outcome::DoneWith(effects) => {
                // Passing faults are waited out a few seconds; a broadcast
                // is not redelivered, so what still fails is dead-lettered.
                let applied = retry::transient(EFFECTS_PATIENCE, || {
                    self.apply(keys, &key, &expires_at, &effects)
                })
                .await;
                match applied {
                    Ok(()) => {
                        self.counters[1].fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        let error = format!("cannot write the handler's effects: {e}");
                        self.dead(keys, text, DeadReason::Fatal, error).await
                    }
                }
            }
            // At most once: no retry; the failure is kept for triage.
            Outcome::Retry { error, .. } | Outcome::Fatal { error } => {
                self.dead(keys, text, DeadReason::Fatal, error).await
            }
        }
    }

    /// Writes a handled broadcast's effects, once per idempotency key for
    /// this subscriber (its name is the done mark's group): nothing fences
    /// a broadcast, but a broadcast published twice takes effect once.
    async fn apply(
        &self,
        keys: &ChannelKeys,
        key: &str,
        expires_at: &str,
        effects: &Effects,
    ) -> Result<(), Error> {
        if effects.is_empty() {
            return Ok(());
        }
        let done = keys.done(&self.name, key);
        let ttl = envelope::done_mark_ttl(expires_at, self.spec.ttl, self.spec.visibility_timeout);
        let cmd = effects::settle_cmd(keys, Fence::Broadcast, (&done, ttl), effects, self.spec);
        let status: String = self.client.query(&cmd).await?;
        match status.strip_prefix("refused:") {
            Some(why) => Err(Error::UnexpectedReply {
                script: "settle_effects",
                reply: why.to_string(),
            }),
            None => Ok(()),
        }
    }

    async fn dead(&self, keys: &ChannelKeys, text: &str, reason: DeadReason, error: String) {
        self.counters[2].fetch_add(1, Ordering::Relaxed);
        tracing::warn!(channel = %self.spec.qualified_name(), %reason, %error, "dead-lettering a broadcast");
        let letter = DeadLetter::new(
            self.spec,
            None,
            ("subscribers", &self.name),
            "broadcast".into(),
            Some(text),
            (reason, error),
            Vec::new(),
        );
        let Ok(letter) = serde_json::to_string(&letter) else {
            return;
        };
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(keys.dlq())
            .arg("MAXLEN")
            .arg("~")
            .arg(dlq::MAX_LEN)
            .arg("*")
            .arg("d")
            .arg(letter)
            .ignore()
            .cmd("PEXPIRE")
            .arg(keys.dlq())
            .arg(millis(dlq::RETENTION))
            .ignore();
        if let Err(e) = self.client.pipeline::<()>(&pipe).await {
            tracing::error!(channel = %self.spec.qualified_name(), error = %e, "cannot dead-letter a broadcast; it is lost");
        }
    }
}
