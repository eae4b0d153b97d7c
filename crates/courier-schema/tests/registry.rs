//! The registry's checks, one test per kind of problem, on small schema
//! folders written to a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use courier_schema::{ChannelSpec, Durability, Registry, Transport};
use serde_json::{json, Value};

/// A schemas folder in a fresh temporary directory, removed on drop.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new(files: &[(&str, String)]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "courier-registry-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        for (path, contents) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        Self { root }
    }

    fn load(&self) -> Result<Registry, Vec<String>> {
        let courier = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/courier");
        Registry::load_with_courier(&self.root, &courier).map_err(|problems| {
            let prefix = format!("{}/", self.root.display());
            problems
                .iter()
                .map(|p| p.to_string().replace(&prefix, ""))
                .collect()
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A valid message schema for `shop/<name>.v<version>.json`.
fn message(name: &str, version: u32) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://example.com/shop/{name}.v{version}.json"),
        "title": "Order",
        "description": "An order.",
        "x-courier": { "idempotency_key": ["/order_id"] },
        "type": "object",
        "additionalProperties": false,
        "required": ["order_id", "region"],
        "properties": {
            "order_id": { "type": "string" },
            "region": { "type": "string", "enum": ["eu", "us"] },
            "note": { "type": "string" }
        }
    })
}

fn channels(channels: Value) -> String {
    json!({ "domain": "shop", "description": "A shop.", "channels": channels }).to_string()
}

fn orders_channel() -> Value {
    json!({
        "description": "Orders.",
        "message": "order",
        "transport": "stream",
        "compatibility": "backward",
        "producers": ["web"],
        "consumers": ["fulfilment"]
    })
}

/// Loads `shop/` with the given message files and channel file, and checks
/// that exactly `expected` problems are reported.
fn check(messages: &[(&str, Value)], channel_file: Option<String>, expected: &[&str]) {
    let mut files: Vec<(&str, String)> =
        messages.iter().map(|(p, v)| (*p, v.to_string())).collect();
    let channel_file =
        channel_file.unwrap_or_else(|| channels(json!({ "orders": orders_channel() })));
    files.push(("shop/channels.json", channel_file));
    let fixture = Fixture::new(&files);
    match fixture.load() {
        Ok(_) if expected.is_empty() => {}
        Ok(_) => panic!("expected problems {expected:#?}, the registry loaded"),
        Err(actual) => assert_eq!(actual, expected, "problems differ"),
    }
}

fn with(mut value: Value, pointer: &str, new: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() {
        &mut value
    } else {
        value.pointer_mut(parent).unwrap()
    };
    parent.as_object_mut().unwrap().insert(key.to_string(), new);
    value
}

fn without(mut value: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() {
        &mut value
    } else {
        value.pointer_mut(parent).unwrap()
    };
    parent.as_object_mut().unwrap().remove(key);
    value
}

#[test]
fn a_sound_domain_loads_with_defaults() {
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", message("order", 1).to_string()),
        ("shop/order.v2.json", message("order", 2).to_string()),
        (
            "shop/channels.json",
            channels(json!({ "orders": orders_channel() })),
        ),
    ]);
    let registry = fixture.load().unwrap();
    let shop = &registry.domains["shop"];
    let order = &shop.messages["order"];
    assert_eq!(order.schema_name(), "shop.order");
    assert_eq!(order.latest().version, 2);
    assert_eq!(order.latest().idempotency_key, ["/order_id"]);
    let orders = &shop.channels["orders"];
    assert_eq!(orders.transport, Transport::Stream);
    assert_eq!(orders.ttl.as_secs(), 24 * 3600);
    assert_eq!(orders.dedup_window, orders.ttl);
    assert_eq!(orders.retention.max_age, orders.ttl * 2);
    assert_eq!(orders.max_attempts, 5);
    assert_eq!(orders.durability, Durability::Primary);
    // A spec written by hand starts from the same defaults.
    assert_eq!(
        *orders,
        ChannelSpec {
            description: "Orders.".into(),
            producers: vec!["web".into()].into(),
            consumers: vec!["fulfilment".into()].into(),
            ..ChannelSpec::new("shop", "orders", "shop.order", Transport::Stream)
        }
    );
    assert_eq!(orders.message(), "order");
}

