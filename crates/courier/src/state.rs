//! A channel's state: how many messages wait, are held, are late, delayed
//! or dead, and who consumes them. The one place that reads it; the
//! consumer's gauges, `courier status` and the demo's progress bars all
//! come here.
//!
//! [`Client::channel_state`] returns a [`ChannelState`]: one
//! [`PartitionState`] per partition and their sum. What each figure means
//! depends on the transport:
//!
//! | figure | stream | list | priority | pubsub |
//! |---|---|---|---|---|
//! | `waiting` | entries not yet delivered to the group (its lag); with no group given, the slowest group's; with no group at all, the stream's length | length of the queue | size of the queue | – |
//! | `held` | the group's pending entries (every group's, with no group given) | what every consumer's processing list holds | same as list | – |
//! | `lag` | the group's lag (the slowest group's with no group given), see below | – | – | – |
//! | `oldest` | age of the first undelivered entry, from its entry id (a retry is a new entry) | age of the next message, from its envelope's `created_at` | same, for the next message in priority order (not necessarily the oldest) | – |
//! | `delayed` | retries and scheduled messages waiting for their time | same | same | same |
//! | `dead` | dead letters | same | same | same |
//! | `consumers` | consumers of the group (of every group) with a live heartbeat | consumers with a live heartbeat | same as list | subscribers |
//! | `stored` | entries kept in the stream, handled ones included, until trimmed | = `waiting` | = `waiting` | 0 |
//! | `sla_breaches` | – | – | breaches found so far | – |
//! | `lost_by_trim` | pending entries trimmed before any consumer handled them | – | – | – |
//! | `memory_bytes` | what the queue key takes (`MEMORY USAGE`, sampled) | same | same | – |
//!
//! Lag comes from `XINFO GROUPS` (Redis 7.0+). Redis reports it as nil
//! when it cannot know it: before 7.0, or when entries were deleted
//! (`XDEL`, a replay) after the group's last delivered entry. Then it is
//! estimated from `XINFO STREAM`: 0 when the group has been delivered the
//! stream's last entry, else the entries added since the group's read
//! counter, at most the stream's length; that is an upper bound.
//!
//! Cost: a few round trips, each one pipeline over every partition (on a
//! cluster the client splits it per slot): lengths and counters (`XLEN`,
//! `LLEN`, `ZCARD`, `GET`, `MEMORY USAGE`, `SMEMBERS`, `EXISTS`); then
//! `XINFO GROUPS` / `XINFO STREAM` and one `LLEN` and `EXISTS` per list
//! consumer; then `XINFO CONSUMERS` per group and an `EXISTS` per stream
//! consumer. At most one message per partition is read (the next one, for
//! its age); message contents are never scanned. Every read is O(1) or
//! O(consumers), except `MEMORY USAGE`, which samples a few elements. The
//! pause and the dependency breaker cost one script call each, and only
//! [`Client::channel_state`] reads them.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use redis::streams::{StreamInfoConsumersReply, StreamInfoGroup, StreamInfoGroupsReply};
use redis::{FromRedisValue, Value};

use crate::breaker::{Breaker, BreakerConfig, BreakerState};
use crate::client::Client;
use crate::error::Error;
use crate::keys::ChannelKeys;
use crate::partition;
use crate::spec::ChannelSpec;
use courier_schema::Transport;

/// A channel's state: each partition's figures and their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelState {
    /// `<domain>.<channel>`.
    pub channel: String,
    /// The channel's transport, which says what each figure means.
    pub transport: Transport,
    /// The stream group the figures are for; `None`: every group.
    pub group: Option<String>,
    /// One per partition, in [`partition::all`] order (one, with no
    /// partition, on an unpartitioned channel).
    pub partitions: Vec<PartitionState>,
    /// The sum over partitions (`oldest`: the oldest of any partition).
    pub total: Figures,
    /// Paused by hand (`courier pause`): consumers take nothing.
    pub paused: bool,
    /// The state of the channel's dependency breaker, if it declares one.
    pub dependency: Option<BreakerState>,
}

/// One partition's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionState {
    /// The partition, if the channel is partitioned.
    pub partition: Option<String>,
    /// What it holds.
    pub figures: Figures,
}

