//! The connections courier talks to Redis through, to one server or to a
//! Redis Cluster, behind one [`Conn`] type: everything above this module
//! sends commands and pipelines without knowing which.
//!
//! On a cluster, a command goes to the master of its key's slot (the
//! `redis` crate follows `MOVED` and `ASK`, and refreshes the slot map after
//! a failover). Every multi-key script gets keys of one channel partition,
//! which share a hash tag and so a slot ([`crate::keys`]). A pipeline whose
//! commands touch several slots is split here into one pipeline per slot.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Arg, Cmd, Pipeline, RedisFuture, Value};

/// A connection: the shared one to a single server, a dedicated one to a
/// single server, or one to a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    /// Reconnects by itself; shared by every clone of a client.
    Managed(ConnectionManager),
    /// A dedicated connection, for blocking reads.
    Node(MultiplexedConnection),
    /// A cluster connection: one multiplexed connection per node.
    Cluster(ClusterConnection),
    /// No Redis at all: a [`crate::testing`] client, whose producers
    /// record instead of sending. Every command fails.
    Offline,
}

/// The error of every command on an offline client.
pub(crate) fn offline() -> redis::RedisError {
    (
        redis::ErrorKind::Client,
        "no Redis behind this client: a courier::testing client only records publishes",
    )
        .into()
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Offline => Box::pin(async { Err(offline()) }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Managed(c) => c.req_packed_commands(pipe, offset, count),
            Conn::Node(c) => c.req_packed_commands(pipe, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipe, offset, count),
            Conn::Offline => Box::pin(async { Err(offline()) }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Managed(c) => c.get_db(),
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Offline => 0,
        }
    }
}

/// Where a client's connections come from.
#[derive(Clone)]
pub(crate) enum Backend {
    /// One server.
    Node(redis::Client),
    /// A cluster.
    Cluster {
        /// The seed URLs, for dedicated connections.
        urls: Vec<String>,
        /// The CA to trust, for `rediss://` seeds.
        certificates: Option<redis::TlsCertificates>,
        /// One client per seed node, for Pub/Sub (any node hears every
        /// publish of the cluster).
        seeds: Vec<redis::Client>,
    },
    /// None: a [`crate::testing`] client.
    Offline,
}

/// A cluster client of the seed `urls`.
pub(crate) fn cluster_client(
    urls: &[String],
    certificates: Option<&redis::TlsCertificates>,
    response_timeout: Duration,
    connect_timeout: Duration,
) -> redis::RedisResult<ClusterClient> {
    let mut builder = ClusterClient::builder(urls.iter().map(String::as_str))
        .connection_timeout(connect_timeout)
        .response_timeout(response_timeout)
        // Enough retries, with backoff, to ride out a failover (a few
        // seconds); the caller's own budget then decides.
        .retries(8)
        .min_retry_wait(50)
        .max_retry_wait(1000);
    if let Some(certificates) = certificates {
        builder = builder.certs(certificates.clone());
    }
    builder.build()
}

/// A command's first key, if it has one: `EVALSHA`'s first key, the
/// argument after a container command's subcommand (`XINFO GROUPS <key>`),
/// else the first argument after the command name.
fn first_key(cmd: &Cmd) -> Option<Vec<u8>> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|arg| match arg {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect();
    let name = args.first()?;
    let key = if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL") {
        let count: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
        if count == 0 {
            return None;
        }
        args.get(3)?
    } else if name.eq_ignore_ascii_case(b"WAIT") {
        return None;
    } else if [&b"XINFO"[..], b"XGROUP", b"MEMORY", b"OBJECT"]
        .iter()
        .any(|container| name.eq_ignore_ascii_case(container))
    {
        // A container command: its subcommand, then the key.
        args.get(2)?
    } else {
        args.get(1)?
    };
    Some(key.to_vec())
}

fn slot_of(cmd: &Cmd) -> Option<Slot> {
    first_key(cmd).map(Slot::for_key)
}

/// After a pipeline got `MOVED` (the cluster client follows redirects of
/// single commands, not of replies inside a pipeline): one command on the
/// pipeline's first key, whose redirect makes the client refresh its slot
/// map, so that the caller's retry goes to the new owner.
pub(crate) async fn follow_redirect(conn: &mut Conn, pipe: &Pipeline) {
    if let Some(key) = pipe.cmd_iter().find_map(first_key) {
        let _: redis::RedisResult<Value> = redis::cmd("EXISTS").arg(key).query_async(conn).await;
    }
}

/// The commands of `pipe` grouped by slot, in order, when they touch more
/// than one slot; `None` when one pipeline can carry them all. A command
/// without a key (`WAIT`) stays with the command before it.
pub(crate) fn split_by_slot(pipe: &Pipeline) -> Option<Vec<(Pipeline, Vec<usize>)>> {
    let slots: Vec<Option<Slot>> = pipe.cmd_iter().map(slot_of).collect();
    let mut distinct = slots.iter().flatten();
    let first = distinct.next()?;
    if distinct.all(|s| s == first) {
        return None;
    }
    let mut groups: Vec<(Pipeline, Vec<usize>)> = Vec::new();
    let mut index: HashMap<Slot, usize> = HashMap::new();
    let mut current = 0;
    for (i, (cmd, slot)) in pipe.cmd_iter().zip(&slots).enumerate() {
        if let Some(slot) = slot {
            current = *index.entry(*slot).or_insert_with(|| {
                groups.push((redis::pipe(), Vec::new()));
                groups.len() - 1
            });
        } else if groups.is_empty() {
            groups.push((redis::pipe(), Vec::new()));
        }
        let (group, positions) = &mut groups[current];
        group.add_command(cmd.clone());
        positions.push(i);
    }
    Some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_needs_no_split() {
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS").arg("ns:{a}:done:x");
        pipe.cmd("EVALSHA")
            .arg("sha")
            .arg(2)
            .arg("ns:{a}:stream")
            .arg("ns:{a}:dlq");
        pipe.cmd("WAIT").arg(1).arg(100);
        assert!(split_by_slot(&pipe).is_none());
    }

    #[test]
    fn container_commands_go_by_their_key() {
        let mut pipe = redis::pipe();
        pipe.cmd("XINFO").arg("GROUPS").arg("ns:{a}:stream");
        pipe.cmd("MEMORY").arg("USAGE").arg("ns:{b}:stream");
        pipe.cmd("XLEN").arg("ns:{a}:stream");
        let groups = split_by_slot(&pipe).expect("two slots");
        let positions: Vec<&Vec<usize>> = groups.iter().map(|(_, p)| p).collect();
        assert_eq!(positions, vec![&vec![0, 2], &vec![1]]);
    }

    #[test]
    fn several_slots_split_in_order() {
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS").arg("ns:{a}:done:x");
        pipe.cmd("EXISTS").arg("ns:{b}:done:y");
        pipe.cmd("EVALSHA").arg("sha").arg(1).arg("ns:{a}:stream");
        pipe.cmd("WAIT").arg(1).arg(100);
        let groups = split_by_slot(&pipe).expect("two slots");
        let positions: Vec<&Vec<usize>> = groups.iter().map(|(_, p)| p).collect();
        assert_eq!(positions, vec![&vec![0, 2, 3], &vec![1]]);
        assert_eq!(groups[0].0.len(), 3);
    }
}
