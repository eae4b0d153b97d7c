//! AsyncAPI 3.0.0 documents of the domains, generated from the same
//! registry as the contract crates, so that tools outside Rust (catalogs,
//! code generators in other languages, AsyncAPI Studio) see the channels
//! and messages courier runs by.
//!
//! One document per domain, [`document`]:
//!
//! - one channel per `channels.json` entry, keyed by the channel's name,
//!   whose `address` is the Redis key messages wait under (the stream, the
//!   queue, or the Pub/Sub channel name; docs/protocol.md section 1);
//! - one message per released message version, keyed `<message>_v<N>`,
//!   its payload the version's schema as a Multi Format Schema Object;
//! - one `send` operation per producer role and one `receive` operation
//!   per consumer role of each channel, `<role>_sends_<channel>` and
//!   `<role>_receives_<channel>`;
//! - every setting of the channel as an `x-courier-<setting>` extension,
//!   named and written as `channels.json` writes it, defaults filled in.
//!
//! Three choices follow from how AsyncAPI tools read a document:
//!
//! - **The hash tag is a parameter.** A key is
//!   `<namespace>:{<domain>.<channel>[#<partition>]}:<part>`, and its braces
//!   are literal: they make every key of a partition hash to one cluster
//!   slot. AsyncAPI reads every `{...}` of an address as a parameter and has
//!   no escape for a literal brace, so `prod:{contact_center.intake}:stream`
//!   would name a parameter `contact_center.intake`, and a `{partition}`
//!   inside the hash tag would nest braces the parser cannot read. The
//!   address is therefore `{namespace}:{hash_tag}:<part>`, and the
//!   `hash_tag` parameter lists every hash tag, braces included, as its
//!   `enum` (one per partition); substituting both parameters gives the
//!   exact key. The namespace is chosen when a client connects, so it has
//!   examples and no enum.
//! - **Payload schemas are embedded with their references rebased.** A
//!   version's schema refers to its own definitions (`#/$defs/Region`).
//!   Inside the AsyncAPI document a `#` reference is read from the
//!   document's root, so each `$ref` becomes a pointer into the embedded
//!   copy (`#/components/messages/<id>/payload/schema/$defs/Region`), and
//!   the copy drops `$id` and `$schema`: an `$id` would make the embedded
//!   schema a resource of its own, against which the rebased pointers do
//!   not resolve. The schema's `$id` is kept on the message as
//!   `x-courier-schema_id`, and its dialect is the payload's
//!   `schemaFormat`.
//! - **The schema format is named, not assumed.** AsyncAPI 3.0.0 lists JSON
//!   Schema draft-07 (`application/schema+json;version=draft-07`) among the
//!   formats every tool supports, and allows other values. courier schemas
//!   are draft 2020-12, so the payload says
//!   [`SCHEMA_FORMAT`] rather than claim draft-07.
//!
//! On the wire each message travels inside courier's envelope
//! (`schemas/courier/envelope.v1.json`), whose `schema` and `version` say
//! which message object of the channel it is; every message object carries
//! the same two values as `x-courier-schema` and `x-courier-version`.
//!
//! Output is deterministic: `serde_json` maps are sorted by key (the
//! workspace does not enable `preserve_order`), partitions keep their
//! declared order, and nothing depends on the clock.

use std::path::Path;

use courier_schema::duration::format_duration;
use courier_schema::{
    ChannelSpec, Domain, Durability, Message, MessageVersion, PartitionSpec, Registry, Transport,
};
use serde_json::{json, Map, Value};

use crate::names::version_type;
use crate::GeneratedFile;

/// The AsyncAPI version the documents follow.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// The `schemaFormat` of every payload: JSON Schema draft 2020-12, named the
/// way AsyncAPI names draft-07 (`application/schema+json;version=draft-07`).
/// AsyncAPI 3.0.0 has no value of its own for 2020-12 and allows custom
/// ones, whose support by a tool is optional.
pub const SCHEMA_FORMAT: &str = "application/schema+json;version=draft-2020-12";

/// Content type of every message: the envelope is JSON on every transport.
pub const CONTENT_TYPE: &str = "application/json";