/// What a channel partition (or a whole channel) holds; the module doc
/// says what each figure means per transport. `None`: the figure has no
/// meaning on this transport.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Messages not yet delivered to a consumer.
    pub waiting: Option<u64>,
    /// Messages delivered and not yet settled.
    pub held: Option<u64>,
    /// Stream entries not yet delivered to the group.
    pub lag: Option<u64>,
    /// Age of the oldest message waiting.
    pub oldest: Option<Duration>,
    /// Retries and scheduled messages waiting for their time.
    pub delayed: u64,
    /// Dead letters.
    pub dead: u64,
    /// Live consumers (pubsub: subscribers).
    pub consumers: u64,
    /// Entries kept in the queue key.
    pub stored: u64,
    /// SLA breaches found so far (priority channels).
    pub sla_breaches: Option<u64>,
    /// Pending entries trimmed away before any consumer handled them
    /// (streams).
    pub lost_by_trim: Option<u64>,
    /// Bytes the queue key takes in Redis.
    pub memory_bytes: Option<u64>,
}

impl Figures {
    /// Waiting plus held: everything not yet handled.
    pub fn backlog(&self) -> u64 {
        self.waiting.unwrap_or(0) + self.held.unwrap_or(0)
    }

    /// The sum of several partitions' figures.
    fn sum<'a>(all: impl IntoIterator<Item = &'a Figures>) -> Figures {
        fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            }
        }
        all.into_iter().fold(Figures::default(), |t, f| Figures {
            waiting: add(t.waiting, f.waiting),
            held: add(t.held, f.held),
            lag: add(t.lag, f.lag),
            oldest: t.oldest.max(f.oldest),
            delayed: t.delayed + f.delayed,
            dead: t.dead + f.dead,
            consumers: t.consumers + f.consumers,
            stored: t.stored + f.stored,
            sla_breaches: add(t.sla_breaches, f.sla_breaches),
            lost_by_trim: add(t.lost_by_trim, f.lost_by_trim),
            memory_bytes: add(t.memory_bytes, f.memory_bytes),
        })
    }
}

impl Client {
    /// The state of `spec`'s channel, for stream group `group` (`None`:
    /// every group; ignored on other transports). What each figure means,
    /// and what reading it costs, is in [`crate::state`].
    pub async fn channel_state(
        &self,
        spec: &ChannelSpec,
        group: Option<&str>,
    ) -> Result<ChannelState, Error> {
        let keys: Vec<ChannelKeys> = partition::all(spec)
            .iter()
            .map(|p| self.keys(spec, p.as_deref()))
            .collect();
        let partitions = read(self, spec, group, &keys).await?;
        // A user without the right to run the breaker script still gets
        // the figures: a breaker that cannot be read counts as closed.
        let pause = Breaker::channel(self, spec, BreakerConfig::default());
        let paused = match pause {
            Ok(pause) => matches!(pause.state().await, Ok(BreakerState::Paused)),
            Err(_) => false,
        };
        let dependency = match &spec.dependency {
            None => None,
            Some(dependency) => {
                match Breaker::new(self, &dependency.name, BreakerConfig::default()) {
                    Ok(breaker) => breaker.state().await.ok(),
                    Err(_) => None,
                }
            }
        };
        Ok(ChannelState {
            channel: spec.qualified_name(),
            transport: spec.transport,
            group: group.map(str::to_string),
            total: Figures::sum(partitions.iter().map(|p| &p.figures)),
            partitions,
            paused,
            dependency,
        })
    }
}

impl Client {
    /// Which of the idempotency `keys` consumer group `group` has handled
    /// on partition `partition` of `spec`'s channel: those with its done
    /// mark, the mark a consumer writes when a handler succeeds (a message
    /// retried, dead-lettered or still held has none). One `MGET`: the
    /// marks share the partition's hash slot.
    pub async fn handled(
        &self,
        spec: &ChannelSpec,
        partition: Option<&str>,
        group: &str,
        keys: &[&str],
    ) -> Result<Vec<bool>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let channel = self.keys(spec, partition);
        let marks: Vec<String> = keys.iter().map(|key| channel.done(group, key)).collect();
        let found: Vec<Option<Vec<u8>>> = self.query(redis::cmd("MGET").arg(&marks)).await?;
        Ok(found.iter().map(Option::is_some).collect())
    }
}

