//! `courier acl`: one Redis ACL user per role in `channels.json`, allowed
//! exactly the commands its role runs and the keys of its channels.
//!
//! Redis checks the ACL of the commands a script runs, so a role's command
//! list covers what courier's scripts call on its behalf. Keys are limited
//! by hash-tag prefix: `<namespace>:{<domain>.<channel>}:*` and, for
//! partitions, `<namespace>:{<domain>.<channel>#*}:*`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use courier::Transport;

use crate::Context;

/// `courier acl` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `file` (an ACL file for `aclfile`) or `commands` (`ACL SETUSER` lines).
    #[arg(long, default_value = "file")]
    pub format: String,
    /// A role's password, `role=secret`; repeat per role. Roles without one
    /// get a placeholder that must be replaced before use.
    #[arg(long = "password", value_name = "ROLE=SECRET")]
    pub passwords: Vec<String>,
}

/// What a producer's publish script runs.
const PRODUCER: &[&str] = &[
    "get", "set", "exists", "xinfo", "xlen", "llen", "zcard", "xadd", "xtrim", "pexpire", "lpush",
    "zadd", "publish", "time",
];

/// What a consumer runs, directly and through its scripts (settling, with
/// a handler's effects too, taking, reaping, moving, breakers, leases,
/// rate limits, membership).
const CONSUMER: &[&str] = &[
    "blmove",
    "del",
    "exists",
    "get",
    "hget",
    "hincrby",
    "hmget",
    "hset",
    "incr",
    "incrby",
    "llen",
    "lmove",
    "lpush",
    "lrem",
    "pexpire",
    "pttl",
    "publish",
    "rpop",
    "rpush",
    "sadd",
    "set",
    "smembers",
    "srem",
    "subscribe",
    "time",
    "type",
    "unsubscribe",
    "xack",
    "xadd",
    "xclaim",
    "xdel",
    "xgroup",
    "xinfo",
    "xlen",
    "xpending",
    "xrange",
    "xreadgroup",
    "xtrim",
    "zadd",
    "zcard",
    "zpopmin",
    "zrange",
    "zrangebyscore",
    "zrem",
    "zremrangebyscore",
    "zscore",
];

/// Every client: connecting, scripts by SHA, the cluster topology.
const ALWAYS: &[&str] = &[
    "+@connection",
    "+evalsha",
    "+eval",
    "+script|load",
    // The cluster client's topology query; harmless on a single server.
    "+cluster|slots",
];

/// What one role may touch: key patterns, Pub/Sub channel patterns,
/// commands.
type Grants = (BTreeSet<String>, BTreeSet<String>, BTreeSet<&'static str>);

/// Runs `courier acl`.
pub fn run(ctx: &Context, args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    let commands = match args.format.as_str() {
        "file" => false,
        "commands" => true,
        other => bail!("unknown --format {other:?}; use file or commands"),
    };
    let mut passwords = BTreeMap::new();
    for pair in &args.passwords {
        let Some((role, secret)) = pair.split_once('=') else {
            bail!("--password takes ROLE=SECRET, got {pair:?}");
        };
        passwords.insert(role.to_string(), secret.to_string());
    }
    let ns = &ctx.cli.namespace;
    let mut roles: BTreeMap<String, Grants> = BTreeMap::new();
    for spec in ctx.channels()? {
        let tag = format!("{}.{}", spec.domain, spec.name);
        let keys = [format!("~{ns}:{{{tag}}}:*"), format!("~{ns}:{{{tag}#*}}:*")];
        let channel = format!("&{ns}:{{{tag}}}:broadcast");
        for (list, allowed) in [(&spec.producers, PRODUCER), (&spec.consumers, CONSUMER)] {
            for role in list.iter() {
                let entry = roles.entry(role.to_string()).or_default();
                entry.0.extend(keys.iter().cloned());
                if spec.transport == Transport::Pubsub {
                    entry.1.insert(channel.clone());
                }
                entry.2.extend(allowed.iter().copied());
                if allowed == CONSUMER {
                    // Pauses, breakers, leases and rate limits are shared
                    // primitives outside any channel.
                    for kind in ["breaker", "lock", "rate"] {
                        entry.0.insert(format!("~{ns}:{{{kind}.*}}:*"));
                    }
                }
            }
        }
    }
    let mut missing = Vec::new();
    writeln!(
        out,
        "# courier ACL users for namespace {ns:?}, from {} by `courier acl`",
        ctx.cli.schemas.display()
    )?;
    for (role, (keys, channels, allowed)) in &roles {
        let password = passwords.get(role).cloned().unwrap_or_else(|| {
            missing.push(role.clone());
            format!("CHANGE-ME-{role}")
        });
        let mut rule = vec![
            "on".to_string(),
            format!(">{password}"),
            "resetkeys".into(),
            "resetchannels".into(),
            "-@all".into(),
        ];
        rule.extend(ALWAYS.iter().map(|c| c.to_string()));
        rule.extend(allowed.iter().map(|c| format!("+{c}")));
        rule.extend(keys.iter().cloned());
        rule.extend(channels.iter().cloned());
        let line = rule.join(" ");
        if commands {
            writeln!(out, "ACL SETUSER {role} {line}")?;
        } else {
            writeln!(out, "user {role} {line}")?;
        }
    }
    let admin = passwords.get("admin").cloned().unwrap_or_else(|| {
        missing.push("admin".into());
        "CHANGE-ME-admin".into()
    });
    let admin_rule = format!("on >{admin} resetkeys resetchannels ~{ns}:* &{ns}:* +@all -@dangerous +info +config|get +acl|whoami +memory");
    if commands {
        writeln!(out, "ACL SETUSER courier-admin {admin_rule}")?;
    } else {
        writeln!(out, "user courier-admin {admin_rule}")?;
    }
    if !missing.is_empty() {
        eprintln!(
            "warning: no --password for {}; replace the CHANGE-ME placeholders before loading",
            missing.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