/// Where the documents live, relative to the workspace root.
pub const ASYNCAPI_DIR: &str = "docs/asyncapi";

/// Prefix of every courier extension. AsyncAPI's text admits extension
/// names `^x-[\w\d\-\_]+$`, so names after it use letters, digits and `_`
/// only (the `channels.json` property names qualify).
pub const EXTENSION_PREFIX: &str = "x-courier-";

/// The root key that marks a document as generated (JSON has no comments),
/// holding [`crate::HEADER`]: `cargo xtask codegen` removes a generated
/// document whose domain no longer exists, and leaves other files alone.
pub const GENERATED_KEY: &str = "x-courier-generated";

/// The address parameter holding the namespace.
const NAMESPACE: &str = "namespace";

/// The address parameter holding the hash tag of the channel or partition.
const HASH_TAG: &str = "hash_tag";

/// Appended to the domain's description in `info`.
const ENVELOPE_NOTE: &str = "On the wire every message travels inside courier's envelope \
     (`schemas/courier/envelope.v1.json`, docs/protocol.md section 2): its `payload` holds \
     the message described here, and its `schema` and `version` name the message object \
     (`x-courier-schema`, `x-courier-version`).";

/// One document per domain, `docs/asyncapi/<domain>.json`, pretty-printed
/// with a final newline; `version` becomes every document's `info.version`.
pub fn generate(registry: &Registry, version: &str) -> Vec<GeneratedFile> {
    registry
        .domains
        .values()
        .map(|domain| {
            let text = serde_json::to_string_pretty(&document(domain, version))
                .expect("a serde_json::Value always serializes");
            GeneratedFile {
                path: Path::new(ASYNCAPI_DIR).join(format!("{}.json", domain.name)),
                contents: text + "\n",
            }
        })
        .collect()
}

/// The AsyncAPI 3.0.0 document of `domain`. `version` is the document's
/// `info.version`: AsyncAPI requires one, and a domain has no version of
/// its own (each message version does), so the caller chooses it.
pub fn document(domain: &Domain, version: &str) -> Value {
    let mut messages = Map::new();
    for message in domain.messages.values() {
        for released in &message.versions {
            messages.insert(
                message_id(&message.name, released.version),
                message_object(message, released),
            );
        }
    }
    let mut channels = Map::new();
    let mut operations = Map::new();
    for spec in domain.channels.values() {
        // The registry refuses a channel whose message has no file, so every
        // channel of a loaded domain finds its message.
        let Some(message) = domain.messages.get(spec.message()) else {
            continue;
        };
        channels.insert(spec.name.to_string(), channel_object(spec, message));
        operations.extend(channel_operations(spec, message));
    }
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": domain.name,
            "version": version,
            "description": format!("{}\n\n{ENVELOPE_NOTE}", domain.description),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
        GENERATED_KEY: crate::HEADER,
    })
}

/// The key of a message version under `components/messages` and in a
/// channel's `messages`: `interaction_v1`. Message names are identifiers,
/// so the id needs no escaping in a JSON pointer and no two collide.
pub fn message_id(message: &str, version: u32) -> String {
    format!("{message}_v{version}")
}

/// The part of a channel's keys where its messages wait
/// (`courier::keys::ChannelKeys::inbox`; a test checks they agree).
pub fn inbox_part(transport: Transport) -> &'static str {
    match transport {
        Transport::Stream => "stream",
        Transport::List | Transport::Priority => "queue",
        Transport::Pubsub => "broadcast",
    }
}

/// A channel's address: `{namespace}:{hash_tag}:stream` and the like.
pub fn address(transport: Transport) -> String {
    format!("{{{NAMESPACE}}}:{{{HASH_TAG}}}:{}", inbox_part(transport))
}

