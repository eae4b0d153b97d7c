//! Claiming and recovery: taking back messages nobody is working on.
//!
//! Two cases, one dispatch. *Reclaiming* (streams) takes entries other
//! consumers held past the visibility timeout. *Recovery* (every queue
//! transport) takes back what Redis says this consumer holds but none of
//! its handlers handles, which a read whose reply was lost leaves behind;
//! it runs at start and after any failed read, so a consumer's holdings are
//! all being worked on.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis::streams::{StreamClaimReply, StreamPendingCountReply};
use tokio::sync::OwnedSemaphorePermit;

use super::dispatch::{held_key, Handle, Taken};
use super::held::held_taken;
use super::stats::bump;
use super::streams::stream_fields;
use super::Ctx;
use crate::contract::Readable;
use crate::error::Error;
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::metrics;
use crate::time::millis;
use courier_schema::Transport;

/// When a reader takes back what its consumer holds but no handler works
/// on: at start, after a read whose reply may have been lost ([`due`]),
/// until all of it was taken back, and after a message read ahead was left
/// unstarted.
///
/// [`due`]: Recovery::due
pub(super) struct Recovery {
    due: bool,
    /// How many read-ahead messages were left unstarted when it last ran.
    unstarted: u64,
}

impl Recovery {
    /// Due at once.
    pub(super) fn new() -> Self {
        Recovery {
            due: true,
            unstarted: 0,
        }
    }

