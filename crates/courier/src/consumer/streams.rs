//! Step 1 on stream channels: joining the consumer group and reading new
//! entries with `XREADGROUP`.
//!
//! A blocking read never runs on the shared connection: each stream reader
//! has a dedicated one. What one read returns goes to its handlers as one
//! batch (`dispatch.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::streams::StreamReadReply;
use redis::Value;
use tokio_util::sync::CancellationToken;

use super::claim::Recovery;
use super::dispatch::{Handle, Taken};
use super::Ctx;
use crate::contract::Readable;
use crate::envelope::Attempt;
use crate::error::{self, Error};
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::retry::Backoff;
use crate::time::millis;
use crate::unreadable::Unreadable;

/// The envelope (`m`) and attempt history (`h`) fields of a stream entry;
/// without a readable envelope, what the entry holds instead.
pub(super) fn stream_fields(
    fields: &HashMap<String, Value>,
) -> (Option<String>, Vec<Attempt>, Option<Unreadable>) {
    let field = |name: &str| {
        fields
            .get(name)
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
    };
    let history = field("h")
        .and_then(|h| serde_json::from_str(&h).ok())
        .unwrap_or_default();
    match (field("m"), fields.get("m")) {
        (Some(raw), _) => (Some(raw), history, None),
        (None, Some(Value::BulkString(bytes))) => (
            None,
            history,
            Some(Unreadable::bytes("the envelope field \"m\"", bytes)),
        ),
        (None, _) => (None, history, Some(Unreadable::entry_without("m", fields))),
    }
}

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Creates the group (reading from the stream's start, so messages
    /// published before the first consumer are not missed) and gives a new
    /// stream its TTL.
    pub(super) async fn ensure_group(&self, keys: &ChannelKeys) -> Result<(), Error> {
        let created: Result<(), Error> = self
            .client
            .query(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(keys.stream())
                    .arg(&self.group)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Err(Error::Redis(e)) if e.code() == Some("BUSYGROUP") => {}
            other => other?,
        }
        let _: i64 = self
            .client
            .query(
                redis::cmd("PEXPIRE")
                    .arg(keys.stream())
                    .arg(millis(self.spec.retention.max_age))
                    .arg("NX"),
            )
            .await?;
        Ok(())
    }

    pub(super) async fn read_stream(self: Arc<Self>, keys: ChannelKeys, stop: CancellationToken) {
        let claim_every = self.options.claim_interval.unwrap_or_else(|| {
            (self.spec.visibility_timeout / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(5))
        });
        let mut last_claim: Option<Instant> = None;
        let mut claim_cursor = "-".to_string();
        let mut conn = None;
        let mut backoff = Backoff::new();
        let mut recovery = Recovery::new();
        while let Some(mut permits) = self.permits(&stop).await {
            if !self
                .recover_if_due(&mut recovery, &keys, &mut permits)
                .await
            {
                continue;
            }
            if last_claim.is_none_or(|at| at.elapsed() >= claim_every) {
                last_claim = Some(Instant::now());
                match self.claim(&keys, &mut claim_cursor, &mut permits).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "reclaiming idle messages failed")
                    }
                }
                if permits.is_empty() {
                    continue;
                }
            }

            if conn.is_none() {
                match self.client.dedicated(self.options.block).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot connect for reading; retrying");
                        drop(permits);
                        backoff.pause(&stop).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let read: Result<Option<StreamReadReply>, redis::RedisError> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.group)
                .arg(&self.name)
                .arg("COUNT")
                .arg(permits.len())
                .arg("BLOCK")
                .arg(millis(self.options.block))
                .arg("STREAMS")
                .arg(keys.stream())
                .arg(">")
                .query_async(c)
                .await;
            match read {
                Ok(reply) => {
                    backoff.reset();
                    let batch: Vec<_> = reply
                        .into_iter()
                        .flat_map(|r| r.keys)
                        .flat_map(|k| k.ids)
                        .zip(permits.drain(..))
                        .map(|(entry, permit)| {
                            let (raw, history, unreadable) = stream_fields(&entry.map);
                            let taken = Taken {
                                handle: Handle::Stream { id: entry.id },
                                raw,
                                unreadable,
                                history,
                                deliveries: 1,
                            };
                            (taken, permit)
                        })
                        .collect();
                    self.dispatch(&keys, batch).await;
                }
                Err(e) if e.code() == Some("NOGROUP") => {
                    // The stream expired or was deleted; start it again.
                    drop(permits);
                    if let Err(e) = self.ensure_group(&keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot recreate the consumer group");
                        backoff.pause(&stop).await;
                    }
                }
                Err(e) => {
                    if !error::is_transient(&e) {
                        tracing::error!(channel = %self.spec.qualified_name(), error = %e, "reading failed");
                    }
                    recovery.due();
                    conn = None;
                    drop(permits);
                    backoff.pause(&stop).await;
                }
            }
        }
    }
}
