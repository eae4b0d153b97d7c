//! Dead-letter queues: what could not be handled, kept whole, for triage
//! and replay.
//!
//! Each channel partition has a dead-letter stream. An entry keeps the
//! original envelope (or the raw text when it was not a readable envelope),
//! the reason, the error text, the attempt history and timestamps.

use std::fmt;

use chrono::{DateTime, Utc};
use redis::streams::StreamRangeReply;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::Client;
use crate::envelope::{self, Attempt, Envelope};
use crate::error::Error;
use crate::keys::ChannelKeys;
use crate::partition;
use crate::scripts::{self, REPLAY};
use crate::spec::ChannelSpec;
use crate::time::millis;

/// How long a dead-letter stream lives after its last new entry.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// Approximate cap on entries per dead-letter stream.
pub const MAX_LEN: u64 = 100_000;

/// Why a message was dead-lettered: machine-readable, stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// It expired before it was handled.
    Expired,
    /// Its schema name is not the one this channel's consumer reads.
    SchemaMismatch,
    /// Its schema version is one the consumer was not generated for.
    VersionUnsupported,
    /// The envelope or the payload failed decoding or validation.
    InvalidPayload,
    /// The handler failed on every allowed attempt.
    MaxAttempts,
    /// The handler reported a failure that retrying cannot fix.
    Fatal,
    /// It was delivered more times than allowed without ever being
    /// acknowledged: consumers crash or hang on it.
    Poison,
}

impl DeadReason {
    /// The reason's name, as stored and as the CLI filters by it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Expired => "expired",
            DeadReason::SchemaMismatch => "schema_mismatch",
            DeadReason::VersionUnsupported => "version_unsupported",
            DeadReason::InvalidPayload => "invalid_payload",
            DeadReason::MaxAttempts => "max_attempts",
            DeadReason::Fatal => "fatal",
            DeadReason::Poison => "poison",
        }
    }
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dead-lettered message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Id for [`Dlq::get`], [`Dlq::replay`] and [`Dlq::purge`]:
    /// `<partition>/<entry>` on partitioned channels, `<entry>` otherwise.
    /// Assigned when read, not stored.
    #[serde(default, skip_serializing)]
    pub id: String,
    /// Why.
    pub reason: DeadReason,
    /// The error text.
    pub error: String,
    /// When it was dead-lettered (RFC 3339).
    pub dead_at: String,
    /// `<domain>.<channel>`.
    pub channel: String,
    /// The partition, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The consumer group and consumer that gave up on it.
    pub group: String,
    /// The consumer.
    pub consumer: String,
    /// Its id in the channel's stream.
    pub stream_id: String,
    /// The original envelope, when it was JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Value>,
    /// The original text, when it was not JSON; with [`Self::escaped`], an
    /// escaped copy of what was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Whether `raw` is escaped ([`crate::unreadable::escape`]): the
    /// message was not UTF-8 text, or a stream entry held no envelope
    /// field and `raw` is its fields as a JSON object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escaped: bool,
    /// Every failed attempt, oldest first.
    #[serde(default)]
    pub history: Vec<Attempt>,
}

impl DeadLetter {
    /// A dead letter for a message of `spec`'s channel: `raw` is the
    /// message text as received, kept as the envelope when it is JSON and
    /// as raw text otherwise; `by` is (group, consumer).
    pub(crate) fn new(
        spec: &ChannelSpec,
        partition: Option<&str>,
        by: (&str, &str),
        stream_id: String,
        raw: Option<&str>,
        (reason, error): (DeadReason, String),
        history: Vec<Attempt>,
    ) -> DeadLetter {
        let (envelope, raw) = match raw.map(serde_json::from_str::<Value>) {
            Some(Ok(value)) => (Some(value), None),
            Some(Err(_)) => (None, raw.map(str::to_string)),
            None => (None, None),
        };
        DeadLetter {
            id: String::new(),
            reason,
            error,
            dead_at: envelope::timestamp(Utc::now()),
            channel: spec.qualified_name(),
            partition: partition.map(str::to_string),
            group: by.0.to_string(),
            consumer: by.1.to_string(),
            stream_id,
            envelope,
            raw,
            escaped: false,
            history,
        }
    }

