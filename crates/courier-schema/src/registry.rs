//! Loading `schemas/` and the rules every schema file must keep.
//!
//! Layout of the folder:
//!
//! ```text
//! schemas/courier/envelope.v1.json         the wire envelope
//! schemas/courier/channels.schema.json     meta-schema of every channels.json
//! schemas/<domain>/channels.json           a domain's channel contracts
//! schemas/<domain>/<message>.v<N>.json     one file per released message version
//! ```
//!
//! [`Registry::load`] reads everything and reports every problem at once;
//! code is generated only from a registry that loaded without problems.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::channel::{
    defaults, Backoff, ChannelRef, ChannelSpec, DependencySpec, Durability, PartitionSpec,
    RateSpec, RawChannel, RawChannels, RawDurability, Retention, SlaNoticeSpec, Transport,
};
use crate::duration::parse_duration;
use crate::problem::Problems;
use crate::validate::{escape_pointer_token, Validator};

/// The one JSON Schema draft courier schemas are written in.
pub use crate::keywords::DRAFT_2020_12;

/// Folder of courier's own schemas (envelope, meta-schema).
pub const COURIER_DIR: &str = "courier";
/// The meta-schema every `channels.json` is checked against.
pub const CHANNELS_META_SCHEMA: &str = "channels.schema.json";
/// A domain's channel file.
pub const CHANNELS_FILE: &str = "channels.json";
/// A domain's reviewed exceptions to the compatibility rules.
pub const EXCEPTIONS_FILE: &str = "compat-exceptions.json";
/// Name of the envelope message in the courier folder.
pub const ENVELOPE_MESSAGE: &str = "envelope";
/// Name of the SLA notice courier publishes, in the courier folder.
pub const SLA_NOTICE_MESSAGE: &str = "sla_notice";

/// Every schema of a repository, checked.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The `schemas/` folder it was loaded from.
    pub root: PathBuf,
    /// The wire envelope, every version.
    pub envelope: Message,
    /// The SLA notice courier publishes on `sla_notice` channels.
    pub sla_notice: Message,
    /// The domains, by name.
    pub domains: BTreeMap<String, Domain>,
}

/// One folder under `schemas/`: its messages and channels.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Folder name, also the prefix of every schema name in it.
    pub name: String,
    /// What the domain is, from `channels.json`.
    pub description: String,
    /// The folder.
    pub dir: PathBuf,
    /// Messages by name.
    pub messages: BTreeMap<String, Message>,
    /// Channels by name.
    pub channels: BTreeMap<String, ChannelSpec>,
    /// Deliberate, reviewed compatibility breaks.
    pub exceptions: Vec<CompatException>,
}

/// One reviewed, deliberate compatibility break, from
/// `schemas/<domain>/compat-exceptions.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatException {
    /// The message.
    pub message: String,
    /// The version whose check it excuses (the newer of the pair).
    pub version: u32,
    /// The rule id.
    pub rule: String,
    /// The JSON pointer the finding is reported at, in that version's file.
    pub pointer: String,
    /// Why the break is acceptable; required, for the reviewer.
    pub reason: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionsFile {
    exceptions: Vec<CompatException>,
}

/// A message and all of its released versions.
#[derive(Debug, Clone)]
pub struct Message {
    /// The domain it belongs to.
    pub domain: String,
    /// Message name, from the file name.
    pub name: String,
    /// Versions in order; `versions[0]` is v1 and none is missing.
    pub versions: Vec<MessageVersion>,
}

/// One released version of a message: one file, never edited once released.
#[derive(Debug, Clone)]
pub struct MessageVersion {
    /// Version number, from the file name.
    pub version: u32,
    /// The file.
    pub file: PathBuf,
    /// The file's exact text, embedded into generated code.
    pub text: String,
    /// The parsed schema.
    pub schema: Value,
    /// The schema's `title`.
    pub title: String,
    /// The schema's `description`.
    pub description: String,
    /// JSON pointers to the payload fields whose values form the
    /// idempotency key, in order.
    pub idempotency_key: Vec<String>,
}

impl Message {
    /// The name carried in envelopes: `<domain>.<message>`.
    pub fn schema_name(&self) -> String {
        format!("{}.{}", self.domain, self.name)
    }

    /// The newest version.
    pub fn latest(&self) -> &MessageVersion {
        // A Message is only built from at least one version file.
        &self.versions[self.versions.len() - 1]
    }

    /// A version by number.
    pub fn version(&self, version: u32) -> Option<&MessageVersion> {
        self.versions.get(version.checked_sub(1)? as usize)
    }
}

