//! `courier peek` and `courier validate`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use courier::Transport;
use courier_schema::Validator;

use crate::Context;

/// `courier peek` options.
#[derive(Debug, clap::Args)]
pub struct PeekArgs {
    /// The channel: `<domain>.<channel>`, or `<channel>` when unique.
    pub channel: String,
    /// How many of the most recent messages, per partition.
    #[arg(long, default_value_t = 10)]
    pub count: usize,
}

/// `courier validate` options.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The message: `<domain>.<message>`, optionally `@<version>` (default: newest).
    pub message: String,
    /// A JSON file with the payload, or `-` for standard input.
    pub file: PathBuf,
}

/// Runs `courier peek`: recent messages with their envelopes, consuming
/// nothing.
pub async fn peek(ctx: &Context, args: &PeekArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let (_, spec) = ctx.channel(&args.channel)?;
    if spec.transport == Transport::Pubsub {
        bail!(
            "{} is a pubsub channel: Redis keeps no broadcast to peek at",
            spec.qualified_name()
        );
    }
    let client = ctx.client().await?;
    let mut shown = 0;
    for partition in courier::partition::all(spec) {
        let keys = client.keys(spec, partition.as_deref());
        let inbox = keys.inbox(spec.transport);
        let count = args.count.max(1);
        let records: Vec<String> = match spec.transport {
            Transport::Stream => {
                let entries: Vec<(String, Vec<(String, String)>)> = client
                    .query(
                        redis::cmd("XREVRANGE")
                            .arg(&inbox)
                            .arg("+")
                            .arg("-")
                            .arg("COUNT")
                            .arg(count),
                    )
                    .await?;
                entries
                    .into_iter()
                    .filter_map(|(_, fields)| {
                        fields.into_iter().find(|(f, _)| f == "m").map(|(_, v)| v)
                    })
                    .collect()
            }
            Transport::List => {
                client
                    .query(
                        redis::cmd("LRANGE")
                            .arg(&inbox)
                            .arg(0)
                            .arg(count as i64 - 1),
                    )
                    .await?
            }
            _ => {
                client
                    .query(
                        redis::cmd("ZRANGE")
                            .arg(&inbox)
                            .arg(0)
                            .arg(count as i64 - 1),
                    )
                    .await?
            }
        };
        for record in records {
            shown += 1;
            let value = crate::transfer::envelope_of(&record);
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
    }
    writeln!(
        out,
        "{shown} message(s) shown from {}",
        spec.qualified_name()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `courier validate`: exit 0 when the payload is valid, 1 with every
/// error and its pointer when it is not.
pub fn validate(ctx: &Context, args: &ValidateArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let registry = ctx.registry()?;
    let (name, version) = match args.message.split_once('@') {
        Some((name, version)) => (
            name,
            Some(
                version
                    .trim_start_matches('v')
                    .parse::<u32>()
                    .with_context(|| format!("bad version in {:?}", args.message))?,
            ),
        ),
        None => (args.message.as_str(), None),
    };
    let message = registry.message(name).with_context(|| {
        format!(
            "no message {name:?}; messages are <domain>.<message>, e.g. contact_center.interaction"
        )
    })?;
    let schema = match version {
        Some(v) => message.version(v).with_context(|| {
            format!(
                "{name} has no version {v}; it has v1 to v{}",
                message.latest().version
            )
        })?,
        None => message.latest(),
    };
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let payload: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let validator = Validator::compile(&schema.schema)
        .map_err(|problems| anyhow::anyhow!("schema does not compile: {problems:?}"))?;
    match validator.validate(&payload) {
        Ok(()) => {
            writeln!(
                out,
                "valid {}.{} v{}",
                message.domain, message.name, schema.version
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for error in &errors {
                writeln!(out, "{error}")?;
            }
            writeln!(
                out,
                "invalid {}.{} v{}: {} error(s)",
                message.domain,
                message.name,
                schema.version,
                errors.len()
            )?;
            Ok(ExitCode::FAILURE)
        }
    }
}
