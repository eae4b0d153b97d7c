//! Effects exactly once: what a handler causes, applied once per message
//! however often its handler runs.
//!
//! Delivery is at least once: a consumer that dies after its handler acted
//! but before the acknowledgement reached Redis leaves the message to be
//! redelivered, and the handler runs again. Three kinds of effect, three
//! tools:
//!
//! - **Messages** a handler publishes with a key derived from its input
//!   are deduplicated by the publish script; nothing to do.
//! - **Redis-side state** (a counter, a hash field, a set member, a value):
//!   return [`Outcome::DoneWith`](crate::Outcome::DoneWith) with the
//!   [`Effects`] instead of writing them yourself. The consumer applies
//!   them in the same script that acknowledges the message and sets its
//!   done mark (`lua/settle_effects.lua`), so they happen with the
//!   acknowledgement or not at all, and at most once per idempotency key:
//!   a consumer that lost the message to a reclaim writes nothing, and a
//!   second handling of the same key finds the done mark and drops its
//!   writes. Read them back with [`Client::effects`].
//! - **Anything outside Redis** (a payment API, an e-mail, a file): pass
//!   [`Delivery::effect_key`](crate::Delivery::effect_key) to the other
//!   side's idempotency mechanism (an `Idempotency-Key` header, a unique
//!   column, a file named by it). It is the same for every delivery of the
//!   message, so the other side can refuse the repeat; courier cannot make
//!   a system it does not own atomic with its acknowledgement.
//!
//! Effect keys live in the slot of the message's channel partition
//! (`<namespace>:{<domain>.<channel>[#<partition>]}:fx:<name>`), which is
//! what lets one script write them beside the acknowledgement on a Redis
//! Cluster; a total over a partitioned channel is the sum of its
//! partitions', which [`EffectsReader`] computes. Each write keeps its key
//! alive at least [`Effects::keep_for`] more (default: the channel's
//! retention age), so an effect nobody writes any more expires like every
//! other key courier creates.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis::Value;

use crate::client::Client;
use crate::error::Error;
use crate::keys::ChannelKeys;
use crate::partition;
use crate::spec::ChannelSpec;
use crate::time::millis;

/// Redis-side writes a handler asks for, applied with the acknowledgement.
///
/// ```
/// use courier::{Effects, Outcome};
///
/// let outcome = Outcome::DoneWith(
///     Effects::new()
///         .incr("handled", 1)
///         .hincr("by_region", "emea", 1)
///         .sadd("customers", "C0000042"),
/// );
/// assert!(outcome.is_done());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// The writes, in the order they are applied.
    pub(crate) writes: Vec<Write>,
    /// How long each written key lives at least after the write; `None`:
    /// the channel's retention age.
    pub(crate) keep: Option<Duration>,
}

/// One write of [`Effects`]: the effect's name (its key's last part) and
/// what to do there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    /// The effect's name.
    pub(crate) name: String,
    /// The operation and its arguments, as `settle_effects.lua` reads them.
    pub(crate) op: Vec<String>,
}

