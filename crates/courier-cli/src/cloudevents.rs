//! courier messages as CloudEvents 1.0, in the JSON event format
//! (structured mode): what `courier peek --format cloudevents` and
//! `courier export --format cloudevents` write, and what `courier import`
//! reads back. docs/cloudevents.md is the mapping; this module is its one
//! implementation.
//!
//! Each envelope field has an attribute: `id`; `source`
//! `courier://<domain>/<channel>`; `type` `<schema>.v<version>`; `time`
//! (`created_at`); `subject` (the idempotency key); `data` (the payload);
//! `dataschema` (the version's `$id`); the documented extensions
//! `expirytime`, `traceparent`, `correlationid` and `partitionkey`; and
//! courier's own `courierattempt`, `courierproducer`, `courierpriority`,
//! `courierhandledby` and `couriergroups`.

use courier::{ChannelSpec, Envelope};
use courier_schema::Registry;
use serde_json::{json, Map, Value};

/// The CloudEvents version written and read.
pub const SPEC_VERSION: &str = "1.0";

/// The `datacontenttype` of every event: the payload is JSON.
pub const CONTENT_TYPE: &str = "application/json";

/// What an export knows of a message besides its envelope.
#[derive(Debug, Default)]
pub struct Context<'a> {
    /// The partition it was read from.
    pub partition: Option<&'a str>,
    /// With `export --group`: the groups that handled it, and every group
    /// asked about.
    pub handled: Option<(&'a [&'a String], &'a [String])>,
}

/// The event of `envelope`, read from `spec`'s channel.
pub fn from_envelope(
    spec: &ChannelSpec,
    registry: Option<&Registry>,
    envelope: &Value,
    context: &Context<'_>,
) -> Value {
    let field = |name: &str| envelope.get(name).cloned().unwrap_or(Value::Null);
    let schema = envelope.get("schema").and_then(Value::as_str).unwrap_or("");
    let version = envelope.get("version").and_then(Value::as_u64).unwrap_or(0);
    let mut event = Map::new();
    let mut put = |name: &str, value: Value| {
        if !value.is_null() {
            event.insert(name.to_owned(), value);
        }
    };
    put("specversion", json!(SPEC_VERSION));
    put("id", field("id"));
    put(
        "source",
        json!(format!("courier://{}/{}", spec.domain, spec.name)),
    );
    put("type", json!(format!("{schema}.v{version}")));
    put("time", field("created_at"));
    put("datacontenttype", json!(CONTENT_TYPE));
    let dataschema = registry
        .and_then(|r| r.message(schema))
        .and_then(|m| m.version(u32::try_from(version).ok()?))
        .and_then(|v| v.schema.get("$id").cloned());
    put("dataschema", dataschema.unwrap_or(Value::Null));
    put("subject", field("key"));
    put("expirytime", field("expires_at"));
    put("traceparent", field("traceparent"));
    put("correlationid", field("correlation_id"));
    put(
        "partitionkey",
        context.partition.map_or(Value::Null, |p| json!(p)),
    );
    put("courierattempt", field("attempt"));
    put("courierproducer", field("producer"));
    put("courierpriority", field("priority"));
    if let Some((by, groups)) = context.handled {
        put(
            "courierhandledby",
            json!(join(by.iter().map(|g| g.as_str()))),
        );
        put(
            "couriergroups",
            json!(join(groups.iter().map(String::as_str))),
        );
    }
    put("data", field("payload"));
    Value::Object(event)
}

/// Whether a JSON line is a CloudEvent rather than one of courier's own
/// export lines.
pub fn is_event(line: &Value) -> bool {
    line.get("specversion").is_some()
}

