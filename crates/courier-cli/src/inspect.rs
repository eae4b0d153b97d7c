//! `courier peek` and `courier validate`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use courier::Transport;
use courier_schema::Validator;

use crate::entries::{self, Entry, Range};
use crate::{cloudevents, Context, Format};

/// `courier peek` options.
#[derive(Debug, clap::Args)]
pub struct PeekArgs {
    /// The channel: `<domain>.<channel>`, or `<channel>` when unique.
    pub channel: String,
    /// How many of the most recent messages, per partition.
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// `envelope` (as stored) or `cloudevents` (CloudEvents 1.0 JSON,
    /// one event per message; docs/cloudevents.md).
    #[arg(long, value_enum, default_value_t = Format::Envelope)]
    pub format: Format,
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
/// nothing. An entry that is not a message is shown too, after a marker
/// line naming its flag (see the `entries` module).
pub async fn peek(ctx: &Context, args: &PeekArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let spec = ctx.channel(&args.channel)?;
    if spec.transport == Transport::Pubsub {
        bail!(
            "{} is a pubsub channel: Redis keeps no broadcast to peek at",
            spec.qualified_name()
        );
    }
    let client = ctx.client().await?;
    let registry = match args.format {
        Format::Cloudevents => Some(ctx.registry()?),
        Format::Envelope => None,
    };
    let (mut shown, mut flagged) = (0, 0);
    for partition in courier::partition::all(spec) {
        let range = Range::Head(args.count);
        for entry in entries::read(&client, spec, partition.as_deref(), range).await? {
            shown += 1;
            match entry {
                Entry::Message(envelope) => {
                    let shown = match args.format {
                        Format::Envelope => envelope,
                        Format::Cloudevents => cloudevents::from_envelope(
                            spec,
                            registry,
                            &envelope,
                            &cloudevents::Context {
                                partition: partition.as_deref(),
                                handled: None,
                            },
                        ),
                    };
                    writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
                }
                Entry::Flagged(entry) => {
                    flagged += 1;
                    writeln!(out, "{}", entry.marker())?;
                    writeln!(out, "{}", serde_json::to_string_pretty(&entry)?)?;
                }
            }
        }
    }
    write!(
        out,
        "{shown} message(s) shown from {}",
        spec.qualified_name()
    )?;
    if flagged > 0 {
        write!(out, ", {flagged} flagged")?;
    }
    writeln!(out)?;
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