#[test]
fn durability_is_primary_replicated_or_tuned() {
    let replicated = with(orders_channel(), "/durability", json!("replicated"));
    let tuned = with(
        orders_channel(),
        "/durability",
        json!({ "replicas": 2, "timeout": "500ms" }),
    );
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", message("order", 1).to_string()),
        (
            "shop/channels.json",
            channels(json!({ "orders": replicated, "tuned": tuned })),
        ),
    ]);
    let registry = fixture.load().unwrap();
    let shop = &registry.domains["shop"];
    assert_eq!(
        shop.channels["orders"].durability,
        Durability::Replicated {
            replicas: 1,
            timeout: Duration::from_secs(2)
        }
    );
    assert_eq!(
        shop.channels["tuned"].durability,
        Durability::Replicated {
            replicas: 2,
            timeout: Duration::from_millis(500)
        }
    );

    let vague = with(orders_channel(), "/durability", json!("durable"));
    let bad_timeout = with(
        orders_channel(),
        "/durability",
        json!({ "timeout": "soon" }),
    );
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", message("order", 1).to_string()),
        (
            "shop/channels.json",
            channels(json!({ "vague": vague, "late": bad_timeout })),
        ),
    ]);
    let problems = fixture.load().unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/channels/vague/durability")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/channels/late/durability")),
        "{problems:#?}"
    );
}

#[test]
fn invalid_json_names_line_and_column() {
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", "{\"title\": ".to_string()),
        ("shop/channels.json", channels(json!({}))),
    ]);
    assert_eq!(
        fixture.load().unwrap_err(),
        ["shop/order.v1.json:/: invalid JSON: EOF while parsing a value at line 1 column 10"]
    );
}

#[test]
fn root_must_be_an_object_schema() {
    check(
        &[(
            "shop/order.v1.json",
            with(message("order", 1), "/type", json!("array")),
        )],
        None,
        &["shop/order.v1.json:/type: the root of a message schema must be \"type\": \"object\""],
    );
}

#[test]
fn id_title_description_and_draft_are_required() {
    let bare = ["/$id", "/title", "/description", "/$schema"]
        .into_iter()
        .fold(message("order", 1), without);
    check(
        &[("shop/order.v1.json", bare)],
        None,
        &[
            "shop/order.v1.json:/: missing \"$id\"; use a URI ending with \"/shop/order.v1.json\"",
            "shop/order.v1.json:/: missing \"$schema\"; courier schemas declare \"https://json-schema.org/draft/2020-12/schema\"",
            "shop/order.v1.json:/: missing \"description\"; every message schema has a non-empty description",
            "shop/order.v1.json:/: missing \"title\"; every message schema has a non-empty title",
        ],
    );
}

#[test]
fn id_must_agree_with_file_name() {
    check(
        &[("shop/order.v1.json", message("order", 2))],
        None,
        &["shop/order.v1.json:/$id: $id \"https://example.com/shop/order.v2.json\" does not agree with the file name; it must end with \"/shop/order.v1.json\""],
    );
}

#[test]
fn versions_are_contiguous_from_one() {
    check(
        &[
            ("shop/order.v1.json", message("order", 1)),
            ("shop/order.v3.json", message("order", 3)),
        ],
        None,
        &["shop/order.v3.json:/: versions of \"order\" must be contiguous from v1; missing v2"],
    );
}

#[test]
fn draft_07_and_generator_unsafe_keywords_are_refused() {
    let schema = with(
        message("order", 1),
        "/properties/note",
        json!({ "type": "string", "not": { "const": "x" } }),
    );
    let schema = with(schema, "/definitions", json!({}));
    let schema = with(
        schema,
        "/properties/when",
        json!({ "if": { "type": "string" }, "then": { "minLength": 1 } }),
    );
    let mut expected: Vec<String> = Vec::new();
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", schema.to_string()),
        (
            "shop/channels.json",
            channels(json!({ "orders": orders_channel() })),
        ),
    ]);
    for problem in fixture.load().unwrap_err() {
        expected.push(problem);
    }
    let joined = expected.join("\n");
    for needle in [
        "shop/order.v1.json:/definitions: ",
        "draft-07",
        "shop/order.v1.json:/properties/note/not: ",
        "shop/order.v1.json:/properties/when/if: ",
        "shop/order.v1.json:/properties/when/then: ",
    ] {
        assert!(joined.contains(needle), "{needle:?} not in:\n{joined}");
    }
}