/// Every hash tag of a channel, braces included: `{contact_center.billing}`,
/// or one per partition in declared order, `{contact_center.intake#emea}`,
/// buckets numbered from 0.
pub fn hash_tags(spec: &ChannelSpec) -> Vec<String> {
    let qualified = spec.qualified_name();
    match &spec.partitions {
        None => vec![format!("{{{qualified}}}")],
        Some(PartitionSpec::Values { values, .. }) => values
            .iter()
            .map(|value| format!("{{{qualified}#{value}}}"))
            .collect(),
        Some(PartitionSpec::Buckets { buckets, .. }) => (0..*buckets)
            .map(|bucket| format!("{{{qualified}#{bucket}}}"))
            .collect(),
    }
}

/// The Parameters Object of a channel's address.
pub fn channel_parameters(spec: &ChannelSpec) -> Value {
    let qualified = spec.qualified_name();
    let about = match &spec.partitions {
        None => "The channel's Redis Cluster hash tag, braces included; every key of the \
                 channel carries it."
            .to_string(),
        Some(PartitionSpec::Values { field, .. }) => format!(
            "The Redis Cluster hash tag of one partition, braces included: \
             `{{{qualified}#<partition>}}`, where the partition is the value of the payload \
             field `{field}`."
        ),
        Some(PartitionSpec::Buckets { field, buckets }) => format!(
            "The Redis Cluster hash tag of one partition, braces included: \
             `{{{qualified}#<bucket>}}`, where the bucket is the 64-bit FNV-1a hash of the \
             payload field `{field}` modulo {buckets}."
        ),
    };
    let tags = hash_tags(spec);
    let mut hash_tag = json!({ "description": about, "enum": tags });
    if let [only] = tags.as_slice() {
        hash_tag["default"] = json!(only);
    }
    json!({
        NAMESPACE: {
            "description": "The namespace every producer and consumer of a deployment connects \
                            with (`prod`, `staging`); it holds no `{` or `}`.",
            "examples": ["prod", "staging"],
        },
        HASH_TAG: hash_tag,
    })
}

/// The Channel Object of `spec`, which carries `message`.
pub fn channel_object(spec: &ChannelSpec, message: &Message) -> Value {
    let mut messages = Map::new();
    for released in &message.versions {
        let id = message_id(&message.name, released.version);
        let reference = json!({ "$ref": format!("#/components/messages/{id}") });
        messages.insert(id, reference);
    }
    let mut channel = Map::new();
    channel.insert("address".into(), json!(address(spec.transport)));
    channel.insert("title".into(), json!(spec.qualified_name()));
    channel.insert("description".into(), json!(spec.description));
    channel.insert("parameters".into(), channel_parameters(spec));
    channel.insert("messages".into(), Value::Object(messages));
    channel.extend(channel_settings(spec));
    Value::Object(channel)
}

