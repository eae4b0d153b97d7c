//! Step 6: settling, one fenced script per message (batched across the
//! handlers in flight): done, skip, retry, hold back or dead-letter.
//!
//! The script is fenced by the transport (streams: owner and delivery
//! count; lists and priority: removal from this consumer's processing
//! list), so a consumer that lost a message to a reclaim cannot settle it.
//! Settling retries passing Redis faults for up to the visibility timeout,
//! while this consumer still owns the message.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::dispatch::{Entry, Handle};
use super::stats::bump;
use super::Ctx;
use crate::client::Client;
use crate::contract::Readable;
use crate::dlq::{self, DeadLetter, DeadReason};
use crate::effects::{self, Effects, Fence};
use crate::error::Error;
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::metrics;
use crate::retry;
use crate::scripts::{self, SETTLE, SETTLE_HELD};
use crate::spec::ChannelSpec;
use crate::time::millis;
use courier_schema::Transport;

/// One message's settlement, for the settle batcher.
pub(super) struct Settlement {
    /// The channel partition's keys.
    pub(super) keys: ChannelKeys,
    /// Which delivery, fenced as its transport requires.
    pub(super) handle: Handle,
    /// The delivery count the stream fence expects.
    pub(super) deliveries: usize,
    /// The done key of its idempotency key.
    pub(super) done: String,
    /// The action and its own arguments, as `courier_settle` in
    /// `lua/common.lua` reads them (unused with effects).
    pub(super) action: Vec<String>,
    /// Redis-side effects to write with the acknowledgement, and the done
    /// mark's TTL (`settle_effects.lua`).
    pub(super) effects: Option<(Effects, Duration)>,
}

/// Most settlements or done checks sent in one batch.
pub(super) const BATCH_LIMIT: usize = 128;

