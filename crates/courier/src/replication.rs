//! Replicated durability: a channel whose `durability` is `replicated`
//! sends `WAIT <replicas> <timeout>` right after each write, in the same
//! pipeline. `WAIT` counts the replicas that acknowledged every earlier
//! write of its connection; on a cluster the pipeline goes to the
//! partition's primary, so it waits for that primary's replicas. `WAIT`
//! holds the connection it is sent on until the replicas answer or the
//! timeout passes, so a shard without a live replica slows every command
//! sharing that connection by up to the timeout per publish.
//!
//! Only publishes wait. Settlements (acknowledgement and done mark) do not:
//! a failover right after a settlement may deliver its message again, and
//! its handler runs again (at-least-once); a follow-up publish with the
//! same derived key is then refused as a duplicate.
//!
//! What it guarantees: a publish acknowledged to the caller is in the
//! memory of the primary and of `replicas` replicas, so a failover that
//! promotes one of them keeps it. What it does not: `WAIT` does not make a
//! write durable on disk (that is `appendfsync`), a failover may promote a
//! replica that had not confirmed (with more replicas than required),
//! and a write that timed out waiting is still on the primary: the publish
//! fails as transient, and its retry with the same key does not duplicate it.

use redis::{FromRedisValue, Pipeline, Value};

use crate::error::Error;
use crate::spec::ChannelSpec;
use crate::time::millis;
use crate::Durability;

/// Appends a `WAIT` for `durability`'s replicas, if it asks for any.
pub(crate) fn wait(pipe: &mut Pipeline, durability: Durability) {
    if let Durability::Replicated { replicas, timeout } = durability {
        pipe.cmd("WAIT").arg(replicas).arg(millis(timeout));
    }
}

/// The replies of a publish pipeline built with [`wait`] after each script
/// call, or [`Error::NotReplicated`] for the first partition whose write
/// too few replicas confirmed.
pub(crate) fn confirmed<'a, T: FromRedisValue>(
    values: Vec<Value>,
    spec: &ChannelSpec,
    mut partitions: impl Iterator<Item = Option<&'a str>>,
) -> Result<Vec<T>, Error> {
    let parse = |value: Value| T::from_redis_value(value).map_err(redis::RedisError::from);
    let Durability::Replicated { replicas, timeout } = spec.durability else {
        return Ok(values.into_iter().map(parse).collect::<Result<_, _>>()?);
    };
    if !values.len().is_multiple_of(2) {
        return Err(Error::UnexpectedReply {
            script: "publish",
            reply: format!("{values:?}"),
        });
    }
    let mut replies = Vec::with_capacity(values.len() / 2);
    let mut values = values.into_iter();
    while let (Some(reply), Some(count)) = (values.next(), values.next()) {
        let confirmed = u64::from_redis_value(count).map_err(redis::RedisError::from)?;
        let partition = partitions.next().flatten();
        if confirmed < u64::from(replicas) {
            return Err(Error::NotReplicated {
                channel: match partition {
                    Some(p) => format!("{}#{p}", spec.qualified_name()),
                    None => spec.qualified_name(),
                },
                confirmed,
                replicas,
                timeout,
            });
        }
        replies.push(parse(reply)?);
    }
    Ok(replies)
}