impl Domain {
    /// The channels that carry `message`.
    pub fn channels_of<'a>(&'a self, message: &'a str) -> impl Iterator<Item = &'a ChannelSpec> {
        self.channels
            .values()
            .filter(move |c| c.message() == message)
    }
}

impl Registry {
    /// Loads and checks every file under `root`, reporting all problems.
    pub fn load(root: &Path) -> Result<Registry, Problems> {
        Self::load_with_courier(root, &root.join(COURIER_DIR))
    }

    /// Loads the domains under `root`, with courier's own schemas (envelope,
    /// channels meta-schema) from `courier_dir`; tests use it to check
    /// fixture domains against the real meta-schema.
    pub fn load_with_courier(root: &Path, courier_dir: &Path) -> Result<Registry, Problems> {
        let mut problems = Problems::default();
        let entries = match sorted_entries(root) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(root, "", format!("cannot read the schemas folder: {e}"));
                return Err(problems);
            }
        };

        let (envelope, sla_notice, meta_schema) = load_courier_dir(courier_dir, &mut problems);

        let mut domains = BTreeMap::new();
        for path in entries {
            let name = file_name(&path);
            if path == courier_dir {
                continue;
            }
            if !path.is_dir() {
                problems.push(
                    &path,
                    "",
                    "unexpected file; schemas live in schemas/<domain>/ folders",
                );
                continue;
            }
            if !is_identifier(&name) {
                problems.push(
                    &path,
                    "",
                    format!("domain folder name {name:?} must match ^[a-z][a-z0-9_]*$"),
                );
                continue;
            }
            let notice = sla_notice.as_ref().map(|m| &m.latest().schema);
            if let Some(domain) =
                load_domain(&path, &name, meta_schema.as_ref(), notice, &mut problems)
            {
                domains.insert(name, domain);
            }
        }

        problems.sort();
        match (envelope, sla_notice) {
            (Some(envelope), Some(sla_notice)) if problems.is_empty() => Ok(Registry {
                root: root.to_path_buf(),
                envelope,
                sla_notice,
                domains,
            }),
            _ => Err(problems),
        }
    }

    /// A message of a domain, by `<domain>.<message>` schema name.
    pub fn message(&self, schema_name: &str) -> Option<&Message> {
        let (domain, message) = schema_name.split_once('.')?;
        self.domains.get(domain)?.messages.get(message)
    }
}

fn load_courier_dir(
    dir: &Path,
    problems: &mut Problems,
) -> (Option<Message>, Option<Message>, Option<Validator>) {
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(
                dir,
                "",
                format!("cannot read courier's own schemas (envelope, channels meta-schema): {e}"),
            );
            return (None, None, None);
        }
    };
    let mut meta_schema = None;
    let mut files = Vec::new();
    for path in entries {
        let name = file_name(&path);
        if name == CHANNELS_META_SCHEMA {
            meta_schema = read_json(&path, problems).and_then(|value| {
                Validator::compile(&value)
                    .map_err(|errors| {
                        for e in errors {
                            problems.push(&path, e.pointer, e.message);
                        }
                    })
                    .ok()
            });
        } else {
            files.push(path);
        }
    }
    if meta_schema.is_none() && !dir.join(CHANNELS_META_SCHEMA).exists() {
        problems.push(dir, "", format!("missing {CHANNELS_META_SCHEMA}"));
    }
    let (mut messages, _) = load_messages(COURIER_DIR, &files, false, problems);
    let envelope = messages.remove(ENVELOPE_MESSAGE);
    let sla_notice = messages.remove(SLA_NOTICE_MESSAGE);
    for (name, found) in [
        (ENVELOPE_MESSAGE, envelope.is_some()),
        (SLA_NOTICE_MESSAGE, sla_notice.is_some()),
    ] {
        if !found {
            problems.push(dir, "", format!("missing {name}.v1.json"));
        }
    }
    for message in messages.values() {
        problems.push(
            &message.versions[0].file,
            "",
            "unexpected message in the courier folder; domain messages live in schemas/<domain>/",
        );
    }
    (envelope, sla_notice, meta_schema)
}

