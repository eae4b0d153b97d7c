//! Types that several message versions of a domain share.
//!
//! typify turns each version file into Rust on its own, so `Region` in
//! `classified_task.v1.json` and in `classified_task.v2.json` would be two
//! Rust types, and copying a field from one message into another would need
//! a serde round trip. This pass looks at a whole domain before typify runs
//! and decides, for every *named* type the domain repeats, whether it is
//! one Rust type or several that convert:
//!
//! - A named type is a `$defs` entry (named by its key) or a root property
//!   whose schema typify would make a type of its own: a string enum, or a
//!   string with a `pattern` or a length bound (named after the property:
//!   `customer_id` → `CustomerId`).
//! - Two occurrences are the same type when their schemas are equal once
//!   annotations (`description`, `title`, `$comment`, `examples`,
//!   `deprecated`) are set aside: annotations do not change which values
//!   are valid.
//! - A name that occurs in two or more files with one schema becomes one
//!   type, generated once in the crate's `shared` module; every version
//!   refers to it (a root property is first moved into the version's
//!   `$defs`, in typify's input only: the embedded schema stays the file's
//!   exact text).
//! - A name whose string enums differ between files stays one type per
//!   version, and a version's enum converts with `From` into every other
//!   version's enum that accepts all of its values (a later version that
//!   only adds values converts from the earlier one).
//!
//! A repeated type that refers to other types (`$ref`) stays one type per
//! version: sharing it would mean sharing everything it refers to.

use std::collections::{BTreeMap, BTreeSet};

use courier_schema::Domain;
use serde_json::{Map, Value};

use crate::names::{pascal_case, version_type};

/// Keywords that describe a schema without changing what it accepts.
const ANNOTATIONS: &[&str] = &["description", "title", "$comment", "examples", "deprecated"];

/// What the domain shares, decided before typify runs.
#[derive(Debug, Default)]
pub struct Shared {
    /// The module the shared types live in: `shared`, or `shared_types`
    /// in a domain with a message named `shared`.
    pub module: String,
    /// Types generated once in `crate::shared`, by name, with the schema
    /// to generate (the first occurrence's, annotations included).
    pub types: BTreeMap<String, Value>,
    /// The field a shared string type is named after, for the error of its
    /// fallible constructor (`customer_id`); a `$defs` type's own name
    /// otherwise.
    pub fields: BTreeMap<String, String>,
    /// Per version file (message, version): root properties to move into
    /// `$defs` under a shared type's name.
    pub hoist: BTreeMap<(String, u32), Vec<(String, String)>>,
    /// `From` conversions between per-version string enums.
    pub widenings: Vec<Widening>,
}

/// `impl From<from> for to`, variant by variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    /// Path of the narrower enum.
    pub from: String,
    /// Path of the enum that accepts all of its values.
    pub to: String,
    /// The values of `from`, each a variant of both.
    pub values: Vec<String>,
}

/// One occurrence of a named type in one version file.
#[derive(Debug)]
struct Occurrence {
    message: String,
    version: u32,
    /// The property it stands under, for root properties.
    property: Option<String>,
    schema: Value,
    canonical: Value,
}

impl Occurrence {
    /// The Rust path typify gives it when it is not shared.
    fn path(&self, name: &str) -> String {
        let type_name = match &self.property {
            Some(property) => format!(
                "{}{}",
                version_type(&self.message, self.version),
                pascal_case(property)
            ),
            None => name.to_string(),
        };
        format!("crate::{}::v{}::{type_name}", self.message, self.version)
    }
}

