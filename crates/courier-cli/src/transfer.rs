//! `courier export` and `courier import`: messages with their envelopes as
//! JSON lines, for backups, moving to another Redis, and replaying
//! sanitized production data into a test environment.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use courier::{Envelope, Transport};
use courier_schema::Validator;

use crate::entries::{Entry, Range};
use crate::{cloudevents, entries, Context, Format};

/// `courier export` options.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The channel: `<domain>.<channel>`, or `<channel>` when unique.
    pub channel: String,
    /// Export the dead letters instead of the queued messages.
    #[arg(long)]
    pub dlq: bool,
    /// A consumer group of the (stream) channel; repeat for each group
    /// that reads it. Each message is written with the groups that
    /// handled it (`"handled_by"`, from their done marks): `import` records
    /// those as handled, and queues the message again only for the others.
    /// Stop the consumers first (`courier pause`, then PENDING 0) so that
    /// nothing is handled while the export reads.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// `envelope` (courier's export lines) or `cloudevents` (one
    /// CloudEvents 1.0 JSON event per line; docs/cloudevents.md). Both
    /// import back.
    #[arg(long, value_enum, default_value_t = Format::Envelope)]
    pub format: Format,
}

/// Done marks read per round trip by `export --group`.
const DONE_PAGE: usize = 1000;

/// `courier import` options.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The channel: `<domain>.<channel>`, or `<channel>` when unique.
    pub channel: String,
    /// A file of JSON lines as `courier export` writes them, in either
    /// format (a line with `specversion` is read as a CloudEvent); `-` for
    /// stdin. Each message keeps its id, key and payload.
    pub file: PathBuf,
    /// At most this many messages per second.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// Runs `courier export`: one JSON object per line, `{"envelope": ...}`
