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
//! - The first schema, in the order of messages and versions, that two or
//!   more files repeat under a name becomes one type, generated once in
//!   the crate's `shared` module; every occurrence of that schema refers to
//!   it (a root property is first moved into the version's `$defs`, in
//!   typify's input only: the embedded schema stays the file's exact
//!   text). A later version with another schema under the same name gets
//!   a type of its own and leaves the shared one as it was, so adding a
//!   version renames nothing that compiled before.
//! - String enums of one name convert with `From` wherever the target
//!   accepts every value of the source (a later version that only adds
//!   values converts from the shared or earlier one).
//! - Only names typify and courier spell alike are shared (snake case, or
//!   Pascal case without runs of capitals), and no property with a `title`
//!   (typify names it after the title) or a `default` (typify reads it only
//!   where it stands).
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
    /// Which occurrences the shared types stand for: (message, version,
    /// type name); another occurrence of the same name is its version's own.
    pub members: BTreeSet<(String, u32, String)>,
    /// The types typify makes inside each shared object type, re-exported
    /// where the shared type is used.
    pub nested: BTreeMap<String, Vec<String>>,
    /// `From` conversions between string enums of one name.
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
    /// The Rust path typify gives it in its own version's module.
    fn own_path(&self, name: &str) -> String {
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

    fn file(&self) -> (&str, u32) {
        (&self.message, self.version)
    }
}

/// Whether a `$defs` key or a property name is named the same by typify
/// and by [`pascal_case`]: snake case, or Pascal case without runs of
/// capitals. Other names are left to typify alone.
pub fn plain_name(name: &str) -> bool {
    let snake = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_');
    let pascal = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && !name
            .as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase());
    snake || pascal
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
                for (key, def) in defs.iter().filter(|(key, _)| plain_name(key)) {
                    by_name
                        .entry(pascal_case(key))
                        .or_default()
                        .push(occurrence(None, def));
                }
            }
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (property, value) in properties {
                    if plain_name(property) && is_own_type(value) {
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
        // The shared schema: the first, in the order of messages and
        // versions, that two or more files repeat. Adding a version with
        // another schema under the same name leaves it shared; the new one
        // is a type of its own version.
        let chosen = occurrences.iter().find_map(|first| {
            let files: BTreeSet<(&str, u32)> = occurrences
                .iter()
                .filter(|o| o.canonical == first.canonical)
                .map(Occurrence::file)
                .collect();
            // A type that refers to others would need them shared too.
            let refers = first.canonical.to_string().contains("\"$ref\"");
            (files.len() >= 2 && !refers).then_some(&first.canonical)
        });
        let path = |o: &Occurrence| match chosen {
            Some(canonical) if &o.canonical == canonical => {
                format!("crate::{}::{name}", shared.module)
            }
            _ => o.own_path(&name),
        };
        let mut types: BTreeMap<String, &Value> = BTreeMap::new();
        for o in &occurrences {
            types.entry(path(o)).or_insert(&o.canonical);
        }
        shared.widenings.extend(widenings(&types));
        let Some(canonical) = chosen else {
            continue;
        };
        let members: Vec<&Occurrence> = occurrences
            .iter()
            .filter(|o| &o.canonical == canonical)
            .collect();
        // Generated with the first description found, a `$defs` one
        // before a property's.
        let described = |o: &&&Occurrence| o.schema.get("description").is_some();
        let first = members
            .iter()
            .filter(|o| o.property.is_none())
            .find(described)
            .or_else(|| members.iter().find(described))
            .unwrap_or(&members[0]);
        shared.types.insert(name.clone(), first.schema.clone());
        let field = members
            .iter()
            .find_map(|o| o.property.clone())
            .unwrap_or_else(|| name.clone());
        shared.fields.insert(name.clone(), field);
        shared
            .nested
            .insert(name.clone(), nested_types(&name, &first.schema));
        for o in members {
            shared
                .members
                .insert((o.message.clone(), o.version, name.clone()));
            if let Some(property) = &o.property {
                shared
                    .hoist
                    .entry((o.message.clone(), o.version))
                    .or_default()
                    .push((property.clone(), name.clone()));
            }
        }
    }
    shared
}

/// The types typify makes inside an object type `owner`: one per inline
/// property that is a type of its own (`EvaluationNotes` in `Evaluation`).
fn nested_types(owner: &str, schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .filter(|(property, value)| plain_name(property) && is_own_type(value))
                .map(|(property, _)| format!("{owner}{}", pascal_case(property)))
                .collect()
        })
        .unwrap_or_default()
}

/// Conversions between the string enums of one name, by Rust path:
/// wherever the target accepts every value of the source.
fn widenings(types: &BTreeMap<String, &Value>) -> Vec<Widening> {
    let mut out = Vec::new();
    for (from, from_schema) in types {
        let Some(from_values) = enum_values(from_schema) else {
            continue;
        };
        for (to, to_schema) in types {
            if from == to {
                continue;
            }
            let Some(to_values) = enum_values(to_schema) else {
                continue;
            };
            if from_values.iter().all(|v| to_values.contains(v)) {
                out.push(Widening {
                    from: from.clone(),
                    to: to.clone(),
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
            // typify names the variant of `self` `Self_`.
            (plain && s != "self").then(|| s.to_string())
        })
        .collect()
}

/// Whether typify makes a type of its own for this inline property: a
/// string enum, or a constrained string without a format (formats become
/// `Uuid`, `DateTime` and the like).
fn is_own_type(schema: &Value) -> bool {
    // typify names a titled schema after its title, and reads a default
    // only where it stands: neither can move into a shared type.
    if schema.get("$ref").is_some()
        || schema.get("title").is_some()
        || schema.get("default").is_some()
        || schema.get("type") != Some(&Value::from("string"))
    {
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
    /// Whether the type `name` of one version file is the shared one.
    pub fn is_shared(&self, message: &str, version: u32, name: &str) -> bool {
        self.members
            .contains(&(message.to_string(), version, name.to_string()))
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
    fn only_names_typify_spells_alike_are_shared() {
        for name in ["region", "customer_id", "Region", "RegionCode", "v2_region"] {
            assert!(plain_name(name), "{name}");
        }
        for name in ["ABTest", "d e", "_x", "a__b", "x_", "Région"] {
            assert!(!plain_name(name), "{name}");
        }
        let titled = json!({"type": "string", "maxLength": 3, "title": "Label"});
        let defaulted = json!({"type": "string", "maxLength": 3, "default": "a"});
        assert!(!is_own_type(&titled) && !is_own_type(&defaulted));
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