fn load_domain(
    dir: &Path,
    name: &str,
    meta_schema: Option<&Validator>,
    sla_notice: Option<&Value>,
    problems: &mut Problems,
) -> Option<Domain> {
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(dir, "", format!("cannot read the domain folder: {e}"));
            return None;
        }
    };
    let (channel_files, message_files): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .filter(|path| file_name(path) != EXCEPTIONS_FILE)
        .partition(|path| file_name(path) == CHANNELS_FILE);
    let (messages, message_names) = load_messages(name, &message_files, true, problems);
    let exceptions = load_exceptions(&dir.join(EXCEPTIONS_FILE), &messages, problems);

    let channels_path = dir.join(CHANNELS_FILE);
    if channel_files.is_empty() {
        problems.push(
            &channels_path,
            "",
            "missing channels.json; every domain declares its channels",
        );
        return None;
    }
    let value = read_json(&channels_path, problems)?;
    // Channels with meta-schema errors are reported as such; the others
    // still get the checks beyond the meta-schema, so one pass finds all.
    let mut broken_channels = std::collections::BTreeSet::new();
    if let Some(meta_schema) = meta_schema {
        if let Err(errors) = meta_schema.validate(&value) {
            for e in errors {
                match channel_of_pointer(&e.instance_path) {
                    Some(channel) => broken_channels.insert(channel),
                    None => broken_channels.insert(String::new()),
                };
                problems.push(&channels_path, e.instance_path, e.message);
            }
        }
    }
    if broken_channels.contains("") {
        return None;
    }
    let raw: RawChannels = match serde_json::from_value(value) {
        Ok(raw) => raw,
        Err(e) => {
            problems.push(&channels_path, "", e.to_string());
            return None;
        }
    };
    if raw.domain != name {
        problems.push(
            &channels_path,
            "/domain",
            format!(
                "domain {:?} does not match its folder name {name:?}",
                raw.domain
            ),
        );
    }
    let mut channels = BTreeMap::new();
    // Each channel's `sla_notice` target by name; resolved into the
    // target's spec once every channel is built.
    let mut notices = BTreeMap::new();
    for (channel_name, raw_channel) in raw.channels {
        if broken_channels.contains(&channel_name) {
            continue;
        }
        let pointer = format!("/channels/{}", escape_pointer_token(&channel_name));
        let raw_channel: RawChannel = match serde_json::from_value(raw_channel) {
            Ok(raw_channel) => raw_channel,
            Err(e) => {
                problems.push(&channels_path, pointer, e.to_string());
                continue;
            }
        };
        let mut check = ChannelCheck {
            file: &channels_path,
            pointer: &pointer,
            problems,
        };
        let notice = raw_channel.sla_notice.clone();
        if let Some(channel) =
            check.build(name, &channel_name, raw_channel, &messages, &message_names)
        {
            if let Some(target) = notice {
                notices.insert(channel_name.clone(), target);
            }
            channels.insert(channel_name, channel);
        }
    }
    let before = problems.len();
    check_sla_notices(
        &channels_path,
        &channels,
        &notices,
        &messages,
        sla_notice,
        problems,
    );
    if problems.len() == before {
        resolve_sla_notices(&channels_path, &mut channels, &notices, &messages, problems);
    }
    Some(Domain {
        name: name.to_string(),
        description: raw.description,
        dir: dir.to_path_buf(),
        messages,
        channels,
        exceptions,
    })
}

/// A channel's `sla_notice` names a channel of the same domain whose
/// newest message accepts every notice courier writes.
fn check_sla_notices(
    file: &Path,
    channels: &BTreeMap<String, ChannelSpec>,
    notices: &BTreeMap<String, String>,
    messages: &BTreeMap<String, Message>,
    notice: Option<&Value>,
    problems: &mut Problems,
) {
    for channel in channels.values() {
        let Some(target) = notices.get(&*channel.name) else {
            continue;
        };
        let at = format!(
            "/channels/{}/sla_notice",
            escape_pointer_token(&channel.name)
        );
        let Some(target_channel) = channels.get(target) else {
            problems.push(file, at, format!("no channel {target:?} in this domain"));
            continue;
        };
        let (Some(message), Some(notice)) = (messages.get(target_channel.message()), notice) else {
            continue;
        };
        for finding in crate::compat::accepts(&message.latest().schema, notice) {
            problems.push(
                file,
                at.clone(),
                format!(
                    "{} v{} cannot carry courier's SLA notices: {} at {}: {}",
                    message.name,
                    message.latest().version,
                    finding.rule,
                    if finding.reader_pointer.is_empty() {
                        "/"
                    } else {
                        &finding.reader_pointer
                    },
                    finding.message
                ),
            );
        }
    }
}

