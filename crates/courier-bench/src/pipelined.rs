//! The pipelined baseline: the fastest straightforward queue a person
//! would hand-write with the `redis` crate, as issue 15 shapes it.
//!
//! - Publish: `SET NX PX` on an idempotency key, then `XADD` of the key
//!   and the payload's JSON, pipelined [`PUBLISH_BATCH`] messages per round
//!   trip (or one message per round trip when latency is measured).
//! - Drain: [`READERS`] readers, each on a connection of its own, each
//!   `XREADGROUP COUNT` [`READ_COUNT`] blocking briefly, decoding the
//!   payloads for a handler, then one pipeline per read batch: one `XACK`
//!   of every id read and a done `SET` with a TTL per message.
//!
//! What it leaves out, and courier does not: a pipeline cannot make the
//! `XADD` depend on the `SET NX`'s answer, so a duplicate is appended all
//! the same (the key only records it); no envelope (version, times,
//! producer, trace context), no stream trim or expiry, no check of the done
//! mark before handling, no validation of the payload, no fencing of the
//! acknowledgement against a reader that lost the entry. It is the floor a
//! Redis stream queue can reach on this machine, not an equal.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use contact_center_contracts::InteractionV1;
use redis::aio::MultiplexedConnection;

/// Messages per pipeline when publishing in batches.
pub const PUBLISH_BATCH: usize = 500;
/// Readers draining the stream, each with its own connection.
pub const READERS: usize = 50;
/// Entries per `XREADGROUP`.
const READ_COUNT: usize = 100;
/// How long an `XREADGROUP` waits for entries, in milliseconds: short, so
/// that a reader notices soon that the work is done.
const BLOCK_MS: usize = 10;
/// The consumer group.
const GROUP: &str = "bench";

/// One pipelined queue: a stream and its idempotency and done keys, all
/// under one namespace.
#[derive(Debug, Clone)]
pub struct PipelinedQueue {
    /// Prefix of every key: `{namespace}:{pipelined}:`.
    prefix: String,
    /// The stream's key.
    stream: String,
    /// How long an idempotency key lives.
    dedup_window: Duration,
    /// How long a done mark lives.
    done_ttl: Duration,
}

impl PipelinedQueue {
    /// The queue of `namespace`, with the windows of the channel it stands
    /// beside.
    pub fn new(namespace: &str, dedup_window: Duration, done_ttl: Duration) -> PipelinedQueue {
        let prefix = format!("{namespace}:{{pipelined}}:");
        PipelinedQueue {
            stream: format!("{prefix}stream"),
            prefix,
            dedup_window,
            done_ttl,
        }
    }

    /// Creates the consumer group (and the stream), reading from the start.
    pub async fn create_group(&self, conn: &mut MultiplexedConnection) -> Result<()> {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// Adds one message's publish to `pipe`: `SET NX PX` on its key, then
    /// the `XADD`.
    pub fn publish(&self, pipe: &mut redis::Pipeline, message: &InteractionV1) -> Result<()> {
        let key = message.interaction_id.to_string();
        pipe.cmd("SET")
            .arg(format!("{}idem:{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(self.dedup_window.as_millis() as u64)
            .ignore()
            .cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("k")
            .arg(&key)
            .arg("p")
            .arg(serde_json::to_vec(message)?)
            .ignore();
        Ok(())
    }

    /// Publishes `messages`, [`PUBLISH_BATCH`] per round trip.
    pub async fn publish_all(
        &self,
        conn: &mut MultiplexedConnection,
        messages: &[InteractionV1],
    ) -> Result<()> {
        for batch in messages.chunks(PUBLISH_BATCH) {
            let mut pipe = redis::pipe();
            for message in batch {
                self.publish(&mut pipe, message)?;
            }
            let _: () = pipe.query_async(conn).await?;
        }
        Ok(())
    }

    /// Drains `n` messages with one reader per connection in `readers`,
    /// calling `handle` on each decoded payload. Returns when every reader
    /// stopped, with the instant the `n`th message was acknowledged (a
    /// reader may still be blocked for [`BLOCK_MS`] after it).
    pub async fn drain(
        &self,
        readers: Vec<MultiplexedConnection>,
        n: usize,
        handle: impl Fn(&InteractionV1) + Send + Sync + 'static,
    ) -> Result<Instant> {
        let handled = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(Mutex::new(None));
        let handle = Arc::new(handle);
        let tasks: Vec<_> = readers
            .into_iter()
            .enumerate()
            .map(|(i, mut conn)| {
                let (queue, handled, finished, handle) = (
                    self.clone(),
                    handled.clone(),
                    finished.clone(),
                    handle.clone(),
                );
                tokio::spawn(async move {
                    let consumer = format!("reader-{i}");
                    while handled.load(Ordering::Relaxed) < n {
                        let read = queue
                            .read_and_settle(&mut conn, &consumer, &*handle)
                            .await?;
                        if read > 0 && handled.fetch_add(read, Ordering::Relaxed) + read >= n {
                            finished.lock().unwrap().get_or_insert_with(Instant::now);
                        }
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let finished = *finished.lock().unwrap();
        finished.context("the readers stopped before every message was handled")
    }

    /// One read batch: `XREADGROUP`, the handler on each payload, then the
    /// `XACK` and done marks in one pipeline. Returns how many were read.
    async fn read_and_settle(
        &self,
        conn: &mut MultiplexedConnection,
        consumer: &str,
        handle: &(impl Fn(&InteractionV1) + ?Sized),
    ) -> Result<usize> {
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">")
            .query_async(conn)
            .await?;
        let entries: Vec<_> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        let mut settle = redis::pipe();
        settle.cmd("XACK").arg(&self.stream).arg(GROUP);
        for entry in &entries {
            settle.arg(&entry.id);
        }
        settle.ignore();
        let done_ttl = self.done_ttl.as_millis() as u64;
        for entry in &entries {
            let key: String = entry.get("k").context("an entry without a key")?;
            let payload: Vec<u8> = entry.get("p").context("an entry without a payload")?;
            handle(&serde_json::from_slice(&payload)?);
            settle
                .cmd("SET")
                .arg(format!("{}done:{GROUP}:{key}", self.prefix))
                .arg(1)
                .arg("PX")
                .arg(done_ttl)
                .ignore();
        }
        let _: () = settle.query_async(conn).await?;
        Ok(entries.len())
    }
}

/// [`READERS`] connections of their own, for [`PipelinedQueue::drain`].
pub async fn connect_readers(client: &redis::Client) -> Result<Vec<MultiplexedConnection>> {
    let mut readers = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        readers.push(client.get_multiplexed_async_connection().await?);
    }
    Ok(readers)
}