/// Decides what `domain` shares.
pub fn analyse(domain: &Domain) -> Shared {
    let mut by_name: BTreeMap<String, Vec<Occurrence>> = BTreeMap::new();
    for message in domain.messages.values() {
        for version in &message.versions {
            let schema = &version.schema;
            let occurrence = |property: Option<&str>, schema: &Value| Occurrence {
                message: message.name.clone(),
                version: version.version,
                property: property.map(str::to_string),
                schema: schema.clone(),
                canonical: canonical(schema),
            };
            if let Some(defs) = schema.get("$defs").and_then(Value::as_object) {
                for (name, def) in defs {
                    by_name
                        .entry(pascal_case(name))
                        .or_default()
                        .push(occurrence(None, def));
                }
            }
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (property, value) in properties {
                    if is_own_type(value) {
                        by_name
                            .entry(pascal_case(property))
                            .or_default()
                            .push(occurrence(Some(property), value));
                    }
                }
            }
        }
    }

    let mut shared = Shared {
        module: if domain.messages.contains_key("shared") {
            "shared_types".into()
        } else {
            "shared".into()
        },
        ..Shared::default()
    };
    for (name, occurrences) in by_name {
        let files: BTreeSet<(&str, u32)> = occurrences
            .iter()
            .map(|o| (o.message.as_str(), o.version))
            .collect();
        if files.len() < 2 {
            continue;
        }
        let classes: BTreeSet<String> = occurrences
            .iter()
            .map(|o| o.canonical.to_string())
            .collect();
        // A type that refers to others would need them in `shared` too;
        // such types stay per version.
        let refers = occurrences
            .iter()
            .any(|o| o.canonical.to_string().contains("\"$ref\""));
        if classes.len() == 1 && !refers {
            // Generated with the first description found, a `$defs` one
            // before a property's.
            let described = |o: &&Occurrence| o.schema.get("description").is_some();
            let first = occurrences
                .iter()
                .filter(|o| o.property.is_none())
                .find(described)
                .or_else(|| occurrences.iter().find(described))
                .unwrap_or(&occurrences[0]);
            shared.types.insert(name.clone(), first.schema.clone());
            let field = occurrences
                .iter()
                .find_map(|o| o.property.clone())
                .unwrap_or_else(|| name.clone());
            shared.fields.insert(name.clone(), field);
            for o in &occurrences {
                if let Some(property) = &o.property {
                    shared
                        .hoist
                        .entry((o.message.clone(), o.version))
                        .or_default()
                        .push((property.clone(), name.clone()));
                }
            }
        } else {
            shared.widenings.extend(widenings(&name, &occurrences));
        }
    }
    shared
}

/// Conversions between the string enums named `name` in different files,
/// wherever the target accepts every value of the source.
fn widenings(name: &str, occurrences: &[Occurrence]) -> Vec<Widening> {
    let mut out = Vec::new();
    for from in occurrences {
        let Some(from_values) = enum_values(&from.canonical) else {
            continue;
        };
        for to in occurrences {
            if (from.message.as_str(), from.version) == (to.message.as_str(), to.version) {
                continue;
            }
            let Some(to_values) = enum_values(&to.canonical) else {
                continue;
            };
            if from_values.iter().all(|v| to_values.contains(v)) {
                out.push(Widening {
                    from: from.path(name),
                    to: to.path(name),
                    values: from_values.clone(),
                });
            }
        }
    }
    out
}

/// The values of a string enum whose values are all plain identifiers
/// (`billing`, `technical_support`), so that their variant names are known.
fn enum_values(canonical: &Value) -> Option<Vec<String>> {
    let values = canonical.get("enum")?.as_array()?;
    values
        .iter()
        .map(|v| {
            let s = v.as_str()?;
            let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            plain.then(|| s.to_string())
        })
        .collect()
}

/// Whether typify makes a type of its own for this inline property: a
/// string enum, or a constrained string without a format (formats become
/// `Uuid`, `DateTime` and the like).
fn is_own_type(schema: &Value) -> bool {
    if schema.get("$ref").is_some() || schema.get("type") != Some(&Value::from("string")) {
        return false;
    }
    schema.get("enum").is_some()
        || (schema.get("format").is_none()
            && ["pattern", "minLength", "maxLength"]
                .iter()
                .any(|k| schema.get(k).is_some()))
}

/// The schema without its annotations, at every depth.
pub fn canonical(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !ANNOTATIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

impl Shared {
    /// Whether a type named `name` is generated in `crate::shared`.
    pub fn is_shared(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }

    /// The root properties of one version file that move into `$defs`.
    pub fn hoisted(&self, message: &str, version: u32) -> &[(String, String)] {
        self.hoist
            .get(&(message.to_string(), version))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotations_do_not_make_types_differ() {
        let a = json!({"type": "string", "enum": ["a", "b"], "description": "one"});
        let b = json!({"type": "string", "enum": ["a", "b"]});
        assert_eq!(canonical(&a), canonical(&b));
        let c = json!({"type": "string", "enum": ["a", "b", "c"]});
        assert_ne!(canonical(&a), canonical(&c));
    }

    #[test]
    fn own_types() {
        let check =
            |schema: Value, expected: bool| assert_eq!(is_own_type(&schema), expected, "{schema}");
        check(json!({"type": "string", "enum": ["a"]}), true);
        check(json!({"type": "string", "pattern": "^a$"}), true);
        check(json!({"type": "string", "maxLength": 3}), true);
        check(json!({"type": "string", "format": "uuid"}), false);
        check(json!({"type": "string"}), false);
        check(json!({"type": "integer", "maximum": 9}), false);
        check(json!({"$ref": "#/$defs/Region"}), false);
    }

    #[test]
    fn enum_values_must_be_plain_identifiers() {
        assert_eq!(
            enum_values(&json!({"enum": ["billing", "technical_support"]})),
            Some(vec!["billing".into(), "technical_support".into()])
        );
        assert_eq!(
            enum_values(&json!({"enum": ["billing", "Tech Support"]})),
            None
        );
        assert_eq!(enum_values(&json!({"type": "string"})), None);
    }
}
