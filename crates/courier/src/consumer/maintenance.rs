//! Maintenance: the consumer's background duties, on one task, until
//! shutdown.
//!
//! Moving due retries and scheduled messages back to the queue, refreshing
//! the [`Gate`](super::gate::Gate), sampling the depth gauges; on stream
//! channels removing consumers that are gone from the group; on list and
//! priority channels beating, reaping the work of dead consumers and
//! checking SLA deadlines. None of it is on a handler's path, so a slow
//! Redis call here delays no message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::gate::GATE_REFRESH;
use super::stats::bump;
use super::Ctx;
use crate::contract::Readable;
use crate::dlq;
use crate::envelope::{self, Envelope};
use crate::error::Error;
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::metrics;
use crate::publish::{Outbox, PublishOptions, Stamp};
use crate::scripts::{self, FORGET_CONSUMERS, MOVE_DUE, REAP, SLA};
use crate::spec::SlaNoticeSpec;
use crate::state;
use crate::time::millis;
use courier_schema::Transport;

/// How often the depth and pending gauges are sampled.
pub(super) const GAUGE_SAMPLE: Duration = Duration::from_secs(2);

/// A stream consumer that has not beat for this many visibility timeouts
/// and holds nothing is gone: live consumers remove it from the group. Its
/// entries were reclaimed after one timeout. Were a live one ever removed,
/// it would only join again with its next read.
const GONE_AFTER_TIMEOUTS: u32 = 3;