#[test]
fn every_object_says_whether_it_is_open() {
    let schema = with(
        message("order", 1),
        "/properties/address",
        json!({ "type": "object", "properties": { "city": { "type": "string" } } }),
    );
    check(
        &[("shop/order.v1.json", schema)],
        None,
        &["shop/order.v1.json:/properties/address: object schema without an explicit \"additionalProperties\"; compatibility checks need to know whether unknown fields are allowed"],
    );
}

#[test]
fn idempotency_keys_resolve_to_required_strings_or_integers() {
    let schema = with(
        message("order", 1),
        "/x-courier",
        json!({ "idempotency_key": ["/note", "/missing", "/region", "nope"], "extra": 1 }),
    );
    let schema = with(schema, "/properties/region", json!({ "type": "boolean" }));
    check(
        &[("shop/order.v1.json", schema)],
        None,
        &[
            "shop/order.v1.json:/x-courier/extra: unknown x-courier setting \"extra\"; known: \"idempotency_key\"",
            "shop/order.v1.json:/x-courier/idempotency_key/0: idempotency key \"/note\" must be required: \"note\" is optional",
            "shop/order.v1.json:/x-courier/idempotency_key/1: idempotency key \"/missing\" names no property: \"missing\" is not declared",
            "shop/order.v1.json:/x-courier/idempotency_key/2: idempotency key \"/region\" must be a string or integer property, not boolean",
            "shop/order.v1.json:/x-courier/idempotency_key/3: idempotency key \"nope\" is not a JSON pointer (it must start with \"/\")",
        ],
    );
}

#[test]
fn idempotency_key_block_is_required() {
    check(
        &[("shop/order.v1.json", without(message("order", 1), "/x-courier"))],
        None,
        &["shop/order.v1.json:/: missing \"x-courier\": {\"idempotency_key\": [\"/field\"]}; every message names the fields that identify it"],
    );
}

#[test]
fn channels_file_is_checked_against_the_meta_schema() {
    let channel = with(orders_channel(), "/transport", json!("queue"));
    let channel = with(channel, "/max_attempts", json!(0));
    let channel = with(channel, "/colour", json!("red"));
    let channel = without(channel, "/consumers");
    check(
        &[("shop/order.v1.json", message("order", 1))],
        Some(channels(json!({ "orders": channel }))),
        &[
            "shop/channels.json:/channels/orders: missing required property \"consumers\"",
            "shop/channels.json:/channels/orders/colour: property \"colour\" is not allowed (additionalProperties is false)",
            "shop/channels.json:/channels/orders/max_attempts: 0 is less than the minimum 1",
            "shop/channels.json:/channels/orders/transport: \"queue\" is not one of \"stream\", \"list\", \"priority\", \"pubsub\"",
        ],
    );
}

#[test]
fn channel_rules_beyond_the_meta_schema() {
    let orders = with(orders_channel(), "/message", json!("invoice"));
    let late = with(orders_channel(), "/ttl", json!("99999999999999999999d"));
    let late = with(late, "/sla", json!("5m"));
    let late = with(late, "/backoff", json!({ "initial": "1m", "max": "1s" }));
    let late = with(late, "/retention", json!({ "max_age": "1s" }));
    let news = with(orders_channel(), "/transport", json!("pubsub"));
    let news = with(news, "/max_attempts", json!(3));
    let news = with(news, "/rate_limit", json!({"per_second": 10}));
    let news = with(news, "/durability", json!("replicated"));
    check(
        &[("shop/order.v1.json", message("order", 1))],
        Some(
            json!({
                "domain": "store",
                "description": "A shop.",
                "channels": { "orders": orders, "late": late, "news": news }
            })
            .to_string(),
        ),
        &[
            "shop/channels.json:/channels/late/backoff: backoff initial must not be greater than backoff max",
            "shop/channels.json:/channels/late/retention/max_age: retention max_age is shorter than the ttl: live messages would be trimmed away",
            "shop/channels.json:/channels/late/sla: sla does not apply to stream channels, only to priority channels",
            "shop/channels.json:/channels/late/ttl: \"99999999999999999999d\" is too large",
            "shop/channels.json:/channels/news/durability: durability does not apply to pubsub channels, only to stream, list and priority channels",
            "shop/channels.json:/channels/news/max_attempts: max_attempts does not apply to pubsub channels, only to stream, list and priority channels",
            "shop/channels.json:/channels/news/rate_limit: rate_limit does not apply to pubsub channels, only to stream, list and priority channels",
            "shop/channels.json:/channels/orders/message: unknown message \"invoice\"; this domain has order",
            "shop/channels.json:/domain: domain \"store\" does not match its folder name \"shop\"",
        ],
    );
}

