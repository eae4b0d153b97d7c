//! Replicated durability: a channel whose `durability` is `replicated`
//! sends `WAIT <replicas> <timeout>` right after each write, in the same
//! pipeline. `WAIT` counts the replicas that acknowledged every earlier
//! write of its connection; on a cluster the pipeline goes to the
//! partition's primary, so it waits for that primary's replicas.
//!
//! What it guarantees: a publish acknowledged to the caller is in the
//! memory of the primary and of `replicas` replicas, so a failover that
//! promotes one of them keeps it. What it does not: `WAIT` does not make a
//! write durable on disk (that is `appendfsync`), a failover may promote a
//! replica that had not confirmed (with more replicas than required),
//! and a write that timed out waiting is still on the primary: the publish
//! fails as transient, and its retry with the same key does not duplicate it.

use redis::{FromRedisValue, Pipeline, Value};

use crate::client::millis;
use crate::error::Error;
use crate::spec::ChannelSpec;
use crate::Durability;

/// Appends a `WAIT` for `durability`'s replicas, if it asks for any.
pub(crate) fn wait(pipe: &mut Pipeline, durability: Durability) {
    if let Durability::Replicated { replicas, timeout } = durability {
        pipe.cmd("WAIT").arg(replicas).arg(millis(timeout));
    }
}

/// The replies of a pipeline built with [`wait`] after each of its writes,
/// each with the number of replicas that confirmed it (`None` when the
/// channel asks for none).
pub(crate) fn split<T: FromRedisValue>(
    values: Vec<Value>,
    durability: Durability,
    script: &'static str,
) -> Result<Vec<(T, Option<u64>)>, Error> {
    let parse = |value: Value| T::from_redis_value(value).map_err(redis::RedisError::from);
    match durability {
        Durability::Primary => values.into_iter().map(|v| Ok((parse(v)?, None))).collect(),
        Durability::Replicated { .. } => {
            if values.len() % 2 != 0 {
                return Err(Error::UnexpectedReply {
                    script,
                    reply: format!("{values:?}"),
                });
            }
            let mut replies = Vec::with_capacity(values.len() / 2);
            let mut values = values.into_iter();
            while let (Some(reply), Some(count)) = (values.next(), values.next()) {
                let count = u64::from_redis_value(count).map_err(redis::RedisError::from)?;
                replies.push((parse(reply)?, Some(count)));
            }
            Ok(replies)
        }
    }
}

/// The replies of a publish pipeline, or [`Error::NotReplicated`] for the
/// first partition whose write too few replicas confirmed.
pub(crate) fn confirmed<'a, T: FromRedisValue>(
    values: Vec<Value>,
    spec: &ChannelSpec,
    partitions: impl Iterator<Item = Option<&'a str>>,
) -> Result<Vec<T>, Error> {
    let mut replies = Vec::new();
    for ((reply, count), partition) in split(values, spec.durability, "publish")?
        .into_iter()
        .zip(partitions)
    {
        if let (Some(confirmed), Durability::Replicated { replicas, timeout }) =
            (count, spec.durability)
        {
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
        }
        replies.push(reply);
    }
    Ok(replies)
}