/// Sets each channel's `sla_notice` to the spec of the channel it names (as
/// checked by [`check_sla_notices`]) and the newest version of its message.
/// A notice channel that announces breaches itself is resolved first, so the
/// copy carries its own notice; channels whose notices form a cycle cannot
/// be written as constants and are reported.
fn resolve_sla_notices(
    file: &Path,
    channels: &mut BTreeMap<String, ChannelSpec>,
    notices: &BTreeMap<String, String>,
    messages: &BTreeMap<String, Message>,
    problems: &mut Problems,
) {
    let mut pending: Vec<(&String, &String)> = notices.iter().collect();
    while !pending.is_empty() {
        let (ready, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, target)| {
            !notices.contains_key(*target) || channels[*target].sla_notice.is_some()
        });
        if ready.is_empty() {
            for (name, target) in waiting {
                problems.push(
                    file,
                    format!("/channels/{}/sla_notice", escape_pointer_token(name)),
                    format!("sla_notice {target:?} leads back to {name:?}: notice channels must not form a cycle"),
                );
            }
            return;
        }
        for (name, target) in ready {
            let target = channels[target].clone();
            let Some(message) = messages.get(target.message()) else {
                continue;
            };
            let version = message.latest().version;
            if let Some(channel) = channels.get_mut(name) {
                channel.sla_notice = Some(SlaNoticeSpec {
                    channel: ChannelRef::Owned(Box::new(target)),
                    version,
                });
            }
        }
        pending = waiting;
    }
}

/// Reads the optional exceptions file; every entry must name a message
/// version that exists, a known rule and a reason.
fn load_exceptions(
    path: &Path,
    messages: &BTreeMap<String, Message>,
    problems: &mut Problems,
) -> Vec<CompatException> {
    if !path.exists() {
        return Vec::new();
    }
    let Some(value) = read_json(path, problems) else {
        return Vec::new();
    };
    let file: ExceptionsFile = match serde_json::from_value(value) {
        Ok(file) => file,
        Err(e) => {
            problems.push(
                path,
                "",
                format!(
                    "{e}; expected {{\"exceptions\": [{{\"message\", \"version\", \"rule\", \"pointer\", \"reason\"}}]}}"
                ),
            );
            return Vec::new();
        }
    };
    for (i, exception) in file.exceptions.iter().enumerate() {
        let at = |field: &str| format!("/exceptions/{i}/{field}");
        if messages
            .get(&exception.message)
            .and_then(|m| m.version(exception.version))
            .is_none()
        {
            problems.push(
                path,
                at("version"),
                format!("no message {}.v{}", exception.message, exception.version),
            );
        }
        if crate::rules::rule_known(&exception.rule).is_none() {
            problems.push(
                path,
                at("rule"),
                format!("unknown rule {:?}", exception.rule),
            );
        }
        if exception.reason.trim().is_empty() {
            problems.push(
                path,
                at("reason"),
                "an exception needs a reason a reviewer can judge",
            );
        }
    }
    file.exceptions
}

/// The channel name a `channels.json` pointer lies under.
fn channel_of_pointer(pointer: &str) -> Option<String> {
    let rest = pointer.strip_prefix("/channels/")?;
    let token = rest.split('/').next()?;
    Some(token.replace("~1", "/").replace("~0", "~"))
}

/// Reads message version files and groups them into messages, checking that
/// versions are contiguous from v1. Returns the sound messages, and the
/// names of every message that has files, sound or not.
fn load_messages(
    domain: &str,
    files: &[PathBuf],
    require_key: bool,
    problems: &mut Problems,
) -> (BTreeMap<String, Message>, Vec<String>) {
    let mut found: BTreeMap<String, BTreeMap<u32, (PathBuf, Option<MessageVersion>)>> =
        BTreeMap::new();
    for path in files {
        let Some((message, version)) = parse_version_file_name(&file_name(path)) else {
            problems.push(
                path,
                "",
                "unexpected file; expected channels.json, compat-exceptions.json or <message>.v<N>.json",
            );
            continue;
        };
        let linted = read_json(path, problems).and_then(|schema| {
            let text = std::fs::read_to_string(path).ok()?;
            lint_message(
                path,
                text,
                schema,
                domain,
                &message,
                version,
                require_key,
                problems,
            )
        });
        found
            .entry(message)
            .or_default()
            .insert(version, (path.clone(), linted));
    }

    let names = found.keys().cloned().collect();
    let mut messages = BTreeMap::new();
    for (name, versions) in found {
        let highest = versions.keys().copied().max().unwrap_or(0);
        let missing: Vec<String> = (1..=highest)
            .filter(|v| !versions.contains_key(v))
            .map(|v| format!("v{v}"))
            .collect();
        if !missing.is_empty() {
            let (path, _) = &versions[&highest];
            problems.push(
                path,
                "",
                format!(
                    "versions of {name:?} must be contiguous from v1; missing {}",
                    missing.join(", ")
                ),
            );
            continue;
        }
        // A version that failed its lint is already reported; the message is
        // left out so later stages see only sound schemas.
        if let Some(versions) = versions
            .into_values()
            .map(|(_, linted)| linted)
            .collect::<Option<Vec<_>>>()
        {
            messages.insert(
                name.clone(),
                Message {
                    domain: domain.to_string(),
                    name,
                    versions,
                },
            );
        }
    }
    (messages, names)
}

