//! Reading one schema the way the compatibility checker does: `$ref`s
//! followed, `allOf` folded into one object, and the small questions asked
//! of the result (its types, its required names, the values it lists).
//!
//! The checker, the overlap test and the witness sampler all read schemas
//! through this module, so they agree on what a schema says.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::text::escape_pointer_token;
use crate::validate::Validator;

/// The type names of draft 2020-12.
pub(crate) const ALL_TYPES: &[&str] = &[
    "array", "boolean", "integer", "null", "number", "object", "string",
];

/// A schema after `$ref`s and `allOf` are folded in, with the pointer it
/// is reported at.
pub(crate) struct Resolved {
    /// The keywords, `allOf` members folded in.
    pub(crate) schema: Map<String, Value>,
    /// Where the schema was found: the last `$ref` target, or the pointer
    /// it was read at.
    pub(crate) pointer: String,
    /// `Some(false)` / `Some(true)` for boolean schemas.
    pub(crate) boolean: Option<bool>,
}

impl Resolved {
    /// The schema as a value again: `true`, `false` or the folded object.
    pub(crate) fn to_value(&self) -> Value {
        match self.boolean {
            Some(b) => Value::Bool(b),
            None => Value::Object(self.schema.clone()),
        }
    }
}

/// Follows `$ref` and folds `allOf` members into one object schema.
pub(crate) fn resolve(root: &Value, schema: &Value, pointer: &str) -> Resolved {
    let mut pointer = pointer.to_string();
    let mut current = schema.clone();
    for _ in 0..32 {
        let Some(reference) = current
            .get("$ref")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            break;
        };
        let target = reference.strip_prefix('#').and_then(|p| root.pointer(p));
        let Some(target) = target else { break };
        if let Value::Bool(b) = target {
            return Resolved {
                schema: Map::new(),
                pointer: reference[1..].to_string(),
                boolean: Some(*b),
            };
        }
        let mut merged = target.as_object().cloned().unwrap_or_default();
        if let Some(siblings) = current.as_object() {
            for (key, value) in siblings {
                if key != "$ref" {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
        pointer = reference[1..].to_string();
        current = Value::Object(merged);
    }
    match current {
        Value::Bool(b) => Resolved {
            schema: Map::new(),
            pointer,
            boolean: Some(b),
        },
        Value::Object(mut map) => {
            // allOf: the schema is the conjunction; folding members in
            // (later keywords win on conflicts) models the common use,
            // composing disjoint pieces. A `false` member makes the whole
            // schema `false`, whatever the other members say.
            if let Some(Value::Array(members)) = map.remove("allOf") {
                for member in members {
                    let member = resolve(root, &member, &pointer);
                    if member.boolean == Some(false) {
                        return Resolved {
                            schema: Map::new(),
                            pointer,
                            boolean: Some(false),
                        };
                    }
                    for (key, value) in member.schema {
                        match (map.get_mut(&key), value) {
                            (Some(Value::Object(existing)), Value::Object(more))
                                if key == "properties" =>
                            {
                                existing.extend(more);
                            }
                            (Some(Value::Array(existing)), Value::Array(more))
                                if key == "required" =>
                            {
                                existing.extend(more);
                            }
                            (_, value) => {
                                map.insert(key, value);
                            }
                        }
                    }
                }
            }
            Resolved {
                schema: map,
                pointer,
                boolean: None,
            }
        }
        _ => Resolved {
            schema: Map::new(),
            pointer,
            boolean: Some(true),
        },
    }
}

/// `siblings` and `branch` together, folded by [`resolve`] as an `allOf`.
pub(crate) fn conjunction(siblings: &Map<String, Value>, branch: &Value) -> Value {
    let mut merged = siblings.clone();
    merged.insert("allOf".into(), Value::Array(vec![branch.clone()]));
    Value::Object(merged)
}

/// Whether a schema accepts no value at all, as far as it says so plainly:
/// `false`, a `$ref` or `allOf` member that is `false`, or an empty `enum`.
pub(crate) fn rejects_everything(root: &Value, schema: &Value) -> bool {
    let resolved = resolve(root, schema, "");
    resolved.boolean == Some(false)
        || resolved
            .schema
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
}

/// The values a schema allows, when it lists them (`const` or `enum`).
pub(crate) fn finite_values(schema: &Map<String, Value>) -> Option<Vec<Value>> {
    if let Some(value) = schema.get("const") {
        return Some(vec![value.clone()]);
    }
    schema.get("enum").and_then(Value::as_array).cloned()
}

/// The `oneOf` or `anyOf` of a schema, with the keyword.
pub(crate) fn branches(schema: &Map<String, Value>) -> Option<(&'static str, &Vec<Value>)> {
    ["oneOf", "anyOf"]
        .into_iter()
        .find_map(|keyword| Some((keyword, schema.get(keyword)?.as_array()?)))
}

/// A subschema as a document of its own (its root's `$defs` carried
/// along), compiled to check single values. A subschema outside courier's
/// subset (an `anyOf`, which the checker models) is compiled by the engine
/// alone: the subset pass refuses schemas but never changes what one means.
///
/// `None` when it cannot stand alone: a `"$ref": "#"` in the document would
/// name the subschema instead of the root. Every caller then assumes the
/// worst.
pub(crate) fn standalone(root: &Value, schema: &Map<String, Value>) -> Option<Validator> {
    if refers_to_root(root) && root.as_object() != Some(schema) {
        return None;
    }
    let mut document = schema.clone();
    if let Some(defs) = root.get("$defs") {
        document.insert("$defs".into(), defs.clone());
    }
    for annotation in ["$schema", "$id", "x-courier"] {
        document.remove(annotation);
    }
    let document = Value::Object(document);
    Validator::compile(&document)
        .or_else(|_| Validator::compile_engine_only(&document))
        .ok()
}

/// Whether a `$ref` anywhere in `value` names the document's root.
fn refers_to_root(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (k == "$ref" && v == "#") || refers_to_root(v)),
        Value::Array(items) => items.iter().any(refers_to_root),
        _ => false,
    }
}