    /// Makes it due again.
    pub(super) fn due(&mut self) {
        self.due = true;
    }
}

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Takes back, with `permits`, what this consumer holds but no handler
    /// works on, when `recovery` says it is due; a failure is logged and
    /// leaves it due. Returns whether permits are left for a read.
    pub(super) async fn recover_if_due(
        self: &Arc<Self>,
        recovery: &mut Recovery,
        keys: &ChannelKeys,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) -> bool {
        let left = self.left_unstarted.load(Ordering::Relaxed);
        if std::mem::replace(&mut recovery.unstarted, left) != left {
            recovery.due = true;
        }
        if recovery.due {
            recovery.due = match self.recover(keys, permits).await {
                Ok(all) => !all,
                Err(e) => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot look for held messages; retrying");
                    true
                }
            };
        }
        !permits.is_empty()
    }

    /// Takes back messages this consumer holds that no handler of it works
    /// on: a read whose reply was lost (Redis moved the messages to this
    /// consumer, the reply never came) leaves them so, and neither the
    /// reaper (this consumer is alive) nor reclaiming (which skips a
    /// consumer's own entries) would. Uses up to `permits`; returns whether
    /// it found nothing more than they could take.
    pub(super) async fn recover(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) -> Result<bool, Error> {
        // What handlers hold now, taken before looking at Redis: a message
        // settled in between is gone from Redis by then, and only this
        // reader starts new handlers on this partition.
        let Ok(held_now) = self.holding.lock().map(|h| h.clone()) else {
            return Ok(true);
        };
        let holding = |identity: &str| held_now.contains(&held_key(keys, identity));
        if self.spec.transport == Transport::Stream {
            let pending: StreamPendingCountReply = self
                .client
                .query(
                    redis::cmd("XPENDING")
                        .arg(keys.stream())
                        .arg(&self.group)
                        .arg("-")
                        .arg("+")
                        .arg(permits.len() * 4 + 16)
                        .arg(&self.name),
                )
                .await?;
            let orphans: HashMap<String, usize> = pending
                .ids
                .into_iter()
                .filter(|p| !holding(&p.id))
                .map(|p| (p.id, p.times_delivered))
                .collect();
            if orphans.is_empty() {
                return Ok(true);
            }
            let all = orphans.len() <= permits.len();
            let mut cmd = redis::cmd("XCLAIM");
            cmd.arg(keys.stream())
                .arg(&self.group)
                .arg(&self.name)
                .arg(0);
            for id in orphans.keys().take(permits.len()) {
                cmd.arg(id);
            }
            let claimed: StreamClaimReply = self.client.query(&cmd).await?;
            self.dispatch_claimed(keys, claimed, &orphans, permits)
                .await;
            return Ok(all);
        }
        let held: Vec<Vec<u8>> = self
            .client
            .query(
                redis::cmd("LRANGE")
                    .arg(keys.processing(&self.name))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        let orphans: Vec<Vec<u8>> = held
            .into_iter()
            .filter(|e| !holding(&String::from_utf8_lossy(e)))
            .collect();
        let all = orphans.len() <= permits.len();
        let batch: Vec<_> = orphans
            .into_iter()
            .zip(std::iter::from_fn(|| permits.pop()))
            .map(|(element, permit)| (held_taken(self.spec.transport, element), permit))
            .collect();
        self.dispatch(keys, batch).await;
        Ok(all)
    }

    /// Reclaims entries other consumers have held past the visibility
    /// timeout, one per permit.
    ///
    /// `XAUTOCLAIM` would also take back this consumer's own entries whose
    /// handler is merely slow, and run them twice here; so candidates come
    /// from `XPENDING ... IDLE`, this consumer's own are skipped, and
    /// `XCLAIM` takes each only if it is still idle (another consumer may
    /// have been faster). A candidate that `XCLAIM` drops and that left the
    /// pending list was trimmed away before anyone handled it: counted as
    /// lost, never ignored.
    pub(super) async fn claim(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        cursor: &mut String,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) -> Result<(), Error> {
        let idle = millis(self.spec.visibility_timeout);
        let scan = permits.len() * 4 + 16;
        let pending: StreamPendingCountReply = self
            .client
            .query(
                redis::cmd("XPENDING")
                    .arg(keys.stream())
                    .arg(&self.group)
                    .arg("IDLE")
                    .arg(idle)
                    .arg(&*cursor)
                    .arg("+")
                    .arg(scan),
            )
            .await?;
        *cursor = match pending.ids.last() {
            Some(last) if pending.ids.len() == scan => format!("({}", last.id),
            _ => "-".to_string(),
        };
        let candidates: HashMap<String, usize> = pending
            .ids
            .into_iter()
            .filter(|p| p.consumer != self.name)
            .take(permits.len())
            .map(|p| (p.id, p.times_delivered))
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(keys.stream())
            .arg(&self.group)
            .arg(&self.name)
            .arg(idle);
        for id in candidates.keys() {
            cmd.arg(id);
        }
        let claimed: StreamClaimReply = self.client.query(&cmd).await?;
        let taken: HashSet<&str> = claimed.ids.iter().map(|e| e.id.as_str()).collect();
        let dropped: Vec<&String> = candidates
            .keys()
            .filter(|id| !taken.contains(id.as_str()))
            .collect();
        if !dropped.is_empty() {
            self.count_trimmed(keys, &dropped).await?;
        }
        bump(&self.stats.claimed, claimed.ids.len() as u64);
        self.dispatch_claimed(keys, claimed, &candidates, permits)
            .await;
        Ok(())
    }

    /// Hands entries `XCLAIM` returned to handlers, one per permit;
    /// `delivered` holds each entry's delivery count before the claim.
    pub(super) async fn dispatch_claimed(
        self: &Arc<Self>,
        keys: &ChannelKeys,
        claimed: StreamClaimReply,
        delivered: &HashMap<String, usize>,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) {
        let batch: Vec<_> = claimed
            .ids
            .into_iter()
            .zip(std::iter::from_fn(|| permits.pop()))
            .map(|(entry, permit)| {
                // XCLAIM counted this delivery.
                let deliveries = delivered.get(&entry.id).map_or(2, |count| count + 1);
                let (raw, history, unreadable) = stream_fields(&entry.map);
                let taken = Taken {
                    handle: Handle::Stream { id: entry.id },
                    raw,
                    unreadable,
                    history,
                    deliveries,
                };
                (taken, permit)
            })
            .collect();
        self.dispatch(keys, batch).await;
    }

    /// Of candidates `XCLAIM` did not return, those no longer pending were
    /// trimmed from the stream while pending (Redis 7 drops them from the
    /// pending list then); the others went to a faster consumer.
    pub(super) async fn count_trimmed(
        &self,
        keys: &ChannelKeys,
        dropped: &[&String],
    ) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        for id in dropped {
            pipe.cmd("XPENDING")
                .arg(keys.stream())
                .arg(&self.group)
                .arg(*id)
                .arg(*id)
                .arg(1);
        }
        let replies: Vec<StreamPendingCountReply> = self.client.pipeline(&pipe).await?;
        let lost = replies.iter().filter(|r| r.ids.is_empty()).count();
        if lost > 0 {
            bump(&self.stats.lost_by_trim, lost as u64);
            metrics::lost_by_trim(self.spec, lost as u64);
            // Kept in Redis too, for `courier status` and other workers.
            let mut record = redis::pipe();
            record
                .cmd("INCRBY")
                .arg(keys.lost_by_trim())
                .arg(lost)
                .ignore()
                .cmd("PEXPIRE")
                .arg(keys.lost_by_trim())
                .arg(millis(self.spec.retention.max_age))
                .ignore();
            if let Err(e) = self.client.pipeline::<()>(&record).await {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot record messages lost by trim");
            }
            tracing::error!(
                channel = %self.spec.qualified_name(),
                lost,
                "pending messages were trimmed away before they were handled; raise the channel's retention"
            );
        }
        Ok(())
    }
}
