//! `courier dlq list|show|replay|purge`: triage dead letters and put them
//! back after a fix.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use courier::{ChannelSpec, DeadLetter, DeadReason, DlqFilter};

use crate::Context;

/// Which dead letters: every option narrows the selection.
#[derive(Debug, Clone, clap::Args)]
pub struct Filter {
    /// Only this channel (`<domain>.<channel>` or a unique `<channel>`); default all.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this reason: expired, schema_mismatch, version_unsupported,
    /// invalid_payload, max_attempts, fatal, poison.
    #[arg(long)]
    pub reason: Option<String>,
    /// Only messages of this schema version.
    #[arg(long)]
    pub version: Option<u32>,
    /// Dead-lettered at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Dead-lettered before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// Only those whose error contains this text.
    #[arg(long = "grep")]
    pub text: Option<String>,
    /// At most this many per channel.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// The `dlq` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List dead letters: id, channel, reason, version, when, attempts, error.
    List {
        #[command(flatten)]
        /// Which.
        filter: Filter,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter whole: envelope, reason, error, attempt history.
    Show {
        /// The channel.
        #[arg(long)]
        channel: String,
        /// The dead letter's id, as `dlq list` prints it.
        id: String,
    },
    /// Put dead letters back on their channel (new id, attempt 1, same key).
    Replay {
        #[command(flatten)]
        /// Which.
        filter: Filter,
        /// Print what would be replayed, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters for good; asks first unless `--yes`.
    Purge {
        #[command(flatten)]
        /// Which.
        filter: Filter,
        /// Print what would be deleted, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs a `dlq` subcommand.
pub async fn run(ctx: &Context, command: &Command, out: &mut dyn Write) -> Result<ExitCode> {
    let client = ctx.client().await?;
    match command {
        Command::List { filter, json } => {
            let letters = select(ctx, &client, filter).await?;
            if *json {
                for (_, letter) in &letters {
                    writeln!(out, "{}", serde_json::to_string(letter)?)?;
                }
            } else {
                write!(out, "{}", table(&letters))?;
                writeln!(out, "{} dead letter(s)", letters.len())?;
            }
        }
        Command::Show { channel, id } => {
            let spec = ctx.channel(channel)?;
            let letter = client.dlq(spec).get(id).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&show(&letter))?)?;
        }
        Command::Replay { filter, dry_run } => {
            let letters = select(ctx, &client, filter).await?;
            if *dry_run {
                write!(out, "{}", table(&letters))?;
                writeln!(out, "would replay {} dead letter(s)", letters.len())?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut replayed = 0;
            for (spec, letter) in &letters {
                match client.dlq(spec).replay(&letter.id).await {
                    Ok(id) => {
                        replayed += 1;
                        writeln!(
                            out,
                            "replayed {} {} as message {id}",
                            spec.qualified_name(),
                            letter.id
                        )?;
                    }
                    Err(e) => {
                        writeln!(out, "skipped {} {}: {e}", spec.qualified_name(), letter.id)?
                    }
                }
            }
            writeln!(
                out,
                "replayed {replayed} of {} dead letter(s)",
                letters.len()
            )?;
        }
        Command::Purge {
            filter,
            dry_run,
            yes,
        } => {
            let letters = select(ctx, &client, filter).await?;
            if *dry_run || letters.is_empty() {
                write!(out, "{}", table(&letters))?;
                writeln!(out, "would purge {} dead letter(s)", letters.len())?;
                return Ok(ExitCode::SUCCESS);
            }
            if !yes && !confirm(&format!("purge {} dead letter(s) for good?", letters.len()))? {
                writeln!(out, "nothing purged")?;
                return Ok(ExitCode::FAILURE);
            }
            let mut purged = 0;
            for (spec, letter) in &letters {
                if client.dlq(spec).purge(&letter.id).await.is_ok() {
                    purged += 1;
                }
            }
            writeln!(out, "purged {purged} of {} dead letter(s)", letters.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The dead letters the filter selects, with their channel.
async fn select(
    ctx: &Context,
    client: &courier::Client,
    filter: &Filter,
) -> Result<Vec<(&'static ChannelSpec, DeadLetter)>> {
    let reason = match &filter.reason {
        None => None,
        Some(name) => Some(parse_reason(name)?),
    };
    let dlq_filter = DlqFilter {
        reason,
        version: filter.version,
        since: filter.since,
        until: filter.until,
        text: filter.text.clone(),
        limit: filter.limit,
    };
    let channels = match &filter.channel {
        Some(name) => vec![ctx.channel(name)?],
        None => ctx.channels()?,
    };
    let mut letters = Vec::new();
    for spec in channels {
        for letter in client.dlq(spec).list(&dlq_filter).await? {
            letters.push((spec, letter));
        }
    }
    Ok(letters)
}

fn parse_reason(name: &str) -> Result<DeadReason> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).with_context(|| {
        format!(
            "unknown reason {name:?}; use expired, schema_mismatch, version_unsupported, \
             invalid_payload, max_attempts, fatal or poison"
        )
    })
}

fn show(letter: &DeadLetter) -> serde_json::Value {
    let mut value = serde_json::to_value(letter).unwrap_or_default();
    value["id"] = serde_json::Value::String(letter.id.clone());
    value
}

/// Dead letters as an aligned table.
pub fn table(letters: &[(&'static ChannelSpec, DeadLetter)]) -> String {
    let mut rows = vec![[
        "ID".to_string(),
        "CHANNEL".into(),
        "REASON".into(),
        "VERSION".into(),
        "DEAD AT".into(),
        "ATTEMPTS".into(),
        "ERROR".into(),
    ]];
    for (spec, letter) in letters {
        let mut error: String = letter.error.chars().take(72).collect();
        if letter.error.chars().count() > 72 {
            error.push('…');
        }
        rows.push([
            letter.id.clone(),
            spec.qualified_name(),
            letter.reason.to_string(),
            letter.version().map_or("-".into(), |v| v.to_string()),
            letter.dead_at.clone(),
            letter.history.len().to_string(),
            error,
        ]);
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    crate::aligned(&rows)
}

fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.is_empty() {
        bail!("no answer on standard input; pass --yes to purge without asking");
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