#[test]
fn partitions_route_every_version() {
    let by_region = |values: Value| {
        with(
            orders_channel(),
            "/partitions",
            json!({ "field": "/region", "values": values }),
        )
    };
    check(
        &[("shop/order.v1.json", message("order", 1))],
        Some(channels(json!({ "orders": by_region(json!(["eu"])) }))),
        &["shop/channels.json:/channels/orders/partitions/values: \"us\" of the field's enum in order v1 has no partition"],
    );
    let by_note = with(
        orders_channel(),
        "/partitions",
        json!({ "field": "/note", "buckets": 4 }),
    );
    check(
        &[("shop/order.v1.json", message("order", 1))],
        Some(channels(json!({ "orders": by_note }))),
        &["shop/channels.json:/channels/orders/partitions/field: partition field \"/note\" must be required: \"note\" is optional in order v1"],
    );
    check(
        &[("shop/order.v1.json", message("order", 1))],
        Some(channels(
            json!({ "orders": by_region(json!(["eu", "us"])) }),
        )),
        &[],
    );
}

#[test]
fn stray_files_and_missing_channels_are_reported() {
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", message("order", 1).to_string()),
        ("shop/order.json", "{}".to_string()),
        ("shop/order.v01.json", "{}".to_string()),
        ("README.md", "hello".to_string()),
        ("Bad-Domain/x.v1.json", "{}".to_string()),
    ]);
    assert_eq!(
        fixture.load().unwrap_err(),
        [
            "Bad-Domain:/: domain folder name \"Bad-Domain\" must match ^[a-z][a-z0-9_]*$",
            "README.md:/: unexpected file; schemas live in schemas/<domain>/ folders",
            "shop/channels.json:/: missing channels.json; every domain declares its channels",
            "shop/order.json:/: unexpected file; expected channels.json, compat-exceptions.json or <message>.v<N>.json",
            "shop/order.v01.json:/: unexpected file; expected channels.json, compat-exceptions.json or <message>.v<N>.json",
        ]
    );
}

#[test]
fn the_repository_schemas_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let registry = Registry::load(&root).unwrap_or_else(|problems| panic!("{problems}"));
    let domain = &registry.domains["contact_center"];
    assert!(domain.messages["classified_task"].versions.len() >= 2);
    assert_eq!(registry.envelope.schema_name(), "courier.envelope");
}

#[test]
fn compat_exceptions_name_a_version_a_rule_and_a_reason() {
    let exceptions = json!({"exceptions": [
        {"message": "order", "version": 1, "rule": "REQUIRED_ADDED", "pointer": "/required", "reason": "reviewed"},
        {"message": "order", "version": 4, "rule": "NO_SUCH_RULE", "pointer": "/", "reason": " "}
    ]});
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", message("order", 1).to_string()),
        (
            "shop/channels.json",
            channels(json!({ "orders": orders_channel() })),
        ),
        ("shop/compat-exceptions.json", exceptions.to_string()),
    ]);
    assert_eq!(
        fixture.load().unwrap_err(),
        [
            "shop/compat-exceptions.json:/exceptions/1/reason: an exception needs a reason a reviewer can judge",
            "shop/compat-exceptions.json:/exceptions/1/rule: unknown rule \"NO_SUCH_RULE\"",
            "shop/compat-exceptions.json:/exceptions/1/version: no message order.v4",
        ]
    );
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", message("order", 1).to_string()),
        (
            "shop/channels.json",
            channels(json!({ "orders": orders_channel() })),
        ),
        (
            "shop/compat-exceptions.json",
            json!({"exceptions": [{"message": "order"}]}).to_string(),
        ),
    ]);
    let problems = fixture.load().unwrap_err();
    assert!(
        problems[0].starts_with("shop/compat-exceptions.json:/: missing field `version`"),
        "{problems:?}"
    );
}