/// Sends settlements in one pipeline: one script call per partition and
/// transport fence, each settling all of its messages.
pub(super) async fn settle_batch(
    client: Client,
    spec: &'static ChannelSpec,
    group: String,
    name: String,
    batch: Vec<Settlement>,
) -> Result<Vec<String>, Error> {
    let transport = spec.transport;
    // What every retry and dead letter of the call shares, sent once.
    let limits = [
        millis(spec.retention.max_age),
        millis(dlq::RETENTION),
        dlq::MAX_LEN,
    ];
    // Group by partition, keeping each message's place in the batch; a
    // settlement with effects is a call of its own.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut alone: Vec<usize> = Vec::new();
    for (i, settlement) in batch.iter().enumerate() {
        if settlement.effects.is_some() {
            alone.push(i);
            continue;
        }
        let partition = settlement.keys.partition();
        match groups
            .iter_mut()
            .find(|g| batch[g[0]].keys.partition() == partition)
        {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let mut pipe = redis::pipe();
    for g in &groups {
        let keys = &batch[g[0]].keys;
        let (delayed, dlq) = (keys.delayed(), keys.dlq());
        let fenced = match transport {
            Transport::Stream => keys.stream(),
            _ => keys.processing(&name),
        };
        let mut script_keys = vec![fenced.as_str(), delayed.as_str(), dlq.as_str()];
        script_keys.extend(g.iter().map(|&i| batch[i].done.as_str()));
        let mut cmd = match transport {
            Transport::Stream => {
                // The batch's id range, for the script's one ownership read.
                let ids = g.iter().filter_map(|&i| match &batch[i].handle {
                    Handle::Stream { id } => Some((stream_id(id), id.as_str())),
                    Handle::Listed { .. } => None,
                });
                let first = ids.clone().min().map_or("-", |(_, id)| id);
                let last = ids.max().map_or("+", |(_, id)| id);
                let mut cmd = scripts::evalsha(&SETTLE, &script_keys);
                cmd.arg(&group)
                    .arg(&name)
                    .arg(first)
                    .arg(last)
                    .arg(&limits[..]);
                cmd
            }
            _ => {
                let mut cmd = scripts::evalsha(&SETTLE_HELD, &script_keys);
                cmd.arg(&limits[..]);
                cmd
            }
        };
        for &i in g {
            let settlement = &batch[i];
            match &settlement.handle {
                Handle::Stream { id } => cmd.arg(id).arg(settlement.deliveries),
                Handle::Listed { element } => cmd.arg(element),
            };
            cmd.arg(&settlement.action[..]);
        }
        pipe.add_command(cmd);
    }
    let replies: Vec<Vec<String>> = if groups.is_empty() {
        Vec::new()
    } else {
        client.pipeline(&pipe).await?
    };
    let mut statuses = vec![String::new(); batch.len()];
    for (g, reply) in groups.iter().zip(replies) {
        if reply.len() != g.len() {
            return Err(Error::UnexpectedReply {
                script: "settle",
                reply: format!("{reply:?}"),
            });
        }
        for (&i, status) in g.iter().zip(reply) {
            statuses[i] = status;
        }
    }
    // Each settlement with effects on its own call, after the others: the
    // script checks every write before making any, and should it fail all
    // the same, the failure is that message's alone (`error:`), not the
    // batch's. A passing fault fails the batch, which is retried.
    for i in alone {
        let cmd = with_effects(&batch[i], (&group, &name), spec);
        statuses[i] = match client.query::<String>(&cmd).await {
            Ok(status) => status,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => format!("error:{e}"),
        };
    }
    Ok(statuses)
}

/// The `settle_effects.lua` call of one settlement with effects.
fn with_effects(
    settlement: &Settlement,
    (group, name): (&str, &str),
    spec: &ChannelSpec,
) -> redis::Cmd {
    let (effects, ttl) = settlement
        .effects
        .as_ref()
        .expect("a settlement with effects");
    let fence = match &settlement.handle {
        Handle::Stream { id } => Fence::Stream {
            group,
            consumer: name,
            id,
            deliveries: settlement.deliveries,
        },
        Handle::Listed { element } => Fence::Held {
            consumer: name,
            element,
        },
    };
    let done = (settlement.done.as_str(), *ttl);
    effects::settle_cmd(&settlement.keys, fence, done, effects, spec)
}

/// A stream entry id's two numbers, which order ids (their text does not).
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Checks done marks in one pipeline.
pub(super) async fn check_batch(client: Client, done: Vec<String>) -> Result<Vec<bool>, Error> {
    let mut pipe = redis::pipe();
    for key in &done {
        pipe.cmd("EXISTS").arg(key);
    }
    client.pipeline(&pipe).await
}

/// What a settle script is asked to do.
pub(super) enum Action {
    Done {
        ttl: Duration,
    },
    /// Done, with Redis-side effects written in the same script.
    DoneWith {
        ttl: Duration,
        effects: Effects,
    },
    Skip,
    Retry {
        delay: Duration,
        delayed: String,
    },
    /// A retry that uses no attempt: the dependency's breaker opened.
    HoldBack {
        delay: Duration,
        delayed: String,
    },
    Dead {
        letter: String,
        reason: DeadReason,
    },
}

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Dead-letters an entry; `attempt` is the failed handler attempt to add
    /// to the history, when a handler ran.
    pub(super) async fn dead(
        &self,
        entry: &Entry<'_>,
        key: &str,
        reason: DeadReason,
        error: String,
        attempt: Option<u32>,
    ) {
        let mut history = entry.history.clone();
        if let Some(attempt) = attempt {
            history.push(self.attempt_record(attempt, error.clone(), None));
        }
        tracing::warn!(channel = %self.spec.qualified_name(), %reason, %error, "dead-lettering a message");
        let mut letter = DeadLetter::new(
            self.spec,
            entry.keys.partition(),
            (&self.group, &self.name),
            entry.handle.describe(),
            entry.raw,
            (reason, error),
            history,
        );
        if let (None, Some(found)) = (entry.raw, entry.unreadable) {
            letter.keep_unreadable(&found.content);
        }
        match serde_json::to_string(&letter) {
            Ok(letter) => {
                self.settle(entry, key, Action::Dead { letter, reason })
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a dead letter; leaving the message pending")
            }
        }
    }

    /// Runs the settle script, retrying passing Redis faults for up to the
    /// visibility timeout; after that the message stays pending and is
    /// reclaimed, which is safe.
    pub(super) async fn settle(&self, entry: &Entry<'_>, key: &str, action: Action) {
        // A hold-back is counted when decided (`held_back`); this counter
        // is bumped once the script settled the message.
        let unused = AtomicU64::new(0);
        let (counter, args): (&AtomicU64, Vec<String>) = match &action {
            Action::Done { ttl } => (
                &self.stats.done,
                vec!["done".into(), millis(*ttl).to_string()],
            ),
            Action::DoneWith { .. } => (&self.stats.done, Vec::new()),
            Action::Skip => (&self.stats.done, vec!["skip".into()]),
            Action::Retry { delay, delayed } | Action::HoldBack { delay, delayed } => (
                if matches!(action, Action::Retry { .. }) {
                    &self.stats.retried
                } else {
                    &unused
                },
                vec![
                    "retry".into(),
                    u64::try_from(delay.as_millis())
                        .unwrap_or(u64::MAX)
                        .to_string(),
                    delayed.clone(),
                ],
            ),
            Action::Dead { letter, .. } => (&self.stats.dead, vec!["dead".into(), letter.clone()]),
        };
        let effects = match &action {
            Action::DoneWith { effects, ttl } => Some((effects.clone(), *ttl)),
            _ => None,
        };
        let settlement = || Settlement {
            keys: entry.keys.clone(),
            handle: entry.handle.clone(),
            deliveries: entry.deliveries,
            done: entry.keys.done(&self.group, key),
            action: args.clone(),
            effects: effects.clone(),
        };
        match self.persist(|| self.settler.call(settlement())).await {
            Ok(status) if status == "ok" => {
                if !matches!(action, Action::Skip) {
                    bump(counter, 1);
                }
                match &action {
                    Action::Done { .. } | Action::DoneWith { .. } => self.metrics.acknowledged(),
                    Action::Skip => self.metrics.duplicate_skipped(),
                    Action::Retry { .. } => self.metrics.retried(),
                    Action::HoldBack { .. } => {}
                    Action::Dead { reason, .. } => {
                        metrics::dead_lettered(self.spec, reason.as_str())
                    }
                }
            }
            Ok(status) if status == "duplicate" => {
                // Another handling of this key settled first: this one is
                // acknowledged and its effects dropped.
                bump(&self.stats.duplicates, 1);
                self.metrics.duplicate_skipped();
            }
            Ok(status) if status.starts_with("error:") => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %&status["error:".len()..], "cannot write a message's effects; it stays pending and will be reclaimed");
            }
            Ok(status) if status.starts_with("refused:") => {
                let why = format!("effects refused: {}", &status["refused:".len()..]);
                Box::pin(self.dead(entry, key, DeadReason::Fatal, why, None)).await;
            }
            Ok(_) => {
                bump(&self.stats.stale, 1);
                tracing::info!(channel = %self.spec.qualified_name(), entry = %entry.handle.describe(), "another consumer took this message over; not settling it");
            }
            Err(e) => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot settle a message; it stays pending and will be reclaimed");
            }
        }
    }

    /// Runs `call`, retrying passing Redis faults (a restart, a dropped
    /// connection) for up to the visibility timeout: within it, this
    /// consumer still owns the message, so giving up early would leave it
    /// held by a live consumer that no longer works on it.
    pub(super) async fn persist<T, Call>(&self, call: impl FnMut() -> Call) -> Result<T, Error>
    where
        Call: std::future::Future<Output = Result<T, Error>>,
    {
        retry::transient(self.spec.visibility_timeout, call).await
    }
}

#[cfg(test)]
mod tests {
    use super::stream_id;

    #[test]
    fn stream_ids_order_by_their_numbers_not_their_text() {
        assert!(stream_id("999-5") < stream_id("1000-0"));
        assert!(stream_id("1000-2") < stream_id("1000-10"));
        assert_eq!(stream_id("1700000000000-3"), (1_700_000_000_000, 3));
    }
}