/// The figures of the partitions `keys` of `spec`'s channel, for stream
/// group `group` (`None`: every group). The consumer reads its own
/// partitions through this for its gauges.
pub(crate) async fn read(
    client: &Client,
    spec: &ChannelSpec,
    group: Option<&str>,
    keys: &[ChannelKeys],
) -> Result<Vec<PartitionState>, Error> {
    let transport = spec.transport;
    let mut figures: Vec<Figures> = vec![Figures::default(); keys.len()];

    // Round 1: lengths and counters.
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("ZCARD").arg(k.delayed());
        pipe.cmd("XLEN").arg(k.dlq());
        match transport {
            Transport::Stream => {
                let stream = k.stream();
                pipe.cmd("EXISTS").arg(&stream);
                pipe.cmd("XLEN").arg(&stream);
                pipe.cmd("GET").arg(k.lost_by_trim());
                pipe.cmd("MEMORY").arg("USAGE").arg(&stream);
            }
            Transport::List | Transport::Priority => {
                let queue = k.queue();
                if transport == Transport::List {
                    pipe.cmd("LLEN").arg(&queue);
                    // The next message is the list's tail.
                    pipe.cmd("LRANGE").arg(&queue).arg(-1).arg(-1);
                } else {
                    pipe.cmd("ZCARD").arg(&queue);
                    pipe.cmd("ZRANGE").arg(&queue).arg(0).arg(0);
                }
                pipe.cmd("SMEMBERS").arg(k.consumers());
                pipe.cmd("GET").arg(k.sla_breaches());
                pipe.cmd("MEMORY").arg("USAGE").arg(&queue);
            }
            Transport::Pubsub => {}
        }
    }
    let mut replies = client.pipeline::<Vec<Value>>(&pipe).await?.into_iter();
    let mut next = move || replies.next().unwrap_or(Value::Nil);
    let mut streams = vec![false; keys.len()];
    let mut members: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
    for (i, f) in figures.iter_mut().enumerate() {
        f.delayed = parse::<Option<u64>>(next())?.unwrap_or(0);
        f.dead = parse::<Option<u64>>(next())?.unwrap_or(0);
        match transport {
            Transport::Stream => {
                streams[i] = parse(next())?;
                f.stored = parse(next())?;
                f.lost_by_trim = Some(parse::<Option<u64>>(next())?.unwrap_or(0));
                f.memory_bytes = parse(next())?;
            }
            Transport::List | Transport::Priority => {
                f.stored = parse(next())?;
                f.waiting = Some(f.stored);
                let head: Vec<String> = parse(next())?;
                f.oldest = head.first().and_then(|record| age_of_record(record));
                members[i] = parse(next())?;
                let breaches: Option<u64> = parse(next())?;
                f.sla_breaches =
                    (transport == Transport::Priority).then_some(breaches.unwrap_or(0));
                f.memory_bytes = parse(next())?;
            }
            Transport::Pubsub => {}
        }
    }

    match transport {
        Transport::Stream => read_streams(client, group, keys, &streams, &mut figures).await?,
        Transport::List | Transport::Priority => {
            read_held(client, keys, &members, &mut figures).await?;
        }
        Transport::Pubsub => {
            // Not in a pipeline: on a cluster `PUBSUB NUMSUB` goes to every
            // node, each counting its own subscribers.
            for (k, f) in keys.iter().zip(&mut figures) {
                let reply: Value = client
                    .query(redis::cmd("PUBSUB").arg("NUMSUB").arg(k.inbox(transport)))
                    .await?;
                f.consumers = subscribers(reply);
            }
        }
    }
    Ok(keys
        .iter()
        .zip(figures)
        .map(|(k, figures)| PartitionState {
            partition: k.partition().map(str::to_string),
            figures,
        })
        .collect())
}

/// List and priority channels: what each consumer holds, and which
/// consumers live.
async fn read_held(
    client: &Client,
    keys: &[ChannelKeys],
    members: &[Vec<String>],
    figures: &mut [Figures],
) -> Result<(), Error> {
    let mut pipe = redis::pipe();
    for (k, names) in keys.iter().zip(members) {
        for name in names {
            pipe.cmd("LLEN").arg(k.processing(name));
            pipe.cmd("EXISTS").arg(k.alive(name));
        }
    }
    let replies: Vec<Value> = if pipe.is_empty() {
        Vec::new()
    } else {
        client.pipeline(&pipe).await?
    };
    let mut replies = replies.into_iter();
    for (f, names) in figures.iter_mut().zip(members) {
        let mut held = 0;
        for _ in names {
            held += parse::<u64>(replies.next().unwrap_or(Value::Nil))?;
            f.consumers += u64::from(parse::<bool>(replies.next().unwrap_or(Value::Nil))?);
        }
        f.held = Some(held);
    }
    Ok(())
}

/// One stream partition between the rounds of [`read_streams`].
#[derive(Debug, Default)]
struct StreamRead {
    /// The groups the figures are for.
    groups: Vec<StreamInfoGroup>,
    /// Where the oldest undelivered entry is searched from (`XRANGE`).
    after: String,
}

