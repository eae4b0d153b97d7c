//! Redis key names: the only place that builds them.
//!
//! Every key of one channel partition shares the hash tag
//! `{<domain>.<channel>[#<partition>]}`, so every multi-key script touches
//! one cluster slot:
//!
//! ```text
//! <namespace>:{contact_center.intake#emea}:stream
//! <namespace>:{contact_center.intake#emea}:dlq
//! <namespace>:{contact_center.intake#emea}:delayed
//! <namespace>:{contact_center.intake#emea}:idem:<idempotency key>
//! <namespace>:{contact_center.intake#emea}:done:<group>:<idempotency key>
//! ```
//!
//! List and priority channels add `queue`, `processing:<consumer>`,
//! `alive:<consumer>`, `consumers` and (priority) `sla`; partition
//! assignment adds `members:<group>`. Coordination primitives that belong
//! to no channel (locks, rate limits, breakers) get their own hash tag:
//! `<namespace>:{lock.<name>}:lease`, `<namespace>:{rate.<name>}:bucket`,
//! `<namespace>:{breaker.<name>}:state`.

use courier_schema::Transport;

use crate::spec::ChannelSpec;

/// The keys of one channel, or of one partition of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelKeys {
    /// `<namespace>:{<domain>.<channel>[#<partition>]}:`, ending in a colon.
    prefix: String,
    /// The partition, if the channel is partitioned.
    partition: Option<String>,
}

impl ChannelKeys {
    /// Keys of `spec`'s channel (`partition` when partitioned) in `namespace`.
    pub fn new(namespace: &str, spec: &ChannelSpec, partition: Option<&str>) -> Self {
        let tag = match partition {
            Some(partition) => format!("{}.{}#{partition}", spec.domain, spec.name),
            None => format!("{}.{}", spec.domain, spec.name),
        };
        Self {
            prefix: format!("{namespace}:{{{tag}}}:"),
            partition: partition.map(str::to_string),
        }
    }

    /// The partition these keys belong to.
    pub fn partition(&self) -> Option<&str> {
        self.partition.as_deref()
    }

    /// The key of the Redis-side effect `name` its handlers write
    /// (`crate::effects`).
    pub fn effect(&self, name: &str) -> String {
        self.part(&format!("fx:{name}"))
    }

    /// The stream of messages.
    pub fn stream(&self) -> String {
        self.part("stream")
    }

    /// The dead-letter stream.
    pub fn dlq(&self) -> String {
        self.part("dlq")
    }

    /// The sorted set of messages waiting for a retry or a scheduled time.
    pub fn delayed(&self) -> String {
        self.part("delayed")
    }

    /// Holds the first message id published with `key`, for the dedup window.
    pub fn idem(&self, key: &str) -> String {
        format!("{}idem:{key}", self.prefix)
    }

    /// Marks `key` handled by consumer group `group`: each group of a
    /// fanned-out stream handles every message once.
    pub fn done(&self, group: &str, key: &str) -> String {
        format!("{}done:{group}:{key}", self.prefix)
    }

    /// The list (list channels) or sorted set (priority channels) of
    /// waiting messages.
    pub fn queue(&self) -> String {
        self.part("queue")
    }

    /// Where a channel of `transport` keeps waiting messages: the stream,
    /// the queue, or (pubsub) the channel name messages are published on.
    pub fn inbox(&self, transport: Transport) -> String {
        match transport {
            Transport::Stream => self.stream(),
            Transport::List | Transport::Priority => self.queue(),
            Transport::Pubsub => self.part("broadcast"),
        }
    }

    /// Messages one consumer holds (list and priority channels).
    pub fn processing(&self, consumer: &str) -> String {
        format!("{}processing:{consumer}", self.prefix)
    }

    /// A consumer's heartbeat: exists while the consumer lives.
    pub fn alive(&self, consumer: &str) -> String {
        format!("{}alive:{consumer}", self.prefix)
    }

    /// When a stream consumer last beat, kept for the forget horizon
    /// (three visibility timeouts): what tells a gone consumer from a
    /// live one across a Redis restart, which resets every consumer's idle
    /// time in the group.
    pub fn seen(&self, consumer: &str) -> String {
        format!("{}seen:{consumer}", self.prefix)
    }

    /// The set of consumers that may hold messages, for the reaper.
    pub fn consumers(&self) -> String {
        self.part("consumers")
    }

    /// SLA deadlines of waiting priority messages.
    pub fn sla(&self) -> String {
        self.part("sla")
    }

    /// How many SLA breaches were found, for `courier status`.
    pub fn sla_breaches(&self) -> String {
        self.part("sla_breaches")
    }

    /// How many pending messages were trimmed from the stream before any
    /// consumer handled them (a count, for `courier status`).
    pub fn lost_by_trim(&self) -> String {
        self.part("lost_by_trim")
    }

    /// Live members of a consumer group, for partition assignment.
    pub fn members(&self, group: &str) -> String {
        format!("{}members:{group}", self.prefix)
    }

    /// A pattern matching every key of this channel partition, for tools.
    pub fn pattern(&self) -> String {
        format!("{}*", self.prefix)
    }

    fn part(&self, part: &str) -> String {
        format!("{}{part}", self.prefix)
    }
}

/// The keys of a named coordination primitive (a lock, a rate limit, a
/// breaker), outside any channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKeys {
    /// `<namespace>:{<kind>.<name>}:`.
    prefix: String,
}

impl NamedKeys {
    /// Keys of the lease lock `name`.
    pub fn lock(namespace: &str, name: &str) -> Self {
        Self::new(namespace, "lock", name)
    }

    /// Keys of the rate limit `name`.
    pub fn rate(namespace: &str, name: &str) -> Self {
        Self::new(namespace, "rate", name)
    }

    /// Keys of the circuit breaker `name`.
    pub fn breaker(namespace: &str, name: &str) -> Self {
        Self::new(namespace, "breaker", name)
    }

    fn new(namespace: &str, kind: &str, name: &str) -> Self {
        Self {
            prefix: format!("{namespace}:{{{kind}.{name}}}:"),
        }
    }

    /// One key of the primitive, e.g. `lease`, `fence`, `bucket`, `state`.
    pub fn part(&self, part: &str) -> String {
        format!("{}{part}", self.prefix)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A channel for unit tests that need one: defaults only.
    pub(crate) const SPEC: ChannelSpec =
        ChannelSpec::new("shop", "orders", "shop.order", Transport::Stream);

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = ChannelKeys::new("prod", &SPEC, None);
        assert_eq!(keys.stream(), "prod:{shop.orders}:stream");
        assert_eq!(keys.idem("o-1"), "prod:{shop.orders}:idem:o-1");
        let keys = ChannelKeys::new("t1", &SPEC, Some("eu"));
        assert_eq!(keys.dlq(), "t1:{shop.orders#eu}:dlq");
        assert_eq!(keys.done("g", "k"), "t1:{shop.orders#eu}:done:g:k");
        assert_eq!(keys.pattern(), "t1:{shop.orders#eu}:*");
        assert_eq!(keys.processing("c1"), "t1:{shop.orders#eu}:processing:c1");
        assert_eq!(
            NamedKeys::lock("prod", "nightly").part("lease"),
            "prod:{lock.nightly}:lease"
        );
        assert_eq!(
            NamedKeys::rate("prod", "crm").part("bucket"),
            "prod:{rate.crm}:bucket"
        );
    }
}
