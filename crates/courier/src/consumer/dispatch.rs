//! Step 2, between reading and processing: handler slots and the hand-off
//! of a taken message to its handler.
//!
//! Every reader (streams, lists, priority, reclaims, recovery) produces a
//! [`Taken`] message and hands it over here, so the accounting of what this
//! consumer holds ([`Ctx::holding`](super::Ctx)) and the choice between
//! ordered (inline) and concurrent (a task of its own) handling are made
//! once for every transport.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::stats::bump;
use super::streams::DoneHints;
use super::Ctx;
use crate::contract::Readable;
use crate::envelope::Attempt;
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::metrics;

/// A message just taken from its queue, before its handler runs.
pub(super) struct Taken {
    /// How it is held.
    pub(super) handle: Handle,
    /// The envelope text, as stored.
    pub(super) raw: Option<String>,
    /// Its attempts so far.
    pub(super) history: Vec<Attempt>,
    /// Its delivery count.
    pub(super) deliveries: usize,
    /// Its read batch's done check.
    pub(super) done_hint: Option<(DoneHints, usize)>,
}

/// How a delivered message is held, which decides how it is settled.
#[derive(Debug, Clone)]
pub(super) enum Handle {
    /// A stream entry, pending for this consumer.
    Stream {
        /// The entry id.
        id: String,
    },
    /// An element of this consumer's processing list.
    Listed {
        /// The element exactly as held: bytes, since a foreign writer may
        /// have put anything there, and settling removes it by value.
        element: Vec<u8>,
    },
}

impl Handle {
    /// Where the message was, for dead letters and logs.
    pub(super) fn describe(&self) -> String {
        match self {
            Handle::Stream { id } => id.clone(),
            Handle::Listed { .. } => "processing list".to_string(),
        }
    }

    /// What tells this delivery apart among the consumer's holdings.
    pub(super) fn identity(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Handle::Stream { id } => id.into(),
            Handle::Listed { element } => String::from_utf8_lossy(element),
        }
    }
}

/// A held message's name in [`Ctx::holding`]: its partition and identity
/// (stream entry ids repeat across partitions' streams).
pub(super) fn held_key(keys: &ChannelKeys, identity: &str) -> String {
    format!("{}/{identity}", keys.partition().unwrap_or(""))
}

/// One message being processed.
pub(super) struct Entry<'a> {
    pub(super) keys: &'a ChannelKeys,
    pub(super) handle: &'a Handle,
    pub(super) deliveries: usize,
    /// The envelope text, as stored.
    pub(super) raw: Option<&'a str>,
    pub(super) history: Vec<Attempt>,
    /// Whether its idempotency key was already done, checked with the
    /// rest of its read batch: the batch's answer and its place in it.
    pub(super) done_hint: Option<(DoneHints, usize)>,
    /// Its handler permit, given back when the handler returned.
    pub(super) permit: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
}

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Waits for a free handler slot, then takes as many more as are free,
    /// up to a batch; `None` at shutdown.
    pub(super) async fn permits(
        &self,
        stop: &CancellationToken,
    ) -> Option<Vec<OwnedSemaphorePermit>> {
        // Paused or the dependency's breaker open: take nothing, so every
        // message stays queued until it closes.
        while let Some(wait) = self.gate.wait() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return None,
            }
        }
        // Shutdown first: a slot freed after it must not start a read.
        let first = tokio::select! {
            biased;
            () = stop.cancelled() => return None,
            permit = self.semaphore.clone().acquire_owned() => permit.ok()?,
        };
        let mut permits = vec![first];
        while permits.len() < self.options.batch.max(1) {
            match self.semaphore.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        Some(permits)
    }

    /// Hands a taken message to the handler: inline, one at a time, when
    /// the channel keeps order (partitions); on a task of its own otherwise.
    pub(super) async fn dispatch(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        taken: Taken,
        permit: OwnedSemaphorePermit,
    ) {
        let Taken {
            handle,
            raw,
            history,
            deliveries,
            done_hint,
        } = taken;
        bump(&self.stats.delivered, 1);
        metrics::consumed(self.spec);
        metrics::in_flight(self.spec, 1.0);
        let ctx = self.clone();
        let keys = keys.clone();
        let held = held_key(&keys, &handle.identity());
        if let Ok(mut holding) = self.holding.lock() {
            holding.insert(held.clone());
        }
        let work = async move {
            let entry = Entry {
                permit: std::sync::Mutex::new(Some(permit)),
                keys: &keys,
                handle: &handle,
                deliveries,
                raw: raw.as_deref(),
                history,
                done_hint,
            };
            tokio::select! {
                () = ctx.hard_stop.cancelled() => {}
                () = ctx.process(&entry) => {}
            }
            if let Ok(mut holding) = ctx.holding.lock() {
                holding.remove(&held);
            }
            metrics::in_flight(ctx.spec, -1.0);
        };
        if self.ordered {
            work.await;
        } else {
            self.tracker.spawn(work);
        }
    }
}