/// `billing_task.v2.json` → `("billing_task", 2)`.
pub fn parse_version_file_name(file_name: &str) -> Option<(String, u32)> {
    let stem = file_name.strip_suffix(".json")?;
    let (message, version) = stem.rsplit_once(".v")?;
    if !is_identifier(message) || version.starts_with('0') {
        return None;
    }
    let version: u32 = version.parse().ok()?;
    Some((message.to_string(), version))
}

#[allow(clippy::too_many_arguments)]
fn lint_message(
    file: &Path,
    text: String,
    schema: Value,
    domain: &str,
    message: &str,
    version: u32,
    require_key: bool,
    problems: &mut Problems,
) -> Option<MessageVersion> {
    let before = problems.len();
    let Some(root) = schema.as_object() else {
        problems.push(file, "", "a message schema must be a JSON object");
        return None;
    };

    match root.get("$schema") {
        None => problems.push(
            file,
            "",
            format!("missing \"$schema\"; courier schemas declare {DRAFT_2020_12:?}"),
        ),
        Some(Value::String(s)) if s == DRAFT_2020_12 => {}
        // Other values are reported by the validator's compile below.
        Some(_) => {}
    }

    let expected_id_suffix = format!("/{domain}/{message}.v{version}.json");
    match root.get("$id") {
        Some(Value::String(id)) if id.ends_with(&expected_id_suffix) => {}
        Some(Value::String(id)) => problems.push(
            file,
            "/$id",
            format!(
                "$id {id:?} does not agree with the file name; it must end with {expected_id_suffix:?}"
            ),
        ),
        _ => problems.push(
            file,
            "",
            format!("missing \"$id\"; use a URI ending with {expected_id_suffix:?}"),
        ),
    }
    let title = required_text(file, root, "title", problems);
    let description = required_text(file, root, "description", problems);
    if root.get("type") != Some(&Value::String("object".into())) {
        problems.push(
            file,
            "/type",
            "the root of a message schema must be \"type\": \"object\"",
        );
    }

    if let Err(errors) = Validator::compile(&schema) {
        for e in errors {
            problems.push(file, e.pointer, e.message);
        }
    }
    for_each_schema(&schema, "", &mut |sub, pointer| {
        if is_object_schema(sub) && sub.get("additionalProperties").is_none() {
            problems.push(
                file,
                pointer,
                "object schema without an explicit \"additionalProperties\"; \
                 compatibility checks need to know whether unknown fields are allowed",
            );
        }
    });

    let idempotency_key = lint_courier_block(file, &schema, require_key, problems);
    if problems.len() > before {
        return None;
    }
    Some(MessageVersion {
        version,
        file: file.to_path_buf(),
        text,
        schema,
        title: title.unwrap_or_default(),
        description: description.unwrap_or_default(),
        idempotency_key,
    })
}

fn required_text(
    file: &Path,
    root: &serde_json::Map<String, Value>,
    keyword: &str,
    problems: &mut Problems,
) -> Option<String> {
    match root.get(keyword) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => {
            problems.push(
                file,
                "",
                format!("missing \"{keyword}\"; every message schema has a non-empty {keyword}"),
            );
            None
        }
    }
}

