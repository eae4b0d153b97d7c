//! The Lua scripts, one per atomic operation, called by SHA.
//!
//! Each script is `lua/common.lua` followed by `lua/<operation>.lua`, so the
//! shared rules (trim, depth, server time) are written once.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Cmd, Script};

use crate::error::Error;

macro_rules! script {
    ($name:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../lua/common.lua"),
                "\n",
                include_str!(concat!("../lua/", $name, ".lua"))
            ))
        })
    };
}

/// Dedup + backpressure + append: `lua/publish.lua`.
pub(crate) static PUBLISH: LazyLock<Script> = script!("publish");
/// Acknowledge + done / retry / dead-letter, fenced: `lua/settle.lua`.
pub(crate) static SETTLE: LazyLock<Script> = script!("settle");
/// Acknowledge + done mark + Redis-side effects, fenced, once per key:
/// `lua/settle_effects.lua`.
pub(crate) static SETTLE_EFFECTS: LazyLock<Script> = script!("settle_effects");
/// Delayed set → stream: `lua/move_due.lua`.
pub(crate) static MOVE_DUE: LazyLock<Script> = script!("move_due");
/// Dead letter → queue: `lua/replay.lua`.
pub(crate) static REPLAY: LazyLock<Script> = script!("replay");
/// Settle a message held in a processing list, fenced: `lua/settle_held.lua`.
pub(crate) static SETTLE_HELD: LazyLock<Script> = script!("settle_held");
/// Queue → processing list: `lua/take.lua`.
pub(crate) static TAKE: LazyLock<Script> = script!("take");
/// A dead consumer's processing list → queue: `lua/reap.lua`.
pub(crate) static REAP: LazyLock<Script> = script!("reap");
/// SLA breaches of a priority queue: `lua/sla.lua`.
pub(crate) static SLA: LazyLock<Script> = script!("sla");
/// Remove a stream group's gone consumers: `lua/forget_consumers.lua`.
pub(crate) static FORGET_CONSUMERS: LazyLock<Script> = script!("forget_consumers");
/// Consumer-group membership for partition assignment: `lua/members.lua`.
pub(crate) static MEMBERS: LazyLock<Script> = script!("members");
/// Take a lease lock with the next fencing token: `lua/lease_acquire.lua`.
pub(crate) static LEASE_ACQUIRE: LazyLock<Script> = script!("lease_acquire");
/// Extend a lease, holder only: `lua/lease_extend.lua`.
pub(crate) static LEASE_EXTEND: LazyLock<Script> = script!("lease_extend");
/// Release a lease, holder only: `lua/lease_release.lua`.
pub(crate) static LEASE_RELEASE: LazyLock<Script> = script!("lease_release");
/// Who holds a lease, and for how long: `lua/lease_holder.lua`.
pub(crate) static LEASE_HOLDER: LazyLock<Script> = script!("lease_holder");
/// Fencing-token check of a protected resource: `lua/fenced_write.lua`.
pub(crate) static FENCED_WRITE: LazyLock<Script> = script!("fenced_write");
/// One token from a shared rate limit (GCRA): `lua/rate_limit.lua`.
pub(crate) static RATE_LIMIT: LazyLock<Script> = script!("rate_limit");
/// Count one call's outcome and move a circuit breaker: `lua/breaker_record.lua`.
pub(crate) static BREAKER_RECORD: LazyLock<Script> = script!("breaker_record");
/// A breaker's state, and a half-open probe permit: `lua/breaker_check.lua`.
pub(crate) static BREAKER_CHECK: LazyLock<Script> = script!("breaker_check");
/// Pause a breaker by hand: `lua/breaker_pause.lua`.
pub(crate) static BREAKER_PAUSE: LazyLock<Script> = script!("breaker_pause");

/// An `EVALSHA` of `script` with `keys`; the caller appends the arguments.
/// Scripts run by SHA alone; a `NOSCRIPT` reply reloads them
/// ([`load_all`]) and the call is sent again.
pub(crate) fn evalsha(script: &Script, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

/// Loads every script into the server's cache, after a `NOSCRIPT` reply
/// (a restarted or failed-over Redis has an empty cache).
pub(crate) async fn load_all(conn: &mut impl ConnectionLike) -> Result<(), Error> {
    for script in [
        &*PUBLISH,
        &*SETTLE,
        &*SETTLE_EFFECTS,
        &*MOVE_DUE,
        &*REPLAY,
        &*SETTLE_HELD,
        &*TAKE,
        &*REAP,
        &*SLA,
        &*FORGET_CONSUMERS,
        &*MEMBERS,
        &*LEASE_ACQUIRE,
        &*LEASE_EXTEND,
        &*LEASE_RELEASE,
        &*LEASE_HOLDER,
        &*FENCED_WRITE,
        &*RATE_LIMIT,
        &*BREAKER_RECORD,
        &*BREAKER_CHECK,
        &*BREAKER_PAUSE,
    ] {
        script.prepare_invoke().load_async(conn).await?;
    }
    Ok(())
}

/// Whether a Redis error is `NOSCRIPT`.
pub(crate) fn is_noscript(error: &redis::RedisError) -> bool {
    error.code() == Some("NOSCRIPT")
}
