//! Step 1 on list and priority channels: taking waiting messages into this
//! consumer's processing list, and the heartbeat that proves it alive.
//!
//! Moving a message from the queue to the processing list is one script
//! (`take.lua`), or a `BLMOVE` on a dedicated connection when a list is
//! empty; a sorted set has no blocking move, so priority queues poll. The
//! heartbeat lets other consumers' maintenance tell a dead holder from a
//! slow one (see `maintenance.rs`, which reaps).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::claim::Recovery;
use super::dispatch::{Handle, Taken};
use super::Ctx;
use crate::contract::Readable;
use crate::envelope::{self, Attempt};
use crate::error::Error;
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::retry::Backoff;
use crate::scripts::{self, TAKE};
use crate::time::millis;
use crate::unreadable::Unreadable;
use courier_schema::Transport;

/// A held element, taken: its envelope, history and reap count (one more
/// delivery per reap); an element that is not UTF-8 text has no envelope
/// (it is dead-lettered).
pub(super) fn held_taken(transport: Transport, element: Vec<u8>) -> Taken {
    let (raw, history, reaped, unreadable) = match std::str::from_utf8(&element) {
        Ok(text) => {
            let (raw, history, reaped) = parse_record(transport, text);
            (raw, history, reaped, None)
        }
        Err(_) => (
            None,
            Vec::new(),
            0,
            Some(Unreadable::bytes("the element", &element)),
        ),
    };
    Taken {
        handle: Handle::Listed { element },
        raw,
        unreadable,
        history,
        deliveries: 1 + reaped,
    }
}

/// A held list or priority element as (envelope text, history, times
/// reaped); priority elements carry their score before a `|`.
pub(super) fn parse_record(
    transport: Transport,
    element: &str,
) -> (Option<String>, Vec<Attempt>, usize) {
    let record = match transport {
        Transport::Priority => element
            .split_once('|')
            .map_or(element, |(_, record)| record),
        _ => element,
    };
    let record = envelope::parse_record(record);
    (Some(record.envelope), record.history, record.reaped)
}

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Proves this consumer alive for one visibility timeout, and keeps the
    /// keys it holds work in from expiring.
    pub(super) async fn heartbeat(&self, keys: &ChannelKeys) -> Result<(), Error> {
        let retention = millis(self.spec.retention.max_age);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(keys.alive(&self.name))
            .arg(1)
            .arg("PX")
            .arg(millis(self.spec.visibility_timeout))
            .ignore()
            .cmd("SADD")
            .arg(keys.consumers())
            .arg(&self.name)
            .ignore()
            .cmd("PEXPIRE")
            .arg(keys.consumers())
            .arg(retention)
            .ignore()
            .cmd("PEXPIRE")
            .arg(keys.processing(&self.name))
            .arg(retention)
            .ignore();
        self.client.pipeline::<()>(&pipe).await
    }

    /// Reads a list or priority channel: takes waiting messages into this
    /// consumer's processing list (atomically), waiting with a blocking
    /// `BLMOVE` on lists and short polls on priority queues.
    pub(super) async fn read_held(self: Arc<Self>, keys: ChannelKeys, stop: CancellationToken) {
        let transport = self.spec.transport;
        let (queue, processing, sla) = (keys.queue(), keys.processing(&self.name), keys.sla());
        let mut conn = None;
        let mut backoff = Backoff::new();
        let mut idle = Duration::from_millis(5);
        let mut recovery = Recovery::new();
        while let Some(mut permits) = self.permits(&stop).await {
            if !self
                .recover_if_due(&mut recovery, &keys, &mut permits)
                .await
            {
                continue;
            }
            let taken: Result<Vec<Vec<u8>>, Error> = self
                .client
                .query(
                    scripts::evalsha(&TAKE, &[&queue, &processing, &sla])
                        .arg(permits.len())
                        .arg(transport.as_str())
                        .arg(millis(self.spec.retention.max_age)),
                )
                .await;
            let mut taken = match taken {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "taking messages failed; retrying");
                    recovery.due();
                    drop(permits);
                    backoff.pause(&stop).await;
                    continue;
                }
            };
            backoff.reset();
            if taken.is_empty() {
                if transport == Transport::Priority {
                    // A sorted set has no atomic blocking move; poll, from
                    // a few ms up to the blocking read's time while
                    // nothing arrives.
                    drop(permits);
                    tokio::select! {
                        () = tokio::time::sleep(idle) => {}
                        () = stop.cancelled() => return,
                    }
                    idle = (idle * 2).min(self.options.block);
                    continue;
                }
                if conn.is_none() {
                    conn = self.client.dedicated(self.options.block).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    drop(permits);
                    backoff.pause(&stop).await;
                    continue;
                };
                let moved: Result<Option<Vec<u8>>, redis::RedisError> = redis::cmd("BLMOVE")
                    .arg(&queue)
                    .arg(&processing)
                    .arg("RIGHT")
                    .arg("LEFT")
                    .arg(self.options.block.as_secs_f64())
                    .query_async(c)
                    .await;
                match moved {
                    Ok(Some(element)) => taken.push(element),
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "reading failed");
                        conn = None;
                        recovery.due();
                        drop(permits);
                        backoff.pause(&stop).await;
                        continue;
                    }
                }
            }
            idle = Duration::from_millis(5);
            let batch: Vec<_> = taken
                .into_iter()
                .zip(permits.drain(..))
                .map(|(element, permit)| (held_taken(transport, element), permit))
                .collect();
            self.dispatch(&keys, batch).await;
        }
    }
}
