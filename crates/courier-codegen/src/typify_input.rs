//! Turns a checked message schema into the input typify expects.
//!
//! typify reads draft-07 shaped `schemars` documents and panics on external
//! `$ref`s. courier schemas are draft 2020-12 and self-contained (the
//! registry refuses any `$ref` outside the file's own `$defs`), so bundling
//! comes down to moving `$defs` to `definitions`, rewriting the references,
//! dropping courier's own annotations, and naming the root type after the
//! message version. Root properties whose type the domain shares (see
//! [`crate::shared`]) move into the definitions under the shared name, so
//! that typify refers to one type instead of making its own.

use schemars::schema::RootSchema;
use serde_json::{Map, Value};

/// The typify input for one message version, its root type named
/// `type_name`; each `(property, name)` of `hoist` moves a root property's
/// schema into the definitions as `name`.
pub fn typify_input(
    schema: &Value,
    type_name: &str,
    hoist: &[(String, String)],
) -> Result<RootSchema, String> {
    let mut schema = schema.clone();
    let Some(root) = schema.as_object_mut() else {
        return Err("the schema is not an object".into());
    };
    for annotation in ["$schema", "$id", "x-courier"] {
        root.remove(annotation);
    }
    root.insert("title".into(), Value::String(type_name.into()));
    let mut defs = match root.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    if let Some(Value::Object(properties)) = root.get_mut("properties") {
        for (property, name) in hoist {
            let Some(inline) = properties.get_mut(property) else {
                continue;
            };
            let mut reference = Map::new();
            reference.insert("$ref".into(), Value::String(format!("#/$defs/{name}")));
            // The field keeps its documentation.
            if let Some(description) = inline.get("description") {
                reference.insert("description".into(), description.clone());
            }
            let moved = std::mem::replace(inline, Value::Object(reference));
            defs.entry(name.clone()).or_insert(moved);
        }
    }
    if !defs.is_empty() {
        root.insert("definitions".into(), Value::Object(defs));
    }
    rewrite_refs(&mut schema);
    serde_json::from_value(schema).map_err(|e| e.to_string())
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref") {
                if let Some(name) = reference.strip_prefix("#/$defs/") {
                    *reference = format!("#/definitions/{name}");
                }
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