/// The export line (`{"envelope": ..., "handled_by": ..., "groups": ...}`)
/// an event stands for, ready for `courier import`; or why it cannot be
/// imported. The key is `subject`, or derived from `data` by its version's
/// key fields when there is none; `time`, `expirytime`, `courierattempt`
/// and `courierproducer` are kept in the envelope, and the import writes
/// its own times, attempt and producer.
pub fn to_export_line(event: &Value, registry: &Registry) -> Result<Value, String> {
    let text = |name: &str| event.get(name).and_then(Value::as_str);
    match text("specversion") {
        Some(SPEC_VERSION) => {}
        Some(other) => return Err(format!("specversion {other:?}; courier reads \"1.0\"")),
        None => return Err("no specversion".to_owned()),
    }
    if event.get("data_base64").is_some() {
        return Err("data_base64: courier payloads are JSON, carried in \"data\"".to_owned());
    }
    if let Some(kind) = text("datacontenttype") {
        let json =
            kind == CONTENT_TYPE || kind.split(';').next().is_some_and(|k| k.ends_with("+json"));
        if !json {
            return Err(format!("datacontenttype {kind:?} is not JSON"));
        }
    }
    let id = text("id").ok_or("no id")?;
    let kind = text("type").ok_or("no type")?;
    let (schema, version) = kind
        .rsplit_once(".v")
        .and_then(|(schema, v)| Some((schema, v.parse::<u32>().ok()?)))
        .ok_or_else(|| format!("type {kind:?} is not <domain>.<message>.v<version>"))?;
    let data = match event.get("data") {
        Some(data @ Value::Object(_)) => data.clone(),
        Some(_) => return Err("data is not a JSON object".to_owned()),
        None => return Err("no data".to_owned()),
    };
    let released = registry
        .message(schema)
        .and_then(|m| m.version(version))
        .ok_or_else(|| format!("no schema {schema} v{version}"))?;
    let key = match text("subject") {
        Some(subject) => subject.to_owned(),
        None => courier::contract::key_of(&data, &released.idempotency_key).map_err(
            |(pointer, problem)| format!("no subject, and key field {pointer} is {problem}"),
        )?,
    };
    let mut envelope = Map::new();
    envelope.insert("schema".into(), json!(schema));
    envelope.insert("version".into(), json!(version));
    envelope.insert("id".into(), json!(id));
    envelope.insert("key".into(), json!(key));
    let now = courier::envelope::timestamp(chrono::Utc::now());
    envelope.insert("created_at".into(), json!(text("time").unwrap_or(&now)));
    envelope.insert(
        "expires_at".into(),
        json!(text("expirytime").unwrap_or(&now)),
    );
    envelope.insert(
        "attempt".into(),
        event.get("courierattempt").cloned().unwrap_or(json!(1)),
    );
    envelope.insert(
        "producer".into(),
        json!(text("courierproducer").unwrap_or("cloudevents")),
    );
    for (attribute, field) in [
        ("correlationid", "correlation_id"),
        ("traceparent", "traceparent"),
        ("courierpriority", "priority"),
    ] {
        if let Some(value) = event.get(attribute) {
            envelope.insert(field.into(), value.clone());
        }
    }
    envelope.insert("payload".into(), data);
    // Refuse now, as this line's, what the envelope schema refuses (an
    // id that is not a UUID, say): courier keeps an event's id.
    let envelope = Value::Object(envelope);
    Envelope::from_json(&envelope.to_string())
        .map_err(|e| format!("its attributes make no courier envelope: {e}"))?;
    let mut line = json!({ "envelope": envelope });
    if let (Some(by), Some(groups)) = (text("courierhandledby"), text("couriergroups")) {
        line["handled_by"] = json!(split(by));
        line["groups"] = json!(split(groups));
    }
    Ok(line)
}

/// Group names joined with `,`; a `%` or `,` inside a name is written
/// `%25` or `%2C`, so that every name reads back.
fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|name| name.replace('%', "%25").replace(',', "%2C"))
        .collect::<Vec<_>>()
        .join(",")
}

fn split(joined: &str) -> Vec<String> {
    if joined.is_empty() {
        return Vec::new();
    }
    joined
        .split(',')
        .map(|name| name.replace("%2C", ",").replace("%25", "%"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lists_read_back_whatever_the_names() {
        let names = ["a", "b,c", "100%", ""];
        let joined = join(names.iter().copied());
        assert_eq!(joined, "a,b%2Cc,100%25,");
        assert_eq!(split(&joined), names);
        assert!(split("").is_empty());
    }
}
