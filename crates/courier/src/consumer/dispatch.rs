//! Step 2, between reading and processing: handler slots and the hand-off
//! of a read batch to its handlers.
//!
//! Every reader (streams, lists, priority, reclaims, recovery) hands over
//! what one read took, as a batch of [`Taken`] messages with a place in
//! the read window each (`ConsumerOptions::read_ahead`), so the accounting of what this consumer holds
//! ([`Ctx::holding`](super::Ctx)), admission (one done-mark check for the
//! batch, `admit.rs`) and the choice between ordered and concurrent
//! handling are made once for every transport. A batch's handlers run in
//! one task, concurrently (or one at a time, in read order, when the
//! channel keeps order): no task is spawned per message, and handlers that
//! finish together settle together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::stats::bump;
use super::Ctx;
use crate::contract::Readable;
use crate::envelope::Attempt;
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::unreadable::Unreadable;

/// A message just taken from its queue, before its handler runs.
pub(super) struct Taken {
    /// How it is held.
    pub(super) handle: Handle,
    /// The envelope text, as stored.
    pub(super) raw: Option<String>,
    /// Without a readable envelope, what was stored instead.
    pub(super) unreadable: Option<Unreadable>,
    /// Its attempts so far.
    pub(super) history: Vec<Attempt>,
    /// Its delivery count.
    pub(super) deliveries: usize,
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
    /// Without a readable envelope, what was stored instead.
    pub(super) unreadable: Option<&'a Unreadable>,
    pub(super) history: Vec<Attempt>,
    /// Its place in the read window, then also its handler slot, given
    /// back when the handler returned.
    pub(super) permit: std::sync::Mutex<Vec<OwnedSemaphorePermit>>,
}

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Waits for a free place in the read window (a free handler slot, or
    /// room to read ahead), then takes as many more as are free, up to a
    /// batch: how many messages the next read may take. `None` at
    /// shutdown.
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
            permit = self.window.clone().acquire_owned() => permit.ok()?,
        };
        let mut permits = vec![first];
        while permits.len() < self.options.batch.max(1) {
            match self.window.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        Some(permits)
    }

    /// Waits for a handler slot for `entry`, read at `read_at` (at once,
    /// unless it was read ahead). Returns whether its handler may start. A
    /// message read ahead is not started once the consumer is stopping
    /// (it stays pending, for others to reclaim), nor once it waited half
    /// its visibility timeout: another consumer may reclaim it before its
    /// handler could finish, and act on it too. It stays held, for this
    /// consumer's recovery or another's reclaim.
    async fn handler_slot(&self, entry: &Entry<'_>, read_at: Instant) -> bool {
        let slot = match self.semaphore.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let Ok(slot) = self.semaphore.clone().acquire_owned().await else {
                    return false;
                };
                if self.shutdown.is_cancelled() {
                    return false;
                }
                slot
            }
        };
        if read_at.elapsed() >= self.spec.visibility_timeout / 2 {
            tracing::info!(channel = %self.spec.qualified_name(), entry = %entry.handle.describe(), "a message read ahead waited too long for a handler; leaving it for recovery");
            if let Ok(mut holding) = self.holding.lock() {
                holding.remove(&held_key(entry.keys, &entry.handle.identity()));
            }
            self.left_unstarted.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if let Ok(mut held) = entry.permit.lock() {
            held.push(slot);
        }
        true
    }

    /// Hands a read batch to its handlers: inline, one at a time, when
    /// the channel keeps order (partitions); on one task of its own
    /// otherwise, the handlers running concurrently.
    pub(super) async fn dispatch(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        batch: Vec<(Taken, OwnedSemaphorePermit)>,
    ) {
        if batch.is_empty() {
            return;
        }
        bump(&self.stats.delivered, batch.len() as u64);
        self.metrics.consumed(batch.len() as u64);
        self.metrics.in_flight(batch.len() as f64);
        // Held from now on, so that recovery does not take them back while
        // their handlers run.
        let held: Vec<String> = batch
            .iter()
            .map(|(taken, _)| held_key(keys, &taken.handle.identity()))
            .collect();
        if let Ok(mut holding) = self.holding.lock() {
            holding.extend(held.iter().cloned());
        }
        let ctx = self.clone();
        let keys = keys.clone();
        let read_at = Instant::now();
        let work = async move {
            let (mut taken, permits): (Vec<Taken>, Vec<OwnedSemaphorePermit>) =
                batch.into_iter().unzip();
            let histories: Vec<Vec<Attempt>> = taken
                .iter_mut()
                .map(|taken| std::mem::take(&mut taken.history))
                .collect();
            let entries: Vec<Entry<'_>> = taken
                .iter()
                .zip(permits)
                .zip(histories)
                .map(|((taken, permit), history)| Entry {
                    permit: std::sync::Mutex::new(vec![permit]),
                    keys: &keys,
                    handle: &taken.handle,
                    deliveries: taken.deliveries,
                    raw: taken.raw.as_deref(),
                    unreadable: taken.unreadable.as_ref(),
                    history,
                })
                .collect();
            // Handlers still running when the grace period ends are
            // abandoned: they leave the gauge here.
            let unfinished = AtomicUsize::new(entries.len());
            let work = async {
                let prechecks = ctx.precheck(&entries).await;
                let mut running = FuturesUnordered::new();
                for (entry, precheck) in entries.iter().zip(prechecks) {
                    let (ctx, unfinished) = (&ctx, &unfinished);
                    let handled = async move {
                        if ctx.handler_slot(entry, read_at).await {
                            ctx.process(entry, precheck).await;
                        }
                        drop(entry.permit.lock().map(|mut p| std::mem::take(&mut *p)));
                        ctx.metrics.in_flight(-1.0);
                        unfinished.fetch_sub(1, Ordering::Relaxed);
                    };
                    if ctx.ordered {
                        handled.await;
                    } else {
                        running.push(handled);
                    }
                }
                while running.next().await.is_some() {}
            };
            tokio::select! {
                () = ctx.hard_stop.cancelled() => {}
                () = work => {}
            }
            ctx.metrics
                .in_flight(-(unfinished.load(Ordering::Relaxed) as f64));
            if let Ok(mut holding) = ctx.holding.lock() {
                for held in &held {
                    holding.remove(held);
                }
            }
        };
        if self.ordered {
            work.await;
        } else {
            self.tracker.spawn(work);
        }
    }
}