/// Stream channels: the groups' lag, pending entries and live consumers,
/// and the first undelivered entry's age.
async fn read_streams(
    client: &Client,
    group: Option<&str>,
    keys: &[ChannelKeys],
    exists: &[bool],
    figures: &mut [Figures],
) -> Result<(), Error> {
    // Round 2: the groups, and the stream's counters for the lag fallback.
    let mut pipe = redis::pipe();
    for (k, _) in keys.iter().zip(exists).filter(|(_, e)| **e) {
        pipe.cmd("XINFO").arg("GROUPS").arg(k.stream());
        pipe.cmd("XINFO").arg("STREAM").arg(k.stream());
    }
    let replies: Vec<Value> = if pipe.is_empty() {
        Vec::new()
    } else {
        client.pipeline(&pipe).await?
    };
    let mut replies = replies.into_iter();
    let mut reads: Vec<StreamRead> = Vec::with_capacity(keys.len());
    for (f, exists) in figures.iter_mut().zip(exists) {
        let (all, info) = if *exists {
            let all: StreamInfoGroupsReply = parse(replies.next().unwrap_or(Value::Nil))?;
            let info: HashMap<String, Value> = parse(replies.next().unwrap_or(Value::Nil))?;
            (all.groups, info)
        } else {
            (Vec::new(), HashMap::new())
        };
        let mut groups: Vec<StreamInfoGroup> = match group {
            Some(name) => all.into_iter().filter(|g| g.name == name).collect(),
            None => all,
        };
        for g in &mut groups {
            g.lag = Some(lag(g, &info, f.stored) as usize);
        }
        f.held = Some(groups.iter().map(|g| g.pending as u64).sum());
        // The group that is furthest behind decides waiting, lag and age.
        let slowest = groups.iter().max_by_key(|g| (g.lag, g.pending));
        let after = match slowest {
            Some(g) => {
                f.lag = g.lag.map(|l| l as u64);
                f.waiting = f.lag;
                format!("({}", g.last_delivered_id)
            }
            None => {
                // The group, when named, is created at the stream's start:
                // everything stored waits for it.
                f.lag = group.map(|_| f.stored);
                f.waiting = Some(f.stored);
                "-".to_string()
            }
        };
        reads.push(StreamRead { groups, after });
    }

    // Round 3: the first undelivered entry, and each group's consumers.
    let mut pipe = redis::pipe();
    for ((k, read), exists) in keys.iter().zip(&reads).zip(exists) {
        if !exists {
            continue;
        }
        let stream = k.stream();
        pipe.cmd("XRANGE")
            .arg(&stream)
            .arg(&read.after)
            .arg("+")
            .arg("COUNT")
            .arg(1);
        for g in &read.groups {
            pipe.cmd("XINFO").arg("CONSUMERS").arg(&stream).arg(&g.name);
        }
    }
    let replies: Vec<Value> = if pipe.is_empty() {
        Vec::new()
    } else {
        client.pipeline(&pipe).await?
    };
    let mut replies = replies.into_iter();
    let mut names: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
    for (((f, read), exists), names) in figures.iter_mut().zip(&reads).zip(exists).zip(&mut names) {
        if !exists {
            continue;
        }
        let first: Vec<(String, Value)> = parse(replies.next().unwrap_or(Value::Nil))?;
        f.oldest = first.first().and_then(|(id, _)| age_of_id(id));
        for _ in &read.groups {
            let consumers: StreamInfoConsumersReply = parse(replies.next().unwrap_or(Value::Nil))?;
            names.extend(consumers.consumers.into_iter().map(|c| c.name));
        }
    }

    // Round 4: which consumers beat. A consumer in two groups is counted
    // in each, as it consumes for both.
    let mut pipe = redis::pipe();
    for (k, names) in keys.iter().zip(&names) {
        for name in names {
            pipe.cmd("EXISTS").arg(k.alive(name));
        }
    }
    let replies: Vec<Value> = if pipe.is_empty() {
        Vec::new()
    } else {
        client.pipeline(&pipe).await?
    };
    let mut replies = replies.into_iter();
    for (f, names) in figures.iter_mut().zip(&names) {
        for _ in names {
            f.consumers += u64::from(parse::<bool>(replies.next().unwrap_or(Value::Nil))?);
        }
    }
    Ok(())
}

