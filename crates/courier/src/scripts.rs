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
/// Delayed set → stream: `lua/move_due.lua`.
pub(crate) static MOVE_DUE: LazyLock<Script> = script!("move_due");
/// Dead letter → stream: `lua/replay.lua`.
pub(crate) static REPLAY: LazyLock<Script> = script!("replay");

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
    for script in [&*PUBLISH, &*SETTLE, &*MOVE_DUE, &*REPLAY] {
        script.prepare_invoke().load_async(conn).await?;
    }
    Ok(())
}

/// Whether a Redis error is `NOSCRIPT`.
pub(crate) fn is_noscript(error: &redis::RedisError) -> bool {
    error.code() == Some("NOSCRIPT")
}