impl Effects {
    /// No writes yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn write(mut self, name: &str, op: &[&str]) -> Self {
        self.writes.push(Write {
            name: name.to_string(),
            op: op.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Adds `by` to the counter `name` (`INCRBY`).
    pub fn incr(self, name: &str, by: i64) -> Self {
        self.write(name, &["incrby", &by.to_string()])
    }

    /// Adds `by` to `field` of the hash `name` (`HINCRBY`).
    pub fn hincr(self, name: &str, field: &str, by: i64) -> Self {
        self.write(name, &["hincrby", field, &by.to_string()])
    }

    /// Sets `field` of the hash `name` to `value` (`HSET`).
    pub fn hset(self, name: &str, field: &str, value: &str) -> Self {
        self.write(name, &["hset", field, value])
    }

    /// Adds `member` to the set `name` (`SADD`).
    pub fn sadd(self, name: &str, member: &str) -> Self {
        self.write(name, &["sadd", member])
    }

    /// Sets the value `name` (`SET`).
    pub fn set(self, name: &str, value: &str) -> Self {
        self.write(name, &["set", value])
    }

    /// Keeps every key these effects write alive at least `keep` after the
    /// write (a longer TTL a key has is kept).
    pub fn keep_for(mut self, keep: Duration) -> Self {
        self.keep = Some(keep);
        self
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// The stable key of one effect of one message, for an external API's
/// idempotency mechanism: a UUID (version 5) of the message's schema, its
/// idempotency key and the effect's name. Every delivery of the message,
/// in any process, gets the same one; another effect name gets another.
pub(crate) fn effect_key(schema: &str, key: &str, effect: &str) -> String {
    // The namespace UUID of courier's effect keys, fixed forever: changing
    // it would change every key and repeat every external effect.
    const EFFECTS: uuid::Uuid = uuid::uuid!("5d1c7a0e-3b8f-5e2a-9c41-c0a2e7f1b6d3");
    let name = format!("{schema}\u{0}{key}\u{0}{effect}");
    uuid::Uuid::new_v5(&EFFECTS, name.as_bytes()).to_string()
}

/// How `settle_effects.lua` makes sure its caller still holds the message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fence<'a> {
    /// A stream entry pending for `consumer` in `group`, delivered
    /// `deliveries` times.
    Stream {
        group: &'a str,
        consumer: &'a str,
        id: &'a str,
        deliveries: usize,
    },
    /// An element of `consumer`'s processing list, exactly as held.
    Held {
        consumer: &'a str,
        element: &'a [u8],
    },
    /// Nothing to hold: a broadcast.
    Broadcast,
}

/// The `settle_effects.lua` call that acknowledges a message (as `fence`
/// proves it is still held), sets its `done` mark for `done_ttl` and
/// writes `effects` in `keys`' slot: the one place that lays out the
/// script's `KEYS` and `ARGV`.
pub(crate) fn settle_cmd(
    keys: &ChannelKeys,
    fence: Fence<'_>,
    (done, done_ttl): (&str, Duration),
    effects: &Effects,
    spec: &ChannelSpec,
) -> redis::Cmd {
    let fenced = match fence {
        Fence::Held { consumer, .. } => keys.processing(consumer),
        // A broadcast's fenced key is unused: any key of the slot will do.
        Fence::Stream { .. } | Fence::Broadcast => keys.stream(),
    };
    let effect_keys: Vec<String> = effects
        .writes
        .iter()
        .map(|w| keys.effect(&w.name))
        .collect();
    let mut script_keys = vec![fenced.as_str(), done];
    script_keys.extend(effect_keys.iter().map(String::as_str));
    let mut cmd = crate::scripts::evalsha(&crate::scripts::SETTLE_EFFECTS, &script_keys);
    match fence {
        Fence::Stream {
            group,
            consumer,
            id,
            deliveries,
        } => cmd
            .arg("stream")
            .arg(group)
            .arg(consumer)
            .arg(id)
            .arg(deliveries),
        Fence::Held { element, .. } => cmd.arg("held").arg("").arg("").arg(element).arg(0),
        Fence::Broadcast => cmd.arg("none").arg("").arg("").arg("").arg(0),
    };
    let keep = effects.keep.unwrap_or(spec.retention.max_age);
    cmd.arg(millis(done_ttl)).arg(millis(keep));
    for write in &effects.writes {
        cmd.arg(&write.op[..]);
    }
    cmd
}

/// Reads the effects handlers wrote on one channel, summed or merged over
/// its partitions. Made by [`Client::effects`].
#[derive(Debug, Clone)]
pub struct EffectsReader {
    client: Client,
    spec: &'static ChannelSpec,
}

impl Client {
    /// The effects handlers of `spec` wrote with
    /// [`Outcome::DoneWith`](crate::Outcome::DoneWith).
    pub fn effects(&self, spec: &'static ChannelSpec) -> EffectsReader {
        EffectsReader {
            client: self.clone(),
            spec,
        }
    }
}

impl EffectsReader {
    /// One command per partition on the effect `name`'s key, in one
    /// pipeline (one per slot on a cluster).
    async fn each(&self, command: &str, name: &str) -> Result<Vec<Value>, Error> {
        let mut pipe = redis::pipe();
        for partition in partition::all(self.spec) {
            let key = self
                .client
                .keys(self.spec, partition.as_deref())
                .effect(name);
            pipe.cmd(command).arg(key);
        }
        self.client.pipeline(&pipe).await
    }

    /// The counter `name`, summed over the partitions (0 if never written).
    pub async fn counter(&self, name: &str) -> Result<i64, Error> {
        let mut total = 0i64;
        for value in self.each("GET", name).await? {
            let count: Option<i64> = redis::from_redis_value(value)?;
            total = total.saturating_add(count.unwrap_or(0));
        }
        Ok(total)
    }

    /// The hash `name`, merged over the partitions (a field written in
    /// several keeps one of its values).
    pub async fn hash(&self, name: &str) -> Result<BTreeMap<String, String>, Error> {
        let mut merged = BTreeMap::new();
        for value in self.each("HGETALL", name).await? {
            let fields: BTreeMap<String, String> = redis::from_redis_value(value)?;
            merged.extend(fields);
        }
        Ok(merged)
    }

    /// The hash of counters `name`, each field summed over the partitions.
    pub async fn hash_counters(&self, name: &str) -> Result<BTreeMap<String, i64>, Error> {
        let mut merged = BTreeMap::new();
        for value in self.each("HGETALL", name).await? {
            let fields: BTreeMap<String, i64> = redis::from_redis_value(value)?;
            for (field, count) in fields {
                let total: &mut i64 = merged.entry(field).or_default();
                *total = total.saturating_add(count);
            }
        }
        Ok(merged)
    }

    /// The set `name`, the union over the partitions.
    pub async fn set(&self, name: &str) -> Result<BTreeSet<String>, Error> {
        let mut union = BTreeSet::new();
        for value in self.each("SMEMBERS", name).await? {
            let members: BTreeSet<String> = redis::from_redis_value(value)?;
            union.extend(members);
        }
        Ok(union)
    }

    /// The value `name` in each partition that has one.
    pub async fn values(&self, name: &str) -> Result<BTreeMap<Option<String>, String>, Error> {
        let mut found = BTreeMap::new();
        let partitions = partition::all(self.spec);
        for (partition, value) in partitions.into_iter().zip(self.each("GET", name).await?) {
            if let Some(value) = redis::from_redis_value::<Option<String>>(value)? {
                found.insert(partition, value);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_effect_key_is_stable_and_differs_by_message_and_effect() {
        let charge = effect_key("contact_center.billing_task", "T1", "charge");
        assert_eq!(
            charge,
            effect_key("contact_center.billing_task", "T1", "charge")
        );
        assert_ne!(
            charge,
            effect_key("contact_center.billing_task", "T2", "charge")
        );
        assert_ne!(
            charge,
            effect_key("contact_center.billing_task", "T1", "refund")
        );
        assert_ne!(charge, effect_key("contact_center.other", "T1", "charge"));
        // The separator keeps "a"+"b\0c" apart from "a\0b"+"c".
        assert_ne!(effect_key("s", "a", "b"), effect_key("s", "a\u{0}b", ""));
        assert_eq!(uuid::Uuid::parse_str(&charge).unwrap().get_version_num(), 5);
    }

    #[test]
    fn effects_keep_their_writes_in_order() {
        let effects = Effects::new()
            .incr("n", -2)
            .hset("h", "f", "v")
            .sadd("s", "m");
        let ops: Vec<_> = effects
            .writes
            .iter()
            .map(|w| (w.name.as_str(), w.op.clone()))
            .collect();
        assert_eq!(
            ops,
            vec![
                ("n", vec!["incrby".to_string(), "-2".into()]),
                ("h", vec!["hset".into(), "f".into(), "v".into()]),
                ("s", vec!["sadd".into(), "m".into()]),
            ]
        );
    }
}