/// A group's lag: as Redis reports it, or (when Redis reports nil) from
/// the stream's counters; see the module doc.
fn lag(group: &StreamInfoGroup, stream: &HashMap<String, Value>, length: u64) -> u64 {
    if let Some(lag) = group.lag {
        return lag as u64;
    }
    let field = |name: &str| stream.get(name).cloned().unwrap_or(Value::Nil);
    let last_generated: Option<String> = parse(field("last-generated-id")).ok();
    let delivered = stream_id(&group.last_delivered_id);
    if let (Some(last), Some(delivered)) =
        (last_generated.as_deref().and_then(stream_id), delivered)
    {
        if delivered >= last {
            return 0;
        }
    }
    let added: Option<u64> = parse(field("entries-added")).ok().flatten();
    match (added, group.entries_read) {
        (Some(added), Some(read)) => added.saturating_sub(read as u64).min(length),
        _ => length,
    }
}

/// `<ms>-<seq>` as a pair that orders like the ids.
fn stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Age of a stream entry, from the milliseconds of its id.
fn age_of_id(id: &str) -> Option<Duration> {
    let (ms, _) = stream_id(id)?;
    let now = Utc::now().timestamp_millis().max(0) as u64;
    Some(Duration::from_millis(now.saturating_sub(ms)))
}

/// Age of a queued record, from its envelope's `created_at`.
fn age_of_record(record: &str) -> Option<Duration> {
    let envelope: serde_json::Value =
        serde_json::from_str(&crate::envelope::parse_record(record).envelope).ok()?;
    let created = envelope.get("created_at")?.as_str()?;
    let created = chrono::DateTime::parse_from_rfc3339(created).ok()?;
    (Utc::now() - created.with_timezone(&Utc))
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

/// Subscribers in a `PUBSUB NUMSUB` reply of one channel; on a cluster,
/// where each node counts its own, the sum over the nodes.
fn subscribers(reply: Value) -> u64 {
    match reply {
        Value::Map(nodes) => nodes.into_iter().map(|(_, n)| subscribers(n)).sum(),
        other => parse::<Vec<(String, u64)>>(other)
            .ok()
            .and_then(|counts| counts.first().map(|(_, n)| *n))
            .unwrap_or(0),
    }
}

fn parse<T: FromRedisValue>(value: Value) -> Result<T, Error> {
    Ok(T::from_redis_value(value).map_err(redis::RedisError::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(lag: Option<usize>, read: Option<usize>, delivered: &str) -> StreamInfoGroup {
        StreamInfoGroup {
            name: "g".into(),
            last_delivered_id: delivered.into(),
            entries_read: read,
            lag,
            ..StreamInfoGroup::default()
        }
    }

    fn stream(last: &str, added: u64) -> HashMap<String, Value> {
        HashMap::from([
            (
                "last-generated-id".to_string(),
                Value::BulkString(last.as_bytes().to_vec()),
            ),
            ("entries-added".to_string(), Value::Int(added as i64)),
        ])
    }

    #[test]
    fn lag_falls_back_when_redis_reports_nil() {
        let check = |g: StreamInfoGroup, s: HashMap<String, Value>, length, expected| {
            assert_eq!(lag(&g, &s, length), expected, "{g:?}");
        };
        // As Redis reports it.
        check(group(Some(4), Some(1), "1-0"), stream("9-0", 5), 5, 4);
        // Delivered up to the last entry: nothing waits.
        check(group(None, None, "9-0"), stream("9-0", 5), 3, 0);
        // Added since the read counter, at most the length.
        check(group(None, Some(1), "2-0"), stream("9-0", 5), 3, 3);
        check(group(None, Some(3), "4-0"), stream("9-0", 5), 3, 2);
        // No read counter: everything stored.
        check(group(None, None, "2-0"), stream("9-0", 5), 3, 3);
    }

    #[test]
    fn sums_keep_meaningless_figures_out() {
        let a = Figures {
            waiting: Some(2),
            held: Some(1),
            oldest: Some(Duration::from_secs(3)),
            delayed: 1,
            ..Figures::default()
        };
        let b = Figures {
            waiting: Some(5),
            held: Some(0),
            oldest: Some(Duration::from_secs(9)),
            dead: 2,
            ..Figures::default()
        };
        let total = Figures::sum([&a, &b]);
        assert_eq!(total.waiting, Some(7));
        assert_eq!(total.held, Some(1));
        assert_eq!(total.lag, None);
        assert_eq!(total.oldest, Some(Duration::from_secs(9)));
        assert_eq!((total.delayed, total.dead), (1, 2));
        assert_eq!(total.backlog(), 8);
    }
}
