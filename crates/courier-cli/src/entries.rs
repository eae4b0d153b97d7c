//! What a channel partition's queue holds, read as the bytes Redis keeps,
//! for `courier peek` and `courier export`.
//!
//! A queue may hold what no courier producer wrote: bytes that are not
//! UTF-8, text that is not JSON, a stream entry without the envelope field.
//! Those entries are usually what an incident is about, so an operator tool
//! must show them rather than fail on the first one or skip them. Entries
//! are therefore read as bytes, never as `String` (which makes the whole
//! reply fail on one bad entry), and each becomes either a message (its
//! envelope as JSON) or a [`Flagged`] entry shown as found, escaped by
//! [`escape`].

use std::fmt::Write as _;

use anyhow::{bail, Result};
use courier::{ChannelSpec, Client, Transport};
use serde::Serialize;
use serde_json::Value;

/// The stream field that holds a message's envelope, as `publish.lua`
/// writes it (beside `h`, the attempt history once there is one).
const ENVELOPE_FIELD: &[u8] = b"m";

/// How many stream entries one `XRANGE` of a full read asks for, so that a
/// long stream is read in pages rather than in one reply.
const PAGE: usize = 500;

/// Which entries of a queue to read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Range {
    /// The `n` newest stream entries or list elements, or the `n` first to
    /// be taken from a priority queue.
    Head(usize),
    /// Every entry: streams and lists oldest first (the order consumers
    /// take them in), priority queues from their head.
    All,
    /// Every message waiting in the delayed set (retries and scheduled
    /// messages), soonest due first.
    Delayed,
    /// The `n` soonest due of the delayed set.
    DelayedHead(usize),
}

/// One entry of a queue.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A message: its envelope as JSON.
    Message(Value),
    /// Anything else, as found.
    Flagged(Flagged),
}

/// Why an entry is not shown as a message; the names are part of the
/// output of `peek` and `export`, so they are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Flag {
    /// Its bytes are not UTF-8 text.
    NotUtf8,
    /// A stream entry without the envelope field `m`.
    NoEnvelope,
    /// UTF-8 text that is not JSON.
    NotJson,
}

impl Flag {
    /// The flag's name, as `"flag"` holds it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Flag::NotUtf8 => "not_utf8",
            Flag::NoEnvelope => "no_envelope",
            Flag::NotJson => "not_json",
        }
    }

    /// What it means, for the marker line of text output.
    fn meaning(self) -> &'static str {
        match self {
            Flag::NotUtf8 => "not UTF-8 text (bytes that are not UTF-8 shown as \\xNN)",
            Flag::NoEnvelope => "a stream entry without the envelope field `m`",
            Flag::NotJson => "text that is not JSON",
        }
    }
}

/// Where an entry sits in a channel's queues.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Place {
    /// The partition whose queue holds it (none when unpartitioned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Its stream entry id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its position in the list or sorted set, 0 at the head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

/// An entry that is not a message, as found: what `peek` shows and
/// `export` writes for it.
#[derive(Debug, Serialize)]
pub(crate) struct Flagged {
    /// Why it is not a message.
    pub flag: Flag,
    /// Where it is.
    #[serde(flatten)]
    pub place: Place,
    /// The stored record (a stream entry's `m`, a list or priority element),
    /// escaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// A stream entry's fields as `[name, value]` pairs in stored order
    /// (names may repeat), escaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<(String, String)>>,
}

impl Flagged {
    /// The line that marks it in text output: flag, place, meaning.
    pub(crate) fn marker(&self) -> String {
        let mut line = format!("! {}: ", self.flag.as_str());
        match (&self.place.id, self.place.index) {
            (Some(id), _) => {
                let _ = write!(line, "stream entry {id}");
            }
            (None, Some(index)) => {
                let _ = write!(line, "element {index}");
            }
            (None, None) => line.push_str("entry"),
        }
        if let Some(partition) = &self.place.partition {
            let _ = write!(line, " of partition {partition}");
        }
        let _ = write!(line, ": {}", self.flag.meaning());
        line
    }
}

