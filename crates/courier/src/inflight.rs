//! What a channel's consumers hold right now: each message delivered and
//! not yet settled, with who holds it, for how long, and how often it was
//! delivered. `courier ui`'s channel page shows it.
//!
//! Streams: `XPENDING` of every group (its extended form gives the
//! consumer, the idle time and the delivery count). Lists and priority
//! queues: each live consumer's processing list, whose elements carry the
//! envelope; the idle time is unknown there (Redis keeps none per
//! element), and the delivery count is one plus the times a reaper gave
//! the message back.

use std::time::Duration;

use redis::streams::{StreamInfoGroupsReply, StreamPendingCountReply};

use crate::client::Client;
use crate::envelope;
use crate::error::Error;
use crate::partition;
use crate::spec::ChannelSpec;
use courier_schema::Transport;

/// One message delivered and not yet settled.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    /// The partition, if the channel is partitioned.
    pub partition: Option<String>,
    /// The stream group (streams only).
    pub group: Option<String>,
    /// The consumer holding it.
    pub consumer: String,
    /// The stream entry id (streams), or the message id (lists and
    /// priority queues, read from the envelope; empty when unreadable).
    pub id: String,
    /// How long since it was delivered (streams only).
    pub idle: Option<Duration>,
    /// How many times it was delivered.
    pub deliveries: u64,
}

impl Client {
    /// Up to `limit` messages per partition (and group) that `spec`'s
    /// consumers hold.
    pub async fn in_flight(
        &self,
        spec: &ChannelSpec,
        limit: usize,
    ) -> Result<Vec<InFlight>, Error> {
        let mut held = Vec::new();
        for p in partition::all(spec) {
            let keys = self.keys(spec, p.as_deref());
            match spec.transport {
                Transport::Stream => {
                    let groups: StreamInfoGroupsReply = match self
                        .query(redis::cmd("XINFO").arg("GROUPS").arg(keys.stream()))
                        .await
                    {
                        Ok(groups) => groups,
                        // No stream yet: nothing held.
                        Err(e) if e.to_string().contains("no such key") => continue,
                        Err(e) => return Err(e),
                    };
                    for group in groups.groups {
                        let pending: StreamPendingCountReply = self
                            .query(
                                redis::cmd("XPENDING")
                                    .arg(keys.stream())
                                    .arg(&group.name)
                                    .arg("-")
                                    .arg("+")
                                    .arg(limit),
                            )
                            .await?;
                        held.extend(pending.ids.into_iter().map(|entry| InFlight {
                            partition: p.clone(),
                            group: Some(group.name.clone()),
                            consumer: entry.consumer,
                            id: entry.id,
                            idle: Some(Duration::from_millis(entry.last_delivered_ms as u64)),
                            deliveries: entry.times_delivered as u64,
                        }));
                    }
                }
                Transport::List | Transport::Priority => {
                    let consumers: Vec<String> = self
                        .query(redis::cmd("SMEMBERS").arg(keys.consumers()))
                        .await?;
                    for consumer in consumers {
                        let elements: Vec<Vec<u8>> = self
                            .query(
                                redis::cmd("LRANGE")
                                    .arg(keys.processing(&consumer))
                                    .arg(0)
                                    .arg(limit.saturating_sub(1)),
                            )
                            .await?;
                        held.extend(elements.iter().map(|element| {
                            let (id, reaped) = held_identity(spec.transport, element);
                            InFlight {
                                partition: p.clone(),
                                group: None,
                                consumer: consumer.clone(),
                                id,
                                idle: None,
                                deliveries: 1 + reaped,
                            }
                        }));
                    }
                }
                Transport::Pubsub => {}
            }
        }
        Ok(held)
    }
}

/// A held element's message id and how often it was reaped.
fn held_identity(transport: Transport, element: &[u8]) -> (String, u64) {
    let Ok(text) = std::str::from_utf8(element) else {
        return (String::new(), 0);
    };
    let record = match transport {
        Transport::Priority => text.split_once('|').map_or(text, |(_, record)| record),
        _ => text,
    };
    let record = envelope::parse_record(record);
    let id = serde_json::from_str::<serde_json::Value>(&record.envelope)
        .ok()
        .and_then(|e| e.get("id")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    (id, record.reaped as u64)
}