/// A channel's settings as `x-courier-<property>` extensions, each named
/// and written as in `channels.json` (durations as `"30s"`), defaults
/// filled in. A setting that does not apply to the transport is left out,
/// as `channels.json` refuses it there: a Pub/Sub channel has no
/// visibility timeout, attempts, backoff or durability; only a stream
/// has retention.
///
/// Every field of [`ChannelSpec`] is named below (no `..`), so a new
/// setting does not compile until it is rendered here too.
pub fn channel_settings(spec: &ChannelSpec) -> Map<String, Value> {
    let ChannelSpec {
        // The channel object's key, `title`, `description` and `messages`,
        // and its operations, say these.
        domain: _,
        name: _,
        schema: _,
        description: _,
        producers: _,
        consumers: _,
        transport,
        ttl,
        visibility_timeout,
        dedup_window,
        max_attempts,
        backoff,
        retention,
        max_depth,
        sla,
        partitions,
        compatibility,
        dependency,
        rate_limit,
        sla_notice,
        durability,
    } = spec;
    let mut out = Map::new();
    let mut put = |property: &str, value: Value| {
        out.insert(format!("{EXTENSION_PREFIX}{property}"), value);
    };
    put("transport", json!(transport.as_str()));
    put("ttl", json!(format_duration(*ttl)));
    put("dedup_window", json!(format_duration(*dedup_window)));
    put("compatibility", json!(compatibility.as_str()));
    if *transport != Transport::Pubsub {
        put(
            "visibility_timeout",
            json!(format_duration(*visibility_timeout)),
        );
        put("max_attempts", json!(max_attempts));
        put(
            "backoff",
            json!({
                "initial": format_duration(backoff.initial),
                "max": format_duration(backoff.max),
                "multiplier": backoff.multiplier,
            }),
        );
        put(
            "durability",
            match durability {
                Durability::Primary => json!("primary"),
                Durability::Replicated { replicas, timeout } => json!({
                    "replicas": replicas,
                    "timeout": format_duration(*timeout),
                }),
            },
        );
    }
    if *transport == Transport::Stream {
        let mut kept = Map::new();
        if let Some(max_len) = retention.max_len {
            kept.insert("max_len".into(), json!(max_len));
        }
        kept.insert("max_age".into(), json!(format_duration(retention.max_age)));
        put("retention", Value::Object(kept));
    }
    if let Some(depth) = max_depth {
        put("max_depth", json!(depth));
    }
    if let Some(sla) = sla {
        put("sla", json!(format_duration(*sla)));
    }
    if let Some(partitions) = partitions {
        put(
            "partitions",
            match partitions {
                PartitionSpec::Values { field, values } => {
                    json!({ "field": field, "values": values })
                }
                PartitionSpec::Buckets { field, buckets } => {
                    json!({ "field": field, "buckets": buckets })
                }
            },
        );
    }
    if let Some(dependency) = dependency {
        put(
            "dependency",
            json!({
                "name": dependency.name,
                "failure_threshold": dependency.failure_threshold,
                "window": format_duration(dependency.window),
                "cool_down": format_duration(dependency.cool_down),
            }),
        );
    }
    if let Some(rate) = rate_limit {
        let mut limit = Map::new();
        if let Some(name) = &rate.name {
            limit.insert("name".into(), json!(name));
        }
        limit.insert("per_second".into(), json!(rate.per_second));
        limit.insert("burst".into(), json!(rate.burst));
        put("rate_limit", Value::Object(limit));
    }
    if let Some(notice) = sla_notice {
        put("sla_notice", json!(notice.channel.name));
    }
    out
}

/// What a role does on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A producer role publishes.
    Send,
    /// A consumer role consumes.
    Receive,
}

impl Action {
    /// The operation's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Receive => "receive",
        }
    }

    /// The verb of an operation id.
    fn verb(self) -> &'static str {
        match self {
            Action::Send => "sends",
            Action::Receive => "receives",
        }
    }
}

/// `telephony_sends_intake`, `classifier_receives_intake`. Role and
/// channel names hold no `_sends_` or `_receives_` in practice; two ids
/// could only collide if one did.
pub fn operation_id(role: &str, action: Action, channel: &str) -> String {
    format!("{role}_{}_{channel}", action.verb())
}

/// The operations of one channel, by id: each producer role sends the
/// newest version, which is the only one a generated producer publishes;
/// each consumer role receives every version, as a generated consumer
/// reads them all.
pub fn channel_operations(spec: &ChannelSpec, message: &Message) -> Map<String, Value> {
    let reference = |version: u32| {
        json!({
            "$ref": format!(
                "#/channels/{}/messages/{}",
                spec.name,
                message_id(&message.name, version)
            )
        })
    };
    let sent = vec![reference(message.latest().version)];
    let received: Vec<Value> = message
        .versions
        .iter()
        .map(|released| reference(released.version))
        .collect();
    let qualified = spec.qualified_name();
    let mut out = Map::new();
    for (roles, action, messages) in [
        (&spec.producers, Action::Send, sent),
        (&spec.consumers, Action::Receive, received),
    ] {
        for role in roles.iter() {
            let title = match action {
                Action::Send => format!("{role} publishes on {qualified}"),
                Action::Receive => format!("{role} consumes {qualified}"),
            };
            out.insert(
                operation_id(role, action, &spec.name),
                json!({
                    "action": action.as_str(),
                    "channel": { "$ref": format!("#/channels/{}", spec.name) },
                    "title": title,
                    "messages": messages,
                    "x-courier-role": role,
                }),
            );
        }
    }
    out
}