/// Reads `range` of the queue of `spec`'s `partition`, consuming nothing.
pub(crate) async fn read(
    client: &Client,
    spec: &ChannelSpec,
    partition: Option<&str>,
    range: Range,
) -> Result<Vec<Entry>> {
    let inbox = client.keys(spec, partition).inbox(spec.transport);
    let place = Place {
        partition: partition.map(str::to_string),
        ..Place::default()
    };
    if let Range::Delayed | Range::DelayedHead(_) = range {
        let stop = match range {
            Range::DelayedHead(n) => n.max(1) as i64 - 1,
            _ => -1,
        };
        let delayed = client.keys(spec, partition).delayed();
        let members: Vec<Vec<u8>> = client
            .query(redis::cmd("ZRANGE").arg(&delayed).arg(0).arg(stop))
            .await?;
        return Ok(members
            .into_iter()
            .enumerate()
            .map(|(index, member)| {
                let place = Place {
                    index: Some(index),
                    ..place.clone()
                };
                record(place, &member)
            })
            .collect());
    }
    let stop = match range {
        Range::Head(n) => n.max(1) as i64 - 1,
        Range::All | Range::Delayed | Range::DelayedHead(_) => -1,
    };
    let mut command = match spec.transport {
        Transport::Stream => {
            let entries = match range {
                Range::Head(n) => {
                    client
                        .query(
                            redis::cmd("XREVRANGE")
                                .arg(&inbox)
                                .arg("+")
                                .arg("-")
                                .arg("COUNT")
                                .arg(n.max(1)),
                        )
                        .await?
                }
                Range::All | Range::Delayed | Range::DelayedHead(_) => {
                    all_stream_entries(client, &inbox).await?
                }
            };
            return Ok(entries
                .into_iter()
                .map(|(id, fields)| {
                    let place = Place {
                        id: Some(id),
                        ..place.clone()
                    };
                    stream_entry(place, fields)
                })
                .collect());
        }
        Transport::List => redis::cmd("LRANGE"),
        Transport::Priority => redis::cmd("ZRANGE"),
        Transport::Pubsub => bail!(
            "{} is a pubsub channel: Redis keeps no broadcast to read",
            spec.qualified_name()
        ),
    };
    command.arg(&inbox).arg(0).arg(stop);
    let elements: Vec<Vec<u8>> = client.query(&command).await?;
    let mut read: Vec<Entry> = elements
        .into_iter()
        .enumerate()
        .map(|(index, element)| {
            let place = Place {
                index: Some(index),
                ..place.clone()
            };
            record(place, &element)
        })
        .collect();
    // A list is pushed at its head and taken from its tail: a whole read
    // is given oldest first, as a stream's is, so that an import (which
    // publishes in file order) keeps the order consumers take them in.
    if spec.transport == Transport::List && matches!(range, Range::All) {
        read.reverse();
    }
    Ok(read)
}

/// A stream entry: its id and its fields, as stored.
type StreamEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// Every entry of the stream `key`, oldest first, a page at a time.
async fn all_stream_entries(client: &Client, key: &str) -> Result<Vec<StreamEntry>> {
    let mut entries = Vec::new();
    let mut start = "-".to_string();
    loop {
        let page: Vec<StreamEntry> = client
            .query(
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg(&start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(PAGE),
            )
            .await?;
        let done = page.len() < PAGE;
        if let Some((id, _)) = page.last() {
            start = format!("({id}");
        }
        entries.extend(page);
        if done {
            return Ok(entries);
        }
    }
}

/// A stream entry as a message, or flagged when it has no envelope field.
fn stream_entry(place: Place, fields: Vec<(Vec<u8>, Vec<u8>)>) -> Entry {
    match fields.iter().find(|(name, _)| name == ENVELOPE_FIELD) {
        Some((_, envelope)) => record(place, envelope),
        None => Entry::Flagged(Flagged {
            flag: Flag::NoEnvelope,
            place,
            raw: None,
            fields: Some(
                fields
                    .iter()
                    .map(|(name, value)| (escape(name), escape(value)))
                    .collect(),
            ),
        }),
    }
}

/// A stored record (a stream entry's envelope field, or a list or priority
/// element with its optional history wrapper) as a message, or flagged
/// when it is not UTF-8 or not JSON.
fn record(place: Place, bytes: &[u8]) -> Entry {
    let flagged = |flag| {
        Entry::Flagged(Flagged {
            flag,
            place: place.clone(),
            raw: Some(escape(bytes)),
            fields: None,
        })
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return flagged(Flag::NotUtf8);
    };
    let envelope = courier::envelope::parse_record(text).envelope;
    match serde_json::from_str(&envelope) {
        Ok(envelope) => Entry::Message(envelope),
        Err(_) => flagged(Flag::NotJson),
    }
}

/// `bytes` as text from which exactly those bytes can be recovered, as
/// dead letters keep them.
pub(crate) use courier::unreadable::escape;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], expected: &str) {
        assert_eq!(escape(bytes), expected, "{bytes:?}");
    }

    #[test]
    fn escape_keeps_text_and_writes_other_bytes_in_hex() {
        check(b"", "");
        check(b"plain {\"a\": 1}", "plain {\"a\": 1}");
        check("caf\u{e9} \u{1f4de}".as_bytes(), "caf\u{e9} \u{1f4de}");
        check(b"\xff\xfe", "\\xff\\xfe");
        check(b"ok\xc3(", "ok\\xc3(");
        // A backslash is doubled, so `\x41` in the text is not the byte 0x41.
        check(b"a\\x41", "a\\\\x41");
        check(b"\\\xff", "\\\\\\xff");
    }

    fn flag_of(entry: &Entry) -> Option<Flag> {
        match entry {
            Entry::Message(_) => None,
            Entry::Flagged(flagged) => Some(flagged.flag),
        }
    }

    #[test]
    fn records_are_messages_or_flagged() {
        let check = |bytes: &[u8], expected: Option<Flag>| {
            assert_eq!(
                flag_of(&record(Place::default(), bytes)),
                expected,
                "{bytes:?}"
            );
        };
        check(br#"{"schema":"a.b","version":1}"#, None);
        check(br#"{"m":"{\"schema\":\"a.b\"}","h":"[]","r":1}"#, None);
        check(b"{\"schema\":\"a.b\xff\"}", Some(Flag::NotUtf8));
        check(b"hello", Some(Flag::NotJson));
        let fields = vec![(b"body".to_vec(), b"hi\xff".to_vec())];
        let Entry::Flagged(flagged) = stream_entry(Place::default(), fields) else {
            panic!("an entry without `m` is flagged");
        };
        assert_eq!(flagged.flag, Flag::NoEnvelope);
        assert_eq!(
            flagged.fields,
            Some(vec![("body".to_string(), "hi\\xff".to_string())])
        );
    }
}
