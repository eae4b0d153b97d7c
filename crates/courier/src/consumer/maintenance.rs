//! Maintenance: the consumer's background duties, on one task, until
//! shutdown.
//!
//! Moving due retries and scheduled messages back to the queue, refreshing
//! the [`Gate`](super::gate::Gate), sampling the depth gauges, and on list
//! and priority channels beating, reaping the work of dead consumers and
//! checking SLA deadlines. None of it is on a handler's path, so a slow
//! Redis call here delays no message.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::gate::GATE_REFRESH;
use super::stats::bump;
use super::{Ctx, Delivery, Outcome};
use crate::client::{millis, Outbox, PublishOptions};
use crate::contract::Readable;
use crate::dlq;
use crate::envelope::{self, Envelope};
use crate::error::Error;
use crate::keys::ChannelKeys;
use crate::metrics;
use crate::scripts::{self, MOVE_DUE, REAP, SLA};
use crate::spec::SlaNoticeSpec;
use courier_schema::Transport;

/// How often the depth and pending gauges are sampled.
pub(super) const GAUGE_SAMPLE: Duration = Duration::from_secs(2);

impl<M, F, Fut> Ctx<M, F>
where
    M: Readable,
    F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    /// Background duties until shutdown: move due retries and scheduled
    /// messages to the queue; on list and priority channels, keep the
    /// heartbeat, return the work of dead consumers, and report SLA
    /// breaches.
    pub(super) async fn maintain(self: Arc<Self>, partitions: Vec<ChannelKeys>) {
        let held = matches!(self.spec.transport, Transport::List | Transport::Priority);
        let beat_every = self.spec.visibility_timeout / 3;
        let reap_every = self.spec.visibility_timeout / 2;
        let sla_every = Duration::from_millis(250);
        let (mut beat, mut reap, mut sla) = (Instant::now(), Instant::now(), Instant::now());
        let mut gate = Instant::now();
        let mut gauges = Instant::now() - GAUGE_SAMPLE;
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.options.poll_interval) => {}
                () = self.shutdown.cancelled() => return,
            }
            if gate.elapsed() >= GATE_REFRESH {
                gate = Instant::now();
                self.refresh_gate().await;
            }
            if gauges.elapsed() >= GAUGE_SAMPLE {
                gauges = Instant::now();
                for keys in &partitions {
                    self.sample(keys).await;
                }
            }
            for keys in &partitions {
                self.move_due(keys).await;
            }
            if held && beat.elapsed() >= beat_every {
                beat = Instant::now();
                for keys in &partitions {
                    if let Err(e) = self.heartbeat(keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "heartbeat failed");
                    }
                }
            }
            if held && reap.elapsed() >= reap_every {
                reap = Instant::now();
                for keys in &partitions {
                    if let Err(e) = self.reap(keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "returning dead consumers' work failed");
                    }
                }
            }
            if self.spec.transport == Transport::Priority && sla.elapsed() >= sla_every {
                sla = Instant::now();
                for keys in &partitions {
                    if let Err(e) = self.check_sla(keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "checking SLA deadlines failed");
                    }
                }
            }
        }
    }

    /// Samples a partition's depth and this group's pending count into the
    /// gauges.
    pub(super) async fn sample(&self, keys: &ChannelKeys) {
        let inbox = keys.inbox(self.spec.transport);
        let sampled: Result<(u64, u64, Option<u64>), Error> = async {
            Ok(match self.spec.transport {
                Transport::Stream => {
                    let depth: u64 = self.client.query(redis::cmd("XLEN").arg(&inbox)).await?;
                    let groups: redis::streams::StreamInfoGroupsReply = self
                        .client
                        .query(redis::cmd("XINFO").arg("GROUPS").arg(&inbox))
                        .await?;
                    let mine = groups.groups.iter().find(|g| g.name == self.group);
                    (
                        depth,
                        mine.map_or(0, |g| g.pending as u64),
                        mine.and_then(|g| g.lag).map(|l| l as u64),
                    )
                }
                Transport::List => (
                    self.client.query(redis::cmd("LLEN").arg(&inbox)).await?,
                    self.client
                        .query(redis::cmd("LLEN").arg(keys.processing(&self.name)))
                        .await?,
                    None,
                ),
                Transport::Priority => (
                    self.client.query(redis::cmd("ZCARD").arg(&inbox)).await?,
                    self.client
                        .query(redis::cmd("LLEN").arg(keys.processing(&self.name)))
                        .await?,
                    None,
                ),
                Transport::Pubsub => (0, 0, None),
            })
        }
        .await;
        if let Ok((depth, pending, lag)) = sampled {
            metrics::depth(self.spec, keys.partition(), depth, pending, lag);
        }
    }

    /// Moves due messages of the delayed set to the queue, in chunks.
    pub(super) async fn move_due(&self, keys: &ChannelKeys) {
        const CHUNK: usize = 100;
        let (delayed, inbox) = (keys.delayed(), keys.inbox(self.spec.transport));
        loop {
            let moved: Result<usize, Error> = self
                .client
                .query(
                    scripts::evalsha(&MOVE_DUE, &[&delayed, &inbox])
                        .arg(CHUNK)
                        .arg(self.spec.retention.max_len.unwrap_or(0))
                        .arg(millis(self.spec.retention.max_age))
                        .arg(self.spec.transport.as_str()),
                )
                .await;
            match moved {
                Ok(moved) if moved == CHUNK => continue,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "moving due messages failed");
                    return;
                }
            }
        }
    }

    /// Returns the messages held by consumers whose heartbeat expired.
    pub(super) async fn reap(&self, keys: &ChannelKeys) -> Result<(), Error> {
        const CHUNK: usize = 100;
        let members: Vec<String> = self
            .client
            .query(redis::cmd("SMEMBERS").arg(keys.consumers()))
            .await?;
        let others: Vec<&String> = members.iter().filter(|m| **m != self.name).collect();
        if others.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for member in &others {
            pipe.cmd("EXISTS").arg(keys.alive(member));
        }
        let alive: Vec<bool> = self.client.pipeline(&pipe).await?;
        let (queue, consumers) = (keys.queue(), keys.consumers());
        for (member, _) in others.iter().zip(alive).filter(|(_, alive)| !alive) {
            let (processing, heartbeat) = (keys.processing(member), keys.alive(member));
            loop {
                let moved: i64 = self
                    .client
                    .query(
                        scripts::evalsha(&REAP, &[&processing, &queue, &heartbeat, &consumers])
                            .arg(member.as_str())
                            .arg(self.spec.transport.as_str())
                            .arg(CHUNK)
                            .arg(millis(self.spec.retention.max_age)),
                    )
                    .await?;
                if moved > 0 {
                    bump(&self.stats.reaped, moved as u64);
                    tracing::warn!(channel = %self.spec.qualified_name(), consumer = %member, moved, "returned the work of a consumer that stopped beating");
                }
                if moved < CHUNK as i64 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Reports (and escalates, if configured) priority messages waiting
    /// past their SLA deadline.
    pub(super) async fn check_sla(&self, keys: &ChannelKeys) -> Result<(), Error> {
        let (sla, queue, counter) = (keys.sla(), keys.queue(), keys.sla_breaches());
        let late: Vec<String> = self
            .client
            .query(
                scripts::evalsha(&SLA, &[&sla, &queue, &counter])
                    .arg(100)
                    .arg(if self.options.escalate_sla_breaches {
                        "1"
                    } else {
                        "0"
                    })
                    .arg(millis(dlq::RETENTION)),
            )
            .await?;
        for pair in late.chunks(2) {
            let [record, deadline] = pair else { continue };
            bump(&self.stats.sla_breaches, 1);
            metrics::sla_breached(self.spec);
            let Ok(envelope) = Envelope::from_json(record) else {
                continue;
            };
            tracing::warn!(channel = %self.spec.qualified_name(), message = %envelope.id, "SLA breached: still waiting past its deadline");
            if let Some(notice) = self.spec.sla_notice {
                if let Err(e) = self.announce(notice, &envelope, deadline).await {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot announce an SLA breach");
                }
            }
        }
        Ok(())
    }

    /// Publishes courier's SLA notice for a late message on the notice
    /// channel, keyed by the message so it is announced once.
    pub(super) async fn announce(
        &self,
        notice: SlaNoticeSpec,
        late: &Envelope,
        deadline_ms: &str,
    ) -> Result<(), Error> {
        let deadline = deadline_ms
            .parse::<f64>()
            .ok()
            .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
            .unwrap_or_else(Utc::now);
        let payload = serde_json::json!({
            "message_id": late.id,
            "key": late.key,
            "channel": self.spec.qualified_name(),
            "deadline": envelope::timestamp(deadline),
            "priority": late.priority.unwrap_or(0),
        });
        crate::envelope::check_sla_notice(&payload)?;
        let outbox = Outbox {
            client: &self.client,
            spec: notice.channel,
        };
        let options = PublishOptions::default();
        let prepared = outbox.prepare(
            notice.channel.schema,
            notice.version,
            payload,
            format!("sla:{}", late.id),
            &options,
            crate::envelope::HeaderCheck::Full,
        )?;
        outbox.send(vec![prepared], &options).await?;
        Ok(())
    }
}