/// The Message Object of one released version.
pub fn message_object(message: &Message, released: &MessageVersion) -> Value {
    let id = message_id(&message.name, released.version);
    let at = format!("/components/messages/{id}/payload/schema");
    let mut object = json!({
        "name": version_type(&message.name, released.version),
        "title": format!("{} v{}", released.title, released.version),
        "description": released.description,
        "contentType": CONTENT_TYPE,
        "payload": {
            "schemaFormat": SCHEMA_FORMAT,
            "schema": embedded_schema(&released.schema, &at),
        },
        "x-courier-schema": message.schema_name(),
        "x-courier-version": released.version,
        "x-courier-idempotency_key": released.idempotency_key,
    });
    if let Some(schema_id) = released.schema.get("$id").and_then(Value::as_str) {
        object["x-courier-schema_id"] = json!(schema_id);
    }
    object
}

/// A copy of a schema to embed at JSON pointer `at` of a document: without
/// `$id` and `$schema` (it is no longer a resource of its own), and with
/// every local reference (`#`, `#/...`) made a reference into the
/// document, so that it resolves from the document's root.
pub fn embedded_schema(schema: &Value, at: &str) -> Value {
    let mut copy = schema.clone();
    if let Value::Object(root) = &mut copy {
        root.remove("$id");
        root.remove("$schema");
    }
    rebase_refs(&mut copy, at);
    copy
}