#[test]
fn an_sla_notice_channel_must_carry_courier_notices() {
    let mut queue = with(orders_channel(), "/transport", json!("priority"));
    queue = with(queue, "/sla", json!("5m"));
    let notices = with(orders_channel(), "/transport", json!("pubsub"));
    check(
        &[("shop/order.v1.json", message("order", 1))],
        Some(channels(json!({
            "orders": with(queue.clone(), "/sla_notice", json!("nowhere")),
        }))),
        &["shop/channels.json:/channels/orders/sla_notice: no channel \"nowhere\" in this domain"],
    );
    // The order message lacks the notice's fields and is closed.
    let problems = {
        let fixture = Fixture::new(&[
            ("shop/order.v1.json", message("order", 1).to_string()),
            (
                "shop/channels.json",
                channels(json!({
                    "orders": with(queue, "/sla_notice", json!("notices")),
                    "notices": notices,
                })),
            ),
        ]);
        fixture.load().unwrap_err()
    };
    assert!(!problems.is_empty());
    assert!(problems.iter().all(|p| p.starts_with(
        "shop/channels.json:/channels/orders/sla_notice: order v1 cannot carry courier's SLA notices: "
    )), "{problems:#?}");
    assert!(
        problems.iter().any(|p| p.contains("PROPERTY_REMOVED")),
        "{problems:#?}"
    );
}

/// A message that carries courier's SLA notices (the notice schema itself,
/// as a message of the shop domain).
fn breach() -> Value {
    let notice: Value =
        serde_json::from_str(include_str!("../../../schemas/courier/sla_notice.v1.json")).unwrap();
    let notice = with(
        notice,
        "/$id",
        json!("https://example.com/shop/breach.v1.json"),
    );
    with(
        notice,
        "/x-courier",
        json!({ "idempotency_key": ["/message_id"] }),
    )
}

fn announcing(target: &str) -> Value {
    let queue = with(orders_channel(), "/transport", json!("priority"));
    let queue = with(queue, "/message", json!("breach"));
    with(queue, "/sla_notice", json!(target))
}

#[test]
fn an_sla_notice_carries_the_notice_channel_and_its_newest_version() {
    let notices = with(orders_channel(), "/transport", json!("pubsub"));
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", message("order", 1).to_string()),
        ("shop/breach.v1.json", breach().to_string()),
        (
            "shop/channels.json",
            channels(json!({
                "orders": announcing("relay"),
                "relay": announcing("notices"),
                "notices": with(notices, "/message", json!("breach")),
            })),
        ),
    ]);
    let registry = fixture.load().unwrap();
    let shop = &registry.domains["shop"];
    let notice = shop.channels["orders"].sla_notice.as_ref().unwrap();
    assert_eq!(notice.version, 1);
    // The whole spec of the notice channel, its own notice included.
    assert_eq!(*notice.channel, shop.channels["relay"]);
    let relayed = notice.channel.sla_notice.as_ref().unwrap();
    assert_eq!(*relayed.channel, shop.channels["notices"]);
    assert_eq!(shop.channels["notices"].sla_notice, None);
}

#[test]
fn sla_notice_channels_must_not_form_a_cycle() {
    let fixture = Fixture::new(&[
        ("shop/order.v1.json", message("order", 1).to_string()),
        ("shop/breach.v1.json", breach().to_string()),
        (
            "shop/channels.json",
            channels(json!({
                "first": announcing("second"),
                "second": announcing("first"),
                "alone": announcing("alone"),
            })),
        ),
    ]);
    assert_eq!(
        fixture.load().unwrap_err(),
        [
            "shop/channels.json:/channels/alone/sla_notice: sla_notice \"alone\" leads back to \"alone\": notice channels must not form a cycle",
            "shop/channels.json:/channels/first/sla_notice: sla_notice \"second\" leads back to \"first\": notice channels must not form a cycle",
            "shop/channels.json:/channels/second/sla_notice: sla_notice \"first\" leads back to \"second\": notice channels must not form a cycle",
        ]
    );
}
