//! Turns a checked message schema into the input typify expects.
//!
//! typify reads draft-07 shaped `schemars` documents and panics on external
//! `$ref`s. courier schemas are draft 2020-12 and self-contained (the
//! registry refuses any `$ref` outside the file's own `$defs`), so bundling
//! comes down to moving `$defs` to `definitions`, rewriting the references,
//! dropping courier's own annotations, and naming the root type after the
//! message version.

use schemars::schema::RootSchema;
use serde_json::Value;

/// The typify input for one message version, its root type named `type_name`.
pub fn typify_input(schema: &Value, type_name: &str) -> Result<RootSchema, String> {
    let mut schema = schema.clone();
    let Some(root) = schema.as_object_mut() else {
        return Err("the schema is not an object".into());
    };
    for annotation in ["$schema", "$id", "x-courier"] {
        root.remove(annotation);
    }
    root.insert("title".into(), Value::String(type_name.into()));
    if let Some(defs) = root.remove("$defs") {
        root.insert("definitions".into(), defs);
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