/// Prefixes `at` to every local `$ref` in `schema` and its subschemas.
/// Values that are data rather than schemas (`const`, `enum`, `default`,
/// `examples`, extensions such as `x-courier`) are left alone, and in maps
/// from names to schemas (`properties`, `$defs`) only the schemas are
/// visited, so a property named `$ref` or `enum` is read as a name.
fn rebase_refs(schema: &mut Value, at: &str) {
    let Value::Object(map) = schema else {
        return;
    };
    for (keyword, value) in map.iter_mut() {
        match keyword.as_str() {
            "$ref" => {
                if let Value::String(reference) = value {
                    let rebased = reference
                        .strip_prefix('#')
                        .map(|pointer| format!("#{at}{pointer}"));
                    if let Some(rebased) = rebased {
                        *reference = rebased;
                    }
                }
            }
            "const" | "enum" | "default" | "examples" => {}
            extension if extension.starts_with("x-") => {}
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                if let Value::Object(named) = value {
                    for sub in named.values_mut() {
                        rebase_refs(sub, at);
                    }
                }
            }
            _ => match value {
                Value::Array(items) => {
                    for sub in items {
                        rebase_refs(sub, at);
                    }
                }
                other => rebase_refs(other, at),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeSet;
    use std::time::Duration;

    use courier_schema::{Backoff, ChannelRef, DependencySpec, RateSpec, Retention, SlaNoticeSpec};

    use super::*;

    fn spec(transport: Transport, partitions: Option<PartitionSpec>) -> ChannelSpec {
        ChannelSpec {
            partitions,
            ..ChannelSpec::new(
                "contact_center",
                "intake",
                "contact_center.interaction",
                transport,
            )
        }
    }

    fn regions() -> PartitionSpec {
        PartitionSpec::Values {
            field: "/region".into(),
            values: vec![Cow::from("amer"), Cow::from("emea"), Cow::from("apac")].into(),
        }
    }

    fn buckets(buckets: u32) -> PartitionSpec {
        PartitionSpec::Buckets {
            field: "/customer_id".into(),
            buckets,
        }
    }

    /// The `{name}` expressions of an address.
    fn expressions(address: &str) -> BTreeSet<String> {
        address
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
            .collect()
    }

    #[test]
    fn addresses_spell_the_runtimes_keys() {
        for transport in [
            Transport::Stream,
            Transport::List,
            Transport::Priority,
            Transport::Pubsub,
        ] {
            for partitions in [None, Some(regions()), Some(buckets(3))] {
                let spec = spec(transport, partitions);
                let address = address(transport);
                let expected: Vec<String> = courier::partition::all(&spec)
                    .iter()
                    .map(|partition| {
                        courier::keys::ChannelKeys::new("prod", &spec, partition.as_deref())
                            .inbox(transport)
                    })
                    .collect();
                let actual: Vec<String> = hash_tags(&spec)
                    .iter()
                    .map(|tag| {
                        address
                            .replace("{namespace}", "prod")
                            .replace("{hash_tag}", tag)
                    })
                    .collect();
                assert_eq!(actual, expected, "{transport:?} {:?}", spec.partitions);
            }
        }
    }

    #[test]
    fn parameters_are_exactly_the_address_expressions() {
        for partitions in [None, Some(regions()), Some(buckets(4))] {
            let spec = spec(Transport::Stream, partitions);
            let parameters = channel_parameters(&spec);
            let names: BTreeSet<String> = parameters.as_object().unwrap().keys().cloned().collect();
            assert_eq!(names, expressions(&address(spec.transport)));
            let tags = &parameters["hash_tag"]["enum"];
            assert_eq!(
                tags.as_array().unwrap().len(),
                courier::partition::all(&spec).len()
            );
        }
        let single = channel_parameters(&spec(Transport::List, None));
        assert_eq!(
            single["hash_tag"]["enum"],
            json!(["{contact_center.intake}"])
        );
        assert_eq!(
            single["hash_tag"]["default"],
            json!("{contact_center.intake}")
        );
        let regions = channel_parameters(&spec(Transport::Stream, Some(regions())));
        assert_eq!(
            regions["hash_tag"]["enum"],
            json!([
                "{contact_center.intake#amer}",
                "{contact_center.intake#emea}",
                "{contact_center.intake#apac}"
            ])
        );
        assert!(regions["hash_tag"].get("default").is_none());
    }

    #[test]
    fn settings_are_those_the_transport_has() {
        let keys = |spec: &ChannelSpec| -> Vec<String> {
            channel_settings(spec)
                .keys()
                .map(|k| k.trim_start_matches(EXTENSION_PREFIX).to_string())
                .collect()
        };
        assert_eq!(
            keys(&spec(Transport::Pubsub, None)),
            ["compatibility", "dedup_window", "transport", "ttl"]
        );
        assert_eq!(
            keys(&spec(Transport::List, None)),
            [
                "backoff",
                "compatibility",
                "dedup_window",
                "durability",
                "max_attempts",
                "transport",
                "ttl",
                "visibility_timeout"
            ]
        );
        assert!(keys(&spec(Transport::Stream, None)).contains(&"retention".to_string()));
    }

    #[test]
    fn settings_are_written_as_channels_json_writes_them() {
        let notice = ChannelSpec::new(
            "contact_center",
            "sla_breaches",
            "contact_center.sla_breach",
            Transport::Pubsub,
        );
        let full = ChannelSpec {
            ttl: Duration::from_secs(3600),
            dedup_window: Duration::from_secs(24 * 3600),
            backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(30),
                multiplier: 2.0,
            },
            retention: Retention {
                max_len: Some(1_000_000),
                max_age: Duration::from_secs(24 * 3600),
            },
            max_depth: Some(500_000),
            sla: Some(Duration::from_secs(15 * 60)),
            dependency: Some(DependencySpec {
                name: "crm".into(),
                failure_threshold: 500,
                window: Duration::from_secs(60),
                cool_down: Duration::from_secs(10),
            }),
            rate_limit: Some(RateSpec {
                name: Some("llm".into()),
                per_second: 500.0,
                burst: 50,
            }),
            sla_notice: Some(SlaNoticeSpec {
                channel: ChannelRef::Owned(Box::new(notice)),
                version: 1,
            }),
            durability: Durability::Replicated {
                replicas: 1,
                timeout: Duration::from_secs(2),
            },
            ..spec(Transport::Stream, Some(regions()))
        };
        assert_eq!(
            Value::Object(channel_settings(&full)),
            json!({
                "x-courier-backoff": {"initial": "200ms", "max": "30s", "multiplier": 2.0},
                "x-courier-compatibility": "backward",
                "x-courier-dedup_window": "1d",
                "x-courier-dependency": {
                    "name": "crm", "failure_threshold": 500, "window": "1m", "cool_down": "10s"
                },
                "x-courier-durability": {"replicas": 1, "timeout": "2s"},
                "x-courier-max_attempts": 5,
                "x-courier-max_depth": 500000,
                "x-courier-partitions": {"field": "/region", "values": ["amer", "emea", "apac"]},
                "x-courier-rate_limit": {"name": "llm", "per_second": 500.0, "burst": 50},
                "x-courier-retention": {"max_len": 1000000, "max_age": "1d"},
                "x-courier-sla": "15m",
                "x-courier-sla_notice": "sla_breaches",
                "x-courier-transport": "stream",
                "x-courier-ttl": "1h",
                "x-courier-visibility_timeout": "30s",
            })
        );
    }

    #[test]
    fn operation_ids() {
        let check = |role: &str, action: Action, channel: &str, expected: &str| {
            assert_eq!(operation_id(role, action, channel), expected);
        };
        check(
            "telephony",
            Action::Send,
            "intake",
            "telephony_sends_intake",
        );
        check(
            "classifier",
            Action::Receive,
            "intake",
            "classifier_receives_intake",
        );
        check(
            "human_desk",
            Action::Send,
            "feedback",
            "human_desk_sends_feedback",
        );
    }

    #[test]
    fn embedded_schemas_refer_into_the_document() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://courier.example/schemas/d/m.v1.json",
            "x-courier": {"idempotency_key": ["/id"], "$ref": "#/left/alone"},
            "type": "object",
            "properties": {
                "region": {"$ref": "#/$defs/Region"},
                "next": {"$ref": "#"},
                "enum": {"$ref": "#/$defs/Region"},
                "$ref": {"type": "string"},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
                "either": {"oneOf": [{"$ref": "#/$defs/Tag"}, {"type": "null"}]},
                "fixed": {"const": {"$ref": "#/data"}, "default": {"$ref": "#/data"}},
                "choice": {"enum": [{"$ref": "#/data"}]}
            },
            "$defs": {
                "Region": {"type": "string", "enum": ["amer", "emea"]},
                "Tag": {"allOf": [{"$ref": "#/$defs/Region"}]}
            }
        });
        let at = "/components/messages/m_v1/payload/schema";
        let embedded = embedded_schema(&schema, at);
        assert!(embedded.get("$id").is_none());
        assert!(embedded.get("$schema").is_none());
        let check = |pointer: &str, expected: &str| {
            assert_eq!(
                embedded.pointer(pointer),
                Some(&json!(expected)),
                "{pointer}"
            );
        };
        check("/properties/region/$ref", &format!("#{at}/$defs/Region"));
        check("/properties/next/$ref", &format!("#{at}"));
        check("/properties/enum/$ref", &format!("#{at}/$defs/Region"));
        check("/properties/$ref/type", "string");
        check("/properties/tags/items/$ref", &format!("#{at}/$defs/Tag"));
        check(
            "/properties/either/oneOf/0/$ref",
            &format!("#{at}/$defs/Tag"),
        );
        check("/$defs/Tag/allOf/0/$ref", &format!("#{at}/$defs/Region"));
        check("/properties/fixed/const/$ref", "#/data");
        check("/properties/fixed/default/$ref", "#/data");
        check("/properties/choice/enum/0/$ref", "#/data");
        check("/x-courier/$ref", "#/left/alone");
        // The original is untouched.
        assert_eq!(
            schema["properties"]["region"]["$ref"],
            json!("#/$defs/Region")
        );
    }

    /// Every `$ref` string under `value`, with where it is.
    fn references(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, sub) in map {
                    match (key.as_str(), sub) {
                        ("$ref", Value::String(reference)) => {
                            out.push((at.to_string(), reference.clone()))
                        }
                        _ => references(sub, &format!("{at}/{key}"), out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, sub) in items.iter().enumerate() {
                    references(sub, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// The checks the AsyncAPI parser makes beyond the JSON Schema of the
    /// specification, on the document of every domain of `schemas/`.
    #[test]
    fn documents_of_the_workspace_hold_together() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let registry = Registry::load(&root).unwrap_or_else(|problems| panic!("{problems}"));
        let extension = |key: &str| {
            key.strip_prefix("x-").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
        };
        for domain in registry.domains.values() {
            let doc = document(domain, "0.1.0");
            let name = &domain.name;
            assert_eq!(doc["asyncapi"], json!("3.0.0"));
            assert_eq!(doc["info"]["title"], json!(name));
            assert_eq!(doc["info"]["version"], json!("0.1.0"));

            let mut refs = Vec::new();
            references(&doc, "", &mut refs);
            assert!(!refs.is_empty());
            for (at, reference) in &refs {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("{name}: {at}: {reference} is not local"));
                assert!(
                    doc.pointer(pointer).is_some(),
                    "{name}: {at}: {reference} does not resolve"
                );
            }

            let channels = doc["channels"].as_object().unwrap();
            assert_eq!(channels.len(), domain.channels.len());
            for (id, channel) in channels {
                let address = channel["address"].as_str().unwrap();
                let parameters: BTreeSet<String> = channel["parameters"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect();
                assert_eq!(parameters, expressions(address), "{name}: channel {id}");
                for key in channel.as_object().unwrap().keys() {
                    let known = ["address", "title", "description", "parameters", "messages"];
                    assert!(
                        known.contains(&key.as_str()) || extension(key),
                        "{name}: channel {id}: key {key}"
                    );
                }
            }

            for (id, operation) in doc["operations"].as_object().unwrap() {
                let channel = operation["channel"]["$ref"].as_str().unwrap();
                let prefix = format!("{channel}/messages/");
                for message in operation["messages"].as_array().unwrap() {
                    let reference = message["$ref"].as_str().unwrap();
                    assert!(
                        reference.starts_with(&prefix),
                        "{name}: operation {id}: {reference} is not a message of {channel}"
                    );
                }
            }

            for (id, message) in doc["components"]["messages"].as_object().unwrap() {
                assert_eq!(message["payload"]["schemaFormat"], json!(SCHEMA_FORMAT));
                let schema = &message["payload"]["schema"];
                assert!(schema.get("$id").is_none() && schema.get("$schema").is_none());
                for key in message.as_object().unwrap().keys() {
                    assert!(
                        !key.starts_with("x") || extension(key),
                        "{name}: message {id}: key {key}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_contact_center_document() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let registry = Registry::load(&root).unwrap_or_else(|problems| panic!("{problems}"));
        let doc = document(&registry.domains["contact_center"], "0.1.0");
        let intake = &doc["channels"]["intake"];
        assert_eq!(intake["address"], json!("{namespace}:{hash_tag}:stream"));
        assert_eq!(intake["x-courier-partitions"]["field"], json!("/region"));
        assert_eq!(
            intake["messages"]["interaction_v1"]["$ref"],
            json!("#/components/messages/interaction_v1")
        );
        let send = &doc["operations"]["telephony_sends_intake"];
        assert_eq!(send["action"], json!("send"));
        assert_eq!(send["channel"]["$ref"], json!("#/channels/intake"));
        let receive = &doc["operations"]["specialist_receives_billing"];
        assert_eq!(
            receive["messages"],
            json!([
                {"$ref": "#/channels/billing/messages/classified_task_v1"},
                {"$ref": "#/channels/billing/messages/classified_task_v2"}
            ])
        );
        assert_eq!(
            doc["operations"]["classifier_sends_billing"]["messages"],
            json!([{"$ref": "#/channels/billing/messages/classified_task_v2"}])
        );
        let message = &doc["components"]["messages"]["interaction_v1"];
        assert_eq!(
            message["x-courier-schema"],
            json!("contact_center.interaction")
        );
        assert_eq!(message["x-courier-version"], json!(1));
        assert_eq!(
            message["x-courier-idempotency_key"],
            json!(["/interaction_id"])
        );
        assert_eq!(
            message["payload"]["schema"]["properties"]["region"]["$ref"],
            json!("#/components/messages/interaction_v1/payload/schema/$defs/Region")
        );
    }
}