    /// Keeps what was stored in place of an envelope, escaped, so that a
    /// message without a readable envelope loses nothing.
    pub(crate) fn keep_unreadable(&mut self, content: &str) {
        self.envelope = None;
        self.raw = Some(content.to_owned());
        self.escaped = true;
    }

    /// The envelope's schema version, when readable.
    pub fn version(&self) -> Option<u32> {
        self.envelope
            .as_ref()?
            .get("version")?
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
    }

    /// When it was dead-lettered.
    pub fn dead_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.dead_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Which dead letters an operation applies to; empty matches all.
#[derive(Debug, Clone, Default)]
pub struct DlqFilter {
    /// Only this reason.
    pub reason: Option<DeadReason>,
    /// Only this schema version.
    pub version: Option<u32>,
    /// Dead-lettered at or after.
    pub since: Option<DateTime<Utc>>,
    /// Dead-lettered before.
    pub until: Option<DateTime<Utc>>,
    /// Error text contains this.
    pub text: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

impl DlqFilter {
    /// Whether `letter` passes the filter (the limit aside).
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let at = letter.dead_at();
        self.reason.is_none_or(|r| r == letter.reason)
            && self.version.is_none_or(|v| letter.version() == Some(v))
            && self
                .since
                .is_none_or(|since| at.is_some_and(|at| at >= since))
            && self
                .until
                .is_none_or(|until| at.is_some_and(|at| at < until))
            && self
                .text
                .as_deref()
                .is_none_or(|text| letter.error.contains(text))
    }
}

/// The dead-letter queue of one channel, across its partitions.
#[derive(Debug, Clone)]
pub struct Dlq {
    client: Client,
    spec: &'static ChannelSpec,
}

/// Entries read per `XRANGE` page.
const PAGE: usize = 500;

impl Dlq {
    pub(crate) fn new(client: &Client, spec: &'static ChannelSpec) -> Self {
        Self {
            client: client.clone(),
            spec,
        }
    }

    fn partitions(&self) -> Vec<ChannelKeys> {
        partition::all(self.spec)
            .iter()
            .map(|p| self.client.keys(self.spec, p.as_deref()))
            .collect()
    }

    /// Splits `<partition>/<entry>` into the partition's keys and the entry.
    fn locate(&self, id: &str) -> Result<(ChannelKeys, String), Error> {
        let not_found = || Error::DeadLetterNotFound {
            channel: self.spec.qualified_name(),
            id: id.to_string(),
        };
        let (partition, entry) = match id.split_once('/') {
            Some((partition, entry)) => (Some(partition), entry),
            None => (None, id),
        };
        let known = partition::all(self.spec);
        if !known.iter().any(|p| p.as_deref() == partition) {
            return Err(not_found());
        }
        Ok((self.client.keys(self.spec, partition), entry.to_string()))
    }

    /// How many dead letters the channel holds.
    pub async fn len(&self) -> Result<u64, Error> {
        let mut total = 0;
        for keys in self.partitions() {
            let len: u64 = self
                .client
                .query(redis::cmd("XLEN").arg(keys.dlq()))
                .await?;
            total += len;
        }
        Ok(total)
    }

    /// Whether the channel holds no dead letters.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }

    /// Dead letters matching `filter`, oldest first within a partition.
    pub async fn list(&self, filter: &DlqFilter) -> Result<Vec<DeadLetter>, Error> {
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut found = Vec::new();
        for keys in self.partitions() {
            let mut start = "-".to_string();
            loop {
                let page: StreamRangeReply = self
                    .client
                    .query(
                        redis::cmd("XRANGE")
                            .arg(keys.dlq())
                            .arg(&start)
                            .arg("+")
                            .arg("COUNT")
                            .arg(PAGE),
                    )
                    .await?;
                let count = page.ids.len();
                for entry in page.ids {
                    start = format!("({}", entry.id);
                    let Some(letter) = parse(&keys, &entry.id, entry.get::<String>("d")) else {
                        continue;
                    };
                    if filter.matches(&letter) {
                        found.push(letter);
                        if found.len() >= limit {
                            return Ok(found);
                        }
                    }
                }
                if count < PAGE {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// One dead letter by id.
    pub async fn get(&self, id: &str) -> Result<DeadLetter, Error> {
        let (keys, entry) = self.locate(id)?;
        let page: StreamRangeReply = self
            .client
            .query(redis::cmd("XRANGE").arg(keys.dlq()).arg(&entry).arg(&entry))
            .await?;
        page.ids
            .into_iter()
            .next()
            .and_then(|e| parse(&keys, &e.id, e.get::<String>("d")))
            .ok_or_else(|| Error::DeadLetterNotFound {
                channel: self.spec.qualified_name(),
                id: id.to_string(),
            })
    }

    /// Puts a dead letter back on its channel: a new message id, attempt 1,
    /// a fresh expiry, the idempotency key kept. Returns the new message id.
    pub async fn replay(&self, id: &str) -> Result<String, Error> {
        let letter = self.get(id).await?;
        let not_replayable = || Error::NotReplayable {
            channel: self.spec.qualified_name(),
            id: id.to_string(),
        };
        let mut envelope: Envelope = letter
            .envelope
            .clone()
            .and_then(|value| serde_json::from_value(value).ok())
            .ok_or_else(not_replayable)?;
        let now = Utc::now();
        envelope.id = envelope::new_id();
        envelope.attempt = 1;
        envelope.expires_at = envelope::timestamp(envelope::expiry(now, self.spec.ttl));
        let json = envelope.to_json().map_err(|_| not_replayable())?;
        let (keys, entry) = self.locate(id)?;
        let inbox = keys.inbox(self.spec.transport);
        let dlq = keys.dlq();
        let replayed: Option<String> = self
            .client
            .query(
                scripts::evalsha(&REPLAY, &[&dlq, &inbox])
                    .arg(&entry)
                    .arg(&json)
                    .arg(self.spec.retention.max_len.unwrap_or(0))
                    .arg(millis(self.spec.retention.max_age))
                    .arg(self.spec.transport.as_str())
                    .arg(envelope.priority.unwrap_or(0)),
            )
            .await?;
        match replayed {
            Some(_) => Ok(envelope.id),
            // Someone else replayed or purged it in between.
            None => Err(Error::DeadLetterNotFound {
                channel: self.spec.qualified_name(),
                id: id.to_string(),
            }),
        }
    }

    /// Replays every dead letter matching `filter`; returns how many.
    pub async fn replay_where(&self, filter: &DlqFilter) -> Result<usize, Error> {
        let mut replayed = 0;
        for letter in self.list(filter).await? {
            match self.replay(&letter.id).await {
                Ok(_) => replayed += 1,
                Err(Error::DeadLetterNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(replayed)
    }

    /// Deletes one dead letter.
    pub async fn purge(&self, id: &str) -> Result<(), Error> {
        let (keys, entry) = self.locate(id)?;
        let deleted: u64 = self
            .client
            .query(redis::cmd("XDEL").arg(keys.dlq()).arg(&entry))
            .await?;
        if deleted == 0 {
            return Err(Error::DeadLetterNotFound {
                channel: self.spec.qualified_name(),
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Deletes every dead letter matching `filter`; returns how many.
    pub async fn purge_where(&self, filter: &DlqFilter) -> Result<usize, Error> {
        let mut purged = 0;
        for letter in self.list(filter).await? {
            match self.purge(&letter.id).await {
                Ok(()) => purged += 1,
                Err(Error::DeadLetterNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(purged)
    }
}

/// A dead letter from its stored JSON; an entry that is not one (written
/// by hand) is skipped rather than failing the whole listing.
fn parse(keys: &ChannelKeys, entry: &str, json: Option<String>) -> Option<DeadLetter> {
    let mut letter: DeadLetter = serde_json::from_str(&json?).ok()?;
    letter.id = match keys.partition() {
        Some(partition) => format!("{partition}/{entry}"),
        None => entry.to_string(),
    };
    Some(letter)
}

impl Client {
    /// The dead-letter queue of a channel.
    pub fn dlq(&self, spec: &'static ChannelSpec) -> Dlq {
        Dlq::new(self, spec)
    }
}