/// The types a schema declares, if it declares any.
pub(crate) fn declared_types(schema: &Map<String, Value>) -> Option<BTreeSet<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some([t.as_str()].into_iter().collect()),
        Value::Array(types) => Some(types.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// The types a writer may write: declared, or any.
pub(crate) fn writer_types(schema: &Map<String, Value>) -> BTreeSet<&str> {
    declared_types(schema).unwrap_or_else(|| ALL_TYPES.iter().copied().collect())
}

/// The names a schema requires.
pub(crate) fn required(schema: &Map<String, Value>) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The schema an object schema gives property `name`: its entry in
/// `properties`, else `additionalProperties`, else `true`.
pub(crate) fn property_schema<'a>(schema: &'a Map<String, Value>, name: &str) -> &'a Value {
    const ANY: &Value = &Value::Bool(true);
    schema
        .get("properties")
        .and_then(|p| p.get(name))
        .or_else(|| schema.get("additionalProperties"))
        .unwrap_or(ANY)
}

/// `schema` without `keys`.
pub(crate) fn without(schema: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    schema
        .iter()
        .filter(|(k, _)| !keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `pointer` extended by one token.
pub(crate) fn child(pointer: &str, keyword: &str) -> String {
    format!("{pointer}/{}", escape_pointer_token(keyword))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_false_member_makes_the_whole_schema_false() {
        let root = json!({"$defs": {"Never": false}});
        assert!(rejects_everything(
            &root,
            &json!({"type": "string", "allOf": [{"minLength": 1}, false]})
        ));
        assert!(rejects_everything(&root, &json!({"$ref": "#/$defs/Never"})));
        assert!(rejects_everything(&root, &json!({"enum": []})));
        assert!(!rejects_everything(
            &root,
            &json!({"allOf": [{"type": "string"}]})
        ));
    }

    #[test]
    fn a_subschema_stands_alone_unless_the_root_is_referenced() {
        let flat = json!({"type": "object", "properties": {"v": {"$ref": "#/$defs/V"}}, "$defs": {"V": {"const": 1}}});
        let v = json!({"$ref": "#/$defs/V"});
        let v = v.as_object().unwrap();
        assert!(
            standalone(&flat, v).is_some_and(|s| s.is_valid(&json!(1)) && !s.is_valid(&json!(2)))
        );

        let recursive =
            json!({"type": "object", "properties": {"next": {"$ref": "#"}, "v": {"const": 1}}});
        let v = recursive["properties"]["v"].as_object().unwrap();
        assert!(standalone(&recursive, v).is_none());
        assert!(standalone(&recursive, recursive.as_object().unwrap()).is_some());
    }

    #[test]
    fn property_schema_falls_back_to_additional_properties() {
        let schema =
            json!({"properties": {"a": {"type": "string"}}, "additionalProperties": false});
        let schema = schema.as_object().unwrap();
        assert_eq!(property_schema(schema, "a"), &json!({"type": "string"}));
        assert_eq!(property_schema(schema, "b"), &json!(false));
        assert_eq!(property_schema(&Map::new(), "b"), &json!(true));
    }
}
