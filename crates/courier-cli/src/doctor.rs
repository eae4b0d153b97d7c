//! `courier doctor`: checks a Redis for what courier needs and warns about
//! settings that lose queued work.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::Context;

/// Runs `courier doctor`: one `ok` or `warn` line per check; exit 1 when
/// anything warns.
pub async fn run(ctx: &Context, out: &mut dyn Write) -> Result<ExitCode> {
    let client = ctx.client().await?;
    let mut warnings = 0;
    let mut report = |ok: bool, text: String, out: &mut dyn Write| -> Result<()> {
        if !ok {
            warnings += 1;
        }
        writeln!(out, "{} {text}", if ok { "ok  " } else { "warn" })?;
        Ok(())
    };

    // On a cluster, the first master's; its settings should match the others'.
    let info: String = client
        .info("everything")
        .await?
        .into_iter()
        .next()
        .map(|(_, info)| info)
        .unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let version = field("redis_version");
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    report(
        major >= 7,
        format!("redis_version {version} (courier needs 7.0 or later)"),
        out,
    )?;

    let config = |name: &'static str| {
        let client = client.clone();
        async move {
            client
                .query::<Vec<String>>(redis::cmd("CONFIG").arg("GET").arg(name))
                .await
                .ok()
                .and_then(|pair| pair.get(1).cloned())
        }
    };
    match config("maxmemory-policy").await {
        Some(policy) => report(
            policy == "noeviction",
            format!(
                "maxmemory-policy {policy}{}",
                if policy == "noeviction" {
                    String::new()
                } else {
                    " can evict queued messages, dedup and done keys under memory pressure; set noeviction".into()
                }
            ),
            out,
        )?,
        None => report(
            false,
            "cannot read maxmemory-policy (CONFIG GET refused)".into(),
            out,
        )?,
    }
    let aof = field("aof_enabled") == "1";
    let fsync = config("appendfsync").await.unwrap_or_default();
    let save = config("save").await.unwrap_or_default();
    report(
        aof,
        if aof {
            format!(
                "appendonly yes, appendfsync {fsync}{}",
                if fsync == "always" {
                    ""
                } else {
                    " (up to a second of acknowledged writes can be lost in a crash; `always` loses none)"
                }
            )
        } else if save.is_empty() {
            "no persistence: a restart loses every queued message; set appendonly yes".into()
        } else {
            format!("RDB snapshots only (save {save}): a crash loses what came after the last snapshot; set appendonly yes")
        },
        out,
    )?;
    let cluster = field("cluster_enabled") == "1";
    report(
        true,
        format!(
            "cluster mode {}",
            if cluster {
                "on: partitioned channels spread over shards"
            } else {
                "off"
            }
        ),
        out,
    )?;
    match client
        .query::<String>(redis::cmd("ACL").arg("WHOAMI"))
        .await
    {
        Ok(user) => report(true, format!("connected as ACL user {user}"), out)?,
        Err(e) => report(false, format!("cannot tell the ACL user: {e}"), out)?,
    }
    writeln!(out, "{warnings} warning(s)")?;
    Ok(if warnings == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