/// (with `"handled_by"` and `"groups"` under `--group`) or a whole dead
/// letter; nothing is consumed. Messages waiting in the delayed set (retries,
/// scheduled messages) are exported after the queue's, and imported as due
/// now. An entry that is not a message is written as found,
/// with its flag (see the `entries` module), and the export goes on.
pub async fn export(ctx: &Context, args: &ExportArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let spec = ctx.channel(&args.channel)?;
    let client = ctx.client().await?;
    let mut count = 0;
    if args.dlq && args.format == Format::Cloudevents {
        bail!(
            "--format cloudevents writes messages; a dead letter is exported as courier writes it"
        );
    }
    let registry = match args.format {
        Format::Cloudevents => Some(ctx.registry()?),
        Format::Envelope => None,
    };
    if args.dlq {
        for letter in client
            .dlq(spec)
            .list(&courier::DlqFilter::default())
            .await?
        {
            writeln!(out, "{}", serde_json::to_string(&letter)?)?;
            count += 1;
        }
        eprintln!(
            "exported {count} dead letter(s) of {}",
            spec.qualified_name()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if spec.transport == Transport::Pubsub {
        bail!(
            "{} is a pubsub channel: Redis keeps no broadcast to export",
            spec.qualified_name()
        );
    }
    if !args.groups.is_empty() && spec.transport != Transport::Stream {
        bail!(
            "--group: {} is a {} channel, whose handled messages Redis no longer holds; \
             export it without --group",
            spec.qualified_name(),
            spec.transport.as_str()
        );
    }
    let (mut flagged, mut handled) = (0, 0);
    for partition in courier::partition::all(spec) {
        // The delayed set first: a retry that comes due while the export
        // reads moves from there to the queue, and is then read twice
        // (the copy is a duplicate on import) rather than not at all.
        let mut read = entries::read(&client, spec, partition.as_deref(), Range::Delayed).await?;
        read.extend(entries::read(&client, spec, partition.as_deref(), Range::All).await?);
        // Each group's done marks for the partition's messages, a page of
        // keys per round trip.
        let keys: Vec<&str> = read
            .iter()
            .map(|entry| match entry {
                Entry::Message(envelope) => envelope
                    .get("key")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default(),
                Entry::Flagged(_) => "",
            })
            .collect();
        let mut done_by: Vec<Vec<bool>> = Vec::with_capacity(args.groups.len());
        for group in &args.groups {
            let mut done = Vec::with_capacity(keys.len());
            for page in keys.chunks(DONE_PAGE) {
                done.extend(
                    client
                        .handled(spec, partition.as_deref(), group, page)
                        .await?,
                );
            }
            done_by.push(done);
        }
        for (i, entry) in read.into_iter().enumerate() {
            let line = match entry {
                Entry::Message(envelope) => {
                    let by: Vec<&String> = args
                        .groups
                        .iter()
                        .zip(&done_by)
                        .filter(|(_, done)| done.get(i) == Some(&true))
                        .map(|(group, _)| group)
                        .collect();
                    if args.format == Format::Cloudevents {
                        let groups = args.groups.as_slice();
                        cloudevents::from_envelope(
                            spec,
                            registry,
                            &envelope,
                            &cloudevents::Context {
                                partition: partition.as_deref(),
                                handled: (!by.is_empty()).then_some((by.as_slice(), groups)),
                            },
                        )
                    } else if by.is_empty() {
                        serde_json::json!({ "envelope": envelope })
                    } else {
                        handled += usize::from(by.len() == args.groups.len());
                        serde_json::json!({
                            "envelope": envelope,
                            "handled_by": by,
                            "groups": args.groups,
                        })
                    }
                }
                Entry::Flagged(entry) => {
                    flagged += 1;
                    serde_json::to_value(&entry)?
                }
            };
            writeln!(out, "{line}")?;
            count += 1;
        }
    }
    let flagged = if flagged > 0 {
        format!(", {flagged} flagged")
    } else {
        String::new()
    };
    let handled = if args.groups.is_empty() {
        String::new()
    } else {
        format!(", {handled} handled by every group given")
    };
    eprintln!(
        "exported {count} message(s) of {}{flagged}{handled}",
        spec.qualified_name()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `courier import`: validates each line's payload against its
/// message version and publishes it with its idempotency key; for a line
/// an export marked `"handled_by"` some groups, records it as handled by
/// them (their done marks) and queues it only if a group of the export has
/// not handled it (else its idempotency key is recorded instead); prints
/// the counts. A line that does not validate, or that export flagged as not a
/// message, is reported and skipped.
pub async fn import(ctx: &Context, args: &ImportArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let spec = ctx.channel(&args.channel)?;
    let registry = ctx.registry()?;
    let client = ctx.client().await?;
    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(&args.file)
                .with_context(|| format!("cannot open {}", args.file.display()))?,
        ))
    };
    let pause = args
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let (mut written, mut duplicates, mut rejected, mut restored) = (0, 0, 0, 0);
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", args.file.display(), i + 1);
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(value) if cloudevents::is_event(&value) => {
                match cloudevents::to_export_line(&value, registry) {
                    Ok(line) => line,
                    Err(e) => {
                        rejected += 1;
                        writeln!(out, "{at}: not an event courier can import: {e}")?;
                        continue;
                    }
                }
            }
            Ok(value) => value,
            Err(e) => {
                rejected += 1;
                writeln!(out, "{at}: not JSON: {e}")?;
                continue;
            }
        };
        if let Some(flag) = value.get("flag").and_then(serde_json::Value::as_str) {
            rejected += 1;
            writeln!(out, "{at}: exported as {flag}, not a message")?;
            continue;
        }
        let Some(envelope) = value.get("envelope").cloned() else {
            rejected += 1;
            writeln!(out, "{at}: no \"envelope\"")?;
            continue;
        };
        let envelope: Envelope = match serde_json::from_value(envelope) {
            Ok(envelope) => envelope,
            Err(e) => {
                rejected += 1;
                writeln!(out, "{at}: not an envelope: {e}")?;
                continue;
            }
        };
        if envelope.schema != spec.schema {
            rejected += 1;
            writeln!(
                out,
                "{at}: a {} message does not belong on {}",
                envelope.schema,
                spec.qualified_name()
            )?;
            continue;
        }
        let Some(schema) = registry
            .message(&envelope.schema)
            .and_then(|m| m.version(envelope.version))
        else {
            rejected += 1;
            writeln!(
                out,
                "{at}: no schema {} v{}",
                envelope.schema, envelope.version
            )?;
            continue;
        };
        let validator = Validator::compile(&schema.schema).map_err(|p| anyhow::anyhow!("{p:?}"))?;
        if let Err(errors) = validator.validate(&envelope.payload) {
            rejected += 1;
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            writeln!(out, "{at}: invalid payload: {}", errors.join("; "))?;
            continue;
        }
        if let Some(by) = value
            .get("handled_by")
            .and_then(serde_json::Value::as_array)
        {
            let by: Vec<&str> = by.iter().filter_map(serde_json::Value::as_str).collect();
            let groups = value
                .get("groups")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len);
            let queue = by.len() < groups;
            match courier::publish::restore_handled(&client, spec, &envelope, &by, queue).await? {
                None => restored += 1,
                Some(published) if published.duplicate => duplicates += 1,
                Some(_) => written += 1,
            }
            continue;
        }
        let published = courier::publish::restore(&client, spec, &envelope).await?;
        if published.duplicate {
            duplicates += 1;
        } else {
            written += 1;
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    writeln!(
        out,
        "imported {written}, {duplicates} duplicate(s), {rejected} rejected into {}{}",
        spec.qualified_name(),
        if restored > 0 {
            format!("; {restored} recorded as handled (not queued)")
        } else {
            String::new()
        }
    )?;
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