/// Most gone consumers removed from one group partition per call.
const FORGET_CHUNK: usize = 100;

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Background duties until shutdown: move due retries and scheduled
    /// messages to the queue; on stream channels, remove gone consumers
    /// from the group; on list and priority channels, keep the heartbeat,
    /// return the work of dead consumers, and report SLA breaches.
    pub(super) async fn maintain(self: Arc<Self>, partitions: Vec<ChannelKeys>) {
        let held = matches!(self.spec.transport, Transport::List | Transport::Priority);
        let beat_every = self.spec.visibility_timeout / 3;
        let reap_every = self.spec.visibility_timeout / 2;
        let sla_every = Duration::from_millis(250);
        let forget_every = self.spec.visibility_timeout;
        let (mut reap, mut sla) = (Instant::now(), Instant::now());
        // The first beat at once: list consumers beat when they join, a
        // stream consumer's first beat is here.
        let mut beat = Instant::now() - beat_every;
        // The first pass at once: a consumer that lives less than a
        // visibility timeout (a scaled-out instance, a restarted one) must
        // still clear away those gone before it, or a group whose consumers
        // all live briefly lists every one that ever ran.
        let mut forget = Instant::now()
            .checked_sub(forget_every)
            .unwrap_or_else(Instant::now);
        let mut gate = Instant::now();
        let mut gauges = Instant::now() - GAUGE_SAMPLE;
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.options.poll_interval) => {}
                () = self.shutdown.cancelled() => return,
            }
            if gate.elapsed() >= GATE_REFRESH {
                gate = Instant::now();
                self.gate.refresh().await;
            }
            if gauges.elapsed() >= GAUGE_SAMPLE {
                gauges = Instant::now();
                self.sample(&partitions).await;
            }
            for keys in &partitions {
                self.move_due(keys).await;
            }
            if beat.elapsed() >= beat_every {
                beat = Instant::now();
                for keys in &partitions {
                    let beaten = match self.spec.transport {
                        Transport::Stream => self.beat_stream(keys).await,
                        _ => self.heartbeat(keys).await,
                    };
                    if let Err(e) = beaten {
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
            if self.spec.transport == Transport::Stream && forget.elapsed() >= forget_every {
                forget = Instant::now();
                for keys in &partitions {
                    if let Err(e) = self.forget_gone(keys).await {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "removing gone consumers failed");
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

    /// Samples the state of this consumer's partitions ([`crate::state`])
    /// into the depth, pending and lag gauges: what waits for this
    /// consumer's group, what the group (on lists: every consumer) holds,
    /// and (streams) the group's lag.
    pub(super) async fn sample(&self, partitions: &[ChannelKeys]) {
        let group = (self.spec.transport == Transport::Stream).then_some(self.group.as_str());
        match state::read(&self.client, self.spec, group, partitions).await {
            Ok(states) => {
                for state in states {
                    let f = &state.figures;
                    metrics::depth(
                        self.spec,
                        state.partition.as_deref(),
                        f.waiting.unwrap_or(0),
                        f.held.unwrap_or(0),
                        f.lag,
                    );
                }
            }
            Err(e) => {
                tracing::debug!(channel = %self.spec.qualified_name(), error = %e, "sampling the channel's state failed");
            }
        }
    }

    /// Moves due messages of the delayed set to the queue, in chunks.
    pub(super) async fn move_due(&self, keys: &ChannelKeys) {
        const CHUNK: usize = 100;
        let (delayed, inbox, dead) = (keys.delayed(), keys.inbox(self.spec.transport), keys.dlq());
        // What a member that is not a record becomes: the dead letter as
        // JSON around its `raw` text, which the script fills in.
        const RAW: &str = "\u{1}raw\u{1}";
        let mut letter = dlq::DeadLetter::new(
            self.spec,
            keys.partition(),
            (&self.group, &self.name),
            String::new(),
            Some(RAW),
            (
                dlq::DeadReason::InvalidPayload,
                "a delayed message that is not a courier record (a JSON object whose \"m\" is the envelope)"
                    .to_string(),
            ),
            Vec::new(),
        );
        // The script escapes the member, which may not be text.
        letter.keep_unreadable(RAW);
        let letter = serde_json::to_string(&letter).unwrap_or_default();
        let Some((before, after)) =
            letter.split_once(&serde_json::to_string(RAW).unwrap_or_default())
        else {
            tracing::warn!(channel = %self.spec.qualified_name(), "cannot write a dead letter");
            return;
        };
        loop {
            let moved: Result<usize, Error> = self
                .client
                .query(
                    scripts::evalsha(&MOVE_DUE, &[&delayed, &inbox, &dead])
                        .arg(CHUNK)
                        .arg(self.spec.retention.max_len.unwrap_or(0))
                        .arg(millis(self.spec.retention.max_age))
                        .arg(self.spec.transport.as_str())
                        .arg(before)
                        .arg(dlq::MAX_LEN)
                        .arg(millis(dlq::RETENTION))
                        .arg(after),
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

    /// Proves this stream consumer alive for one visibility timeout, so
    /// that other consumers do not take it for gone while it has nothing
    /// to read (Redis before 7.2 does not count an empty read as activity).
    pub(super) async fn beat_stream(&self, keys: &ChannelKeys) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(keys.alive(&self.name))
            .arg(1)
            .arg("PX")
            .arg(millis(self.spec.visibility_timeout))
            .ignore()
            .cmd("SET")
            .arg(keys.seen(&self.name))
            .arg(1)
            .arg("PX")
            .arg(millis(self.gone_after()))
            .ignore();
        self.client.pipeline(&pipe).await
    }

    /// How long a stream consumer may go without beating before it counts
    /// as gone: [`GONE_AFTER_TIMEOUTS`] visibility timeouts, and never
    /// less than a few blocking reads.
    fn gone_after(&self) -> Duration {
        (self.spec.visibility_timeout * GONE_AFTER_TIMEOUTS).max(self.options.block * 4)
    }

    /// Removes from a stream partition's group the consumers that are
    /// gone (`forget_consumers.lua`): no beat for [`GONE_AFTER_TIMEOUTS`]
    /// visibility timeouts (their `seen` key expired) and nothing pending.
    /// Every consumer process joins under a fresh name, so without this
    /// the group would list every consumer that ever ran. The group's own
    /// idle times are no measure: Redis resets them all when it restarts.
    /// List and priority consumers leave nothing behind: their heartbeat
    /// key expires, and the reaper empties their processing list and
    /// removes them from the consumers set.
    pub(super) async fn forget_gone(&self, keys: &ChannelKeys) -> Result<(), Error> {
        let stream = keys.stream();
        // A consumer that joined with its first read beats right after;
        // give it a few blocking reads.
        let idle = self.options.block * 4;
        let listed: redis::streams::StreamInfoConsumersReply = match self
            .client
            .query(
                redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(&stream)
                    .arg(&self.group),
            )
            .await
        {
            Ok(listed) => listed,
            // No stream or group yet: nobody to forget.
            Err(Error::Redis(e))
                if e.code() == Some("NOGROUP") || e.to_string().contains("no such key") =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        let candidates: Vec<String> = listed
            .consumers
            .into_iter()
            .filter(|c| c.name != self.name && c.pending == 0 && c.idle as u128 >= idle.as_millis())
            .map(|c| c.name)
            .take(FORGET_CHUNK)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let seen: Vec<String> = candidates.iter().map(|c| keys.seen(c)).collect();
        let mut script_keys = vec![stream.as_str()];
        script_keys.extend(seen.iter().map(String::as_str));
        let mut cmd = scripts::evalsha(&FORGET_CONSUMERS, &script_keys);
        cmd.arg(&self.group).arg(&self.name).arg(millis(idle));
        for name in &candidates {
            cmd.arg(name);
        }
        let removed: Vec<String> = self.client.query(&cmd).await?;
        if !removed.is_empty() {
            tracing::info!(channel = %self.spec.qualified_name(), group = %self.group, ?removed, "removed consumers that are gone from the group");
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
            if let Some(notice) = &self.spec.sla_notice {
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
        notice: &'static SlaNoticeSpec,
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
            spec: &notice.channel,
        };
        let options = PublishOptions::default();
        let prepared = outbox.prepare(
            None,
            &notice.channel.schema,
            notice.version,
            payload,
            format!("sla:{}", late.id),
            &options,
            &Stamp::new(&notice.channel, &options),
        )?;
        outbox.send(vec![prepared], &options).await?;
        Ok(())
    }
}