/// Checks the `x-courier` block and returns the idempotency-key pointers.
fn lint_courier_block(
    file: &Path,
    schema: &Value,
    require_key: bool,
    problems: &mut Problems,
) -> Vec<String> {
    let Some(block) = schema.get("x-courier") else {
        if require_key {
            problems.push(
                file,
                "",
                "missing \"x-courier\": {\"idempotency_key\": [\"/field\"]}; \
                 every message names the fields that identify it",
            );
        }
        return Vec::new();
    };
    let Some(block) = block.as_object() else {
        problems.push(file, "/x-courier", "x-courier must be an object");
        return Vec::new();
    };
    for key in block.keys().filter(|k| *k != "idempotency_key") {
        problems.push(
            file,
            format!("/x-courier/{}", escape_pointer_token(key)),
            format!("unknown x-courier setting {key:?}; known: \"idempotency_key\""),
        );
    }
    let pointers = match block.get("idempotency_key") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            problems.push(
                file,
                "/x-courier/idempotency_key",
                "idempotency_key must be a non-empty array of JSON pointers",
            );
            return Vec::new();
        }
    };
    let mut keys = Vec::new();
    for (i, pointer) in pointers.iter().enumerate() {
        let at = format!("/x-courier/idempotency_key/{i}");
        let Some(pointer) = pointer.as_str() else {
            problems.push(
                file,
                at,
                "expected a JSON pointer string such as \"/order_id\"",
            );
            continue;
        };
        match resolve_required_property(schema, pointer) {
            Ok(property) => match schema_type(schema, property) {
                Some("string") | Some("integer") => keys.push(pointer.to_string()),
                other => problems.push(
                    file,
                    at,
                    format!(
                        "idempotency key {pointer:?} must be a string or integer property, not {}",
                        other.unwrap_or("an untyped value")
                    ),
                ),
            },
            Err(message) => problems.push(file, at, format!("idempotency key {message}")),
        }
    }
    keys
}

/// Follows a payload JSON pointer through `properties`, insisting that every
/// step is a required property, and returns the property's schema.
pub fn resolve_required_property<'a>(
    schema: &'a Value,
    pointer: &str,
) -> Result<&'a Value, String> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "{pointer:?} is not a JSON pointer (it must start with \"/\")"
        ));
    };
    let mut current = resolve_ref(schema, schema);
    for token in rest.split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        let property = current
            .get("properties")
            .and_then(|p| p.get(&token))
            .ok_or_else(|| format!("{pointer:?} names no property: {token:?} is not declared"))?;
        let required = current
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|name| name.as_str() == Some(token.as_str())));
        if !required {
            return Err(format!(
                "{pointer:?} must be required: {token:?} is optional"
            ));
        }
        current = resolve_ref(schema, property);
    }
    Ok(current)
}

/// Follows local `#/$defs/...` references, at most a few levels deep.
pub fn resolve_ref<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let target = match reference {
            "#" => Some(root),
            r => r.strip_prefix('#').and_then(|p| root.pointer(p)),
        };
        match target {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

/// The single `type` of a schema after references, if it declares one.
pub fn schema_type<'a>(root: &'a Value, schema: &'a Value) -> Option<&'a str> {
    resolve_ref(root, schema)
        .get("type")
        .and_then(Value::as_str)
}

/// Whether a schema describes objects (and so must say whether it is open).
fn is_object_schema(schema: &Value) -> bool {
    let typed_object = match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
        _ => false,
    };
    typed_object || schema.get("properties").is_some() || schema.get("required").is_some()
}

/// Calls `f` on `schema` and every subschema below it, with its pointer.
pub fn for_each_schema(schema: &Value, pointer: &str, f: &mut dyn FnMut(&Value, &str)) {
    if !schema.is_object() {
        return;
    }
    f(schema, pointer);
    for keyword in ["properties", "$defs"] {
        if let Some(map) = schema.get(keyword).and_then(Value::as_object) {
            for (name, sub) in map {
                let at = format!("{pointer}/{keyword}/{}", escape_pointer_token(name));
                for_each_schema(sub, &at, f);
            }
        }
    }
    for keyword in ["items", "additionalProperties"] {
        if let Some(sub) = schema.get(keyword) {
            for_each_schema(sub, &format!("{pointer}/{keyword}"), f);
        }
    }
    for keyword in ["oneOf", "allOf"] {
        if let Some(list) = schema.get(keyword).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                for_each_schema(sub, &format!("{pointer}/{keyword}/{i}"), f);
            }
        }
    }
}

/// Turns one raw channel into the model, reporting every problem.
struct ChannelCheck<'a> {
    file: &'a Path,
    pointer: &'a str,
    problems: &'a mut Problems,
}

impl ChannelCheck<'_> {
    fn report(&mut self, field: &str, message: impl Into<String>) {
        self.problems
            .push(self.file, format!("{}{field}", self.pointer), message);
    }

    fn duration(&mut self, field: &str, value: Option<&str>, default: Duration) -> Duration {
        match value.map(parse_duration) {
            None => default,
            Some(Ok(duration)) => duration,
            Some(Err(message)) => {
                self.report(field, message);
                default
            }
        }
    }

    fn build(
        &mut self,
        domain: &str,
        name: &str,
        raw: RawChannel,
        messages: &BTreeMap<String, Message>,
        message_names: &[String],
    ) -> Option<ChannelSpec> {
        let before = self.problems.len();
        if !is_identifier(name) {
            self.report(
                "",
                format!("channel name {name:?} must match ^[a-z][a-z0-9_]*$"),
            );
        }
        let message = messages.get(&raw.message);
        // A message whose files have problems is reported there; only a
        // message with no file at all is unknown.
        if !message_names.contains(&raw.message) {
            let known: Vec<&str> = message_names.iter().map(String::as_str).collect();
            self.report(
                "/message",
                format!(
                    "unknown message {:?}; this domain has {}",
                    raw.message,
                    if known.is_empty() {
                        "no message files".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }

        let not_for = |transports: &[Transport]| transports.contains(&raw.transport);
        let transport = raw.transport.as_str();
        let mut inapplicable = Vec::new();
        if raw.sla.is_some() && raw.transport != Transport::Priority {
            inapplicable.push(("/sla", "priority"));
        }
        if raw.sla_notice.is_some() && raw.transport != Transport::Priority {
            inapplicable.push(("/sla_notice", "priority"));
        }
        if raw.durability.is_some() && raw.transport == Transport::Pubsub {
            inapplicable.push(("/durability", "stream, list and priority"));
        }
        if raw.retention.is_some() && raw.transport != Transport::Stream {
            inapplicable.push(("/retention", "stream"));
        }
        if not_for(&[Transport::Pubsub]) {
            for (field, present) in [
                ("/dependency", raw.dependency.is_some()),
                ("/rate_limit", raw.rate_limit.is_some()),
                ("/visibility_timeout", raw.visibility_timeout.is_some()),
                ("/max_attempts", raw.max_attempts.is_some()),
                ("/backoff", raw.backoff.is_some()),
                ("/max_depth", raw.max_depth.is_some()),
                ("/partitions", raw.partitions.is_some()),
            ] {
                if present {
                    inapplicable.push((field, "stream, list and priority"));
                }
            }
        }
        for (field, applies_to) in inapplicable {
            self.report(
                field,
                format!(
                    "{} does not apply to {transport} channels, only to {applies_to} channels",
                    &field[1..]
                ),
            );
        }

        let ttl = self.duration("/ttl", raw.ttl.as_deref(), defaults::TTL);
        let visibility_timeout = self.duration(
            "/visibility_timeout",
            raw.visibility_timeout.as_deref(),
            defaults::VISIBILITY_TIMEOUT,
        );
        let dedup_window = self.duration("/dedup_window", raw.dedup_window.as_deref(), ttl);
        let raw_backoff = raw.backoff.as_ref();
        let backoff = Backoff {
            initial: self.duration(
                "/backoff/initial",
                raw_backoff.and_then(|b| b.initial.as_deref()),
                defaults::BACKOFF_INITIAL,
            ),
            max: self.duration(
                "/backoff/max",
                raw_backoff.and_then(|b| b.max.as_deref()),
                defaults::BACKOFF_MAX,
            ),
            multiplier: raw_backoff
                .and_then(|b| b.multiplier)
                .unwrap_or(defaults::BACKOFF_MULTIPLIER),
        };
        if backoff.initial > backoff.max {
            self.report(
                "/backoff",
                "backoff initial must not be greater than backoff max",
            );
        }
        let raw_retention = raw.retention.as_ref();
        let retention = Retention {
            max_len: raw_retention.and_then(|r| r.max_len),
            max_age: self.duration(
                "/retention/max_age",
                raw_retention.and_then(|r| r.max_age.as_deref()),
                ttl * defaults::RETENTION_TTL_FACTOR,
            ),
        };
        if retention.max_age < ttl {
            self.report(
                "/retention/max_age",
                "retention max_age is shorter than the ttl: live messages would be trimmed away",
            );
        }
        let sla = raw
            .sla
            .as_deref()
            .map(|sla| self.duration("/sla", Some(sla), ttl));

        let partitions = match (raw.partitions, message) {
            (Some(p), Some(message)) => self.partitions(p, message),
            _ => None,
        };

        let dependency = raw.dependency.as_ref().map(|d| DependencySpec {
            name: d.name.clone().into(),
            failure_threshold: d.failure_threshold.unwrap_or(defaults::FAILURE_THRESHOLD),
            window: self.duration(
                "/dependency/window",
                d.window.as_deref(),
                defaults::FAILURE_WINDOW,
            ),
            cool_down: self.duration(
                "/dependency/cool_down",
                d.cool_down.as_deref(),
                defaults::COOL_DOWN,
            ),
        });
        let rate_limit = raw.rate_limit.as_ref().map(|r| RateSpec {
            name: r.name.clone().map(Into::into),
            per_second: r.per_second,
            burst: r.burst.unwrap_or(1),
        });

        let durability = match raw.durability {
            None => Durability::Primary,
            Some(RawDurability::Named(name)) if name == "primary" => Durability::Primary,
            Some(RawDurability::Named(_)) => Durability::Replicated {
                replicas: defaults::REPLICAS,
                timeout: defaults::REPLICATION_TIMEOUT,
            },
            Some(RawDurability::Replicated { replicas, timeout }) => Durability::Replicated {
                replicas: replicas.unwrap_or(defaults::REPLICAS),
                timeout: self.duration(
                    "/durability/timeout",
                    timeout.as_deref(),
                    defaults::REPLICATION_TIMEOUT,
                ),
            },
        };

        if self.problems.len() > before {
            return None;
        }
        Some(ChannelSpec {
            domain: domain.to_string().into(),
            name: name.to_string().into(),
            schema: format!("{domain}.{}", raw.message).into(),
            description: raw.description.into(),
            durability,
            dependency,
            rate_limit,
            // Set by `resolve_sla_notices` once every channel is built.
            sla_notice: None,
            transport: raw.transport,
            ttl,
            visibility_timeout,
            dedup_window,
            max_attempts: raw.max_attempts.unwrap_or(defaults::MAX_ATTEMPTS),
            backoff,
            retention,
            max_depth: raw.max_depth,
            sla,
            partitions,
            compatibility: raw.compatibility,
            producers: raw.producers.into_iter().map(Into::into).collect(),
            consumers: raw.consumers.into_iter().map(Into::into).collect(),
        })
    }

    /// Partition fields must route every version of the message.
    fn partitions(
        &mut self,
        raw: crate::channel::RawPartitions,
        message: &Message,
    ) -> Option<PartitionSpec> {
        let partitions = match (raw.values, raw.buckets) {
            (Some(values), None) => PartitionSpec::Values {
                field: raw.field.into(),
                values: values.into_iter().map(Into::into).collect(),
            },
            (None, Some(buckets)) => PartitionSpec::Buckets {
                field: raw.field.into(),
                buckets,
            },
            // The meta-schema's oneOf admits exactly one of the two.
            _ => return None,
        };
        for version in &message.versions {
            let at = format!("in {} v{}", message.name, version.version);
            match resolve_required_property(&version.schema, partitions.field()) {
                Err(e) => self.report("/partitions/field", format!("partition field {e} {at}")),
                Ok(property) => {
                    let kind = schema_type(&version.schema, property);
                    match (&partitions, kind) {
                        (PartitionSpec::Values { values, .. }, Some("string")) => {
                            let property = resolve_ref(&version.schema, property);
                            let enumerated = property.get("enum").and_then(Value::as_array);
                            for value in enumerated.into_iter().flatten() {
                                let value = value.as_str().unwrap_or_default();
                                if !values.iter().any(|v| v == value) {
                                    self.report(
                                        "/partitions/values",
                                        format!(
                                            "{value:?} of the field's enum {at} has no partition"
                                        ),
                                    );
                                }
                            }
                        }
                        (PartitionSpec::Buckets { .. }, Some("string" | "integer")) => {}
                        (PartitionSpec::Values { .. }, other) => self.report(
                            "/partitions/field",
                            format!(
                                "a partition field with named values must be a string, not {} {at}",
                                other.unwrap_or("untyped")
                            ),
                        ),
                        (PartitionSpec::Buckets { .. }, other) => self.report(
                            "/partitions/field",
                            format!(
                                "a hashed partition field must be a string or integer, not {} {at}",
                                other.unwrap_or("untyped")
                            ),
                        ),
                    }
                }
            }
        }
        Some(partitions)
    }
}

fn read_json(path: &Path, problems: &mut Problems) -> Option<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(path, "", format!("cannot read: {e}"));
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(value) => Some(value),
        Err(e) => {
            problems.push(path, "", format!("invalid JSON: {e}"));
            None
        }
    }
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `^[a-z][a-z0-9_]*$`: names that are Redis-key, Rust-module and file safe.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
